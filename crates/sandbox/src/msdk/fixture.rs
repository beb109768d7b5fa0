//! The MSDK fixture types (public, part of [`crate::SandboxConfig`]) and the embedded demo
//! fixture (`fixture.json`), whose ids and secrets are also constants in [`crate::demo`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::fixture_profile::{
    MsdkFirstRegistration, MsdkFreeFlow, MsdkFreeFlowLists, MsdkGift, MsdkSubscribeMessage,
    MsdkVideoChannel, MsdkVideoVip, MsdkVipEntry,
};
use crate::REDACTED;

/// The login platform of an MSDK app. It decides which interfaces the app may call (QQ ones,
/// WeChat ones, or the guest check) and the shape of its token errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsdkPlatform {
    /// Mobile QQ.
    Qq,
    /// WeChat.
    Wechat,
    /// Guest mode: appid and openids carry the prefix `G_`.
    Guest,
}

impl MsdkPlatform {
    /// The short name in `get_pfval`'s pf (the seed's example has `wx` for WeChat).
    pub(crate) fn pf_name(self) -> &'static str {
        match self {
            Self::Qq => "qq",
            Self::Wechat => "wx",
            Self::Guest => "guest",
        }
    }
}

/// An MSDK app: `sig` is `md5(msdkkey + timestamp)` with `encode=2`, `md5(appkey + timestamp)`
/// with `encode=1`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkApp {
    pub appid: String,
    pub platform: MsdkPlatform,
    pub msdkkey: String,
    pub appkey: String,
    /// Whether the game has integrated achievement reporting (`/profile/qqscore_batch`); the seed
    /// makes it a precondition of `/relation/qq_unreg_friends` (-303 without it).
    #[serde(default = "default_true")]
    pub score_reporting: bool,
    /// Tencent Video channels the app queries memberships through (`qqget_video_vip`,
    /// `wxget_video_vip`).
    #[serde(default)]
    pub video_channels: Vec<MsdkVideoChannel>,
    /// The free-flow lists the game configured (`/freeflow/getinfo`).
    #[serde(default)]
    pub freeflow: MsdkFreeFlowLists,
    /// WeChat messages the players may subscribe to (`/profile/subscribe_*`).
    #[serde(default)]
    pub subscribe_messages: Vec<MsdkSubscribeMessage>,
}

fn default_true() -> bool {
    true
}

/// A user of an MSDK app with their login state, profile and relations.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkUser {
    pub appid: String,
    pub openid: String,
    /// The current access token (QQ `accessToken`/`openkey`, WeChat `accessToken`, guest token).
    pub access_token: String,
    /// Mobile QQ only: the pay token that `/auth/get_pfval` takes as `accessToken`.
    #[serde(default)]
    pub pay_token: String,
    /// The user changed their QQ password: every token check answers -10000 "-73,..." (re-auth).
    #[serde(default)]
    pub password_changed: bool,
    /// Same-game friends: openids of users of the same app. Friendship is mutual: listing it on
    /// either side is enough.
    #[serde(default)]
    pub friends: Vec<String>,
    /// Mobile QQ: the friends this user marked as close friends (their own view).
    #[serde(default)]
    pub close_friends: Vec<String>,
    /// Mobile QQ: QQ friends who have not registered in the app (`qq_unreg_friends`).
    #[serde(default)]
    pub unregistered_friends: Vec<MsdkUnregisteredFriend>,
    #[serde(default)]
    pub qq: MsdkQqProfile,
    #[serde(default)]
    pub wechat: MsdkWechatProfile,
    /// Free-flow subscription (`/freeflow/getinfo`), whatever the platform.
    #[serde(default)]
    pub freeflow: MsdkFreeFlow,
}

/// QQ gender as the seed shows it in `qqprofile` and `qqfriends_detail` ("남성"/"여성"; the
/// platform defaults to male when unknown) and as "1"/"2" in `qqstrange_profile`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsdkGender {
    #[default]
    Male,
    Female,
}

impl MsdkGender {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Male => "남성",
            Self::Female => "여성",
        }
    }

    pub(crate) fn digit(self) -> &'static str {
        match self {
            Self::Male => "1",
            Self::Female => "2",
        }
    }
}

/// A membership period as Unix seconds; the membership is active while `end` is in the future.
/// All zero = never a member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkMembership {
    pub start: i64,
    pub end: i64,
}

impl MsdkMembership {
    pub(crate) fn active(&self, now: i64) -> bool {
        self.end > now
    }
}

/// The Mobile QQ profile of a user.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkQqProfile {
    pub nickname: String,
    pub gender: MsdkGender,
    /// Avatar base URL (http) without a size; answers append `/40` or `/100`.
    pub avatar_url: String,
    /// Not every user has a 100×100 avatar (the 40×40 one always exists); without it
    /// `picture100` is empty.
    pub has_avatar_100: bool,
    /// QZone avatar base URL (http); `/50` is appended.
    pub qzone_avatar_url: String,
    pub yellow_vip: bool,
    pub yellow_vip_level: i32,
    pub yellow_year_vip: bool,
    pub qq_vip: MsdkMembership,
    pub qq_vip_level: i32,
    pub qq_year_vip: MsdkMembership,
    pub qq_svip: MsdkMembership,
    /// `query_vip` entries by flag. Flags 1 (member), 16 (super member) and 128 (yellow
    /// diamond) not listed here are answered from the memberships above; other flags not listed
    /// answer zeros.
    pub vip: Vec<MsdkVipEntry>,
    /// Blue-diamond gift packs; `get_gift` hands them out once and deletes them.
    pub blue_gifts: Vec<MsdkGift>,
    /// Portable wifi eligibility (`get_wifi`).
    pub wifi_vip: bool,
    pub first_registration: MsdkFirstRegistration,
    pub video_vip: MsdkVideoVip,
    /// `get_xinyue_super` `ilevel`: 0, 10 (super R) or 11 (top R).
    pub xinyue_super: i32,
}

/// The WeChat profile of a user.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkWechatProfile {
    pub nickname: String,
    /// 1 male, 2 female, 0 not set.
    pub sex: i32,
    pub province: String,
    pub city: String,
    pub country: String,
    pub language: String,
    /// Avatar URL (http); WeChat serves sizes by the last path segment (`/0`, `/132`, ...).
    pub headimgurl: String,
    /// E.g. `["chinaunicom"]` for Woka users.
    pub privilege: Vec<String>,
    pub unionid: String,
    pub gps_city: String,
    /// WeChat privilege (`wxget_vip`): level (answered as nick `VIP<level>`) and score.
    pub vip_level: i32,
    pub vip_score: i64,
    pub first_registration: MsdkFirstRegistration,
    pub video_vip: MsdkVideoVip,
    /// `get_xinyue_super` `ilevel` with `access_type=2`: 0, 10 or 11.
    pub xinyue_super: i32,
    /// `get_wx_xinyue_vip` `ilevel`: 0 (not a core user), 1, 2 or 3.
    pub xinyue_vip: i32,
    /// `wxget_eliteinfo`.
    pub wx_elite: bool,
    pub game_elite: bool,
}

/// A Mobile QQ friend who has not registered in the app.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkUnregisteredFriend {
    pub openid: String,
    pub nick_name: String,
    pub head_img_url: String,
}

/// A QQ group that exists before the sandbox starts, as if its owner had created it in QQ:
/// `get_group_listv2` lists it and `bind_existing_groupv2` can bind it to a guild.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkQqGroup {
    pub appid: String,
    /// Group number.
    pub gc: String,
    pub group_name: String,
    /// The creator's openid (relation 1).
    pub owner: String,
    /// Relation 2.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Relation 3.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A guild's WeChat group (created in the WeChat client, outside the MSDK server API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkWechatGroup {
    pub appid: String,
    /// The guild id the group belongs to (`groupid` in the interfaces).
    pub groupid: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// Everything in `fixture.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MsdkFixture {
    pub(crate) apps: Vec<MsdkApp>,
    pub(crate) users: Vec<MsdkUser>,
    pub(crate) qq_groups: Vec<MsdkQqGroup>,
    pub(crate) wechat_groups: Vec<MsdkWechatGroup>,
}

const DEMO_FIXTURE: &str = include_str!("fixture.json");

/// The demo fixture. It is embedded and checked by the crate's tests, so parsing cannot fail at
/// run time.
pub(crate) fn demo() -> MsdkFixture {
    serde_json::from_str(DEMO_FIXTURE).expect("the embedded MSDK fixture is valid")
}

impl fmt::Debug for MsdkApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsdkApp")
            .field("appid", &self.appid)
            .field("platform", &self.platform)
            .field("msdkkey", &REDACTED)
            .field("appkey", &REDACTED)
            .field("score_reporting", &self.score_reporting)
            .field("video_channels", &self.video_channels)
            .field("freeflow", &self.freeflow)
            .field("subscribe_messages", &self.subscribe_messages)
            .finish()
    }
}

impl fmt::Debug for MsdkUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsdkUser")
            .field("appid", &self.appid)
            .field("openid", &self.openid)
            .field("access_token", &REDACTED)
            .field("pay_token", &REDACTED)
            .field("password_changed", &self.password_changed)
            .field("friends", &self.friends)
            .field("close_friends", &self.close_friends)
            .field("unregistered_friends", &self.unregistered_friends)
            .field("qq", &self.qq)
            .field("wechat", &self.wechat)
            .field("freeflow", &self.freeflow)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::*;

    fn user<'a>(fixture: &'a MsdkFixture, openid: &str) -> &'a MsdkUser {
        fixture
            .users
            .iter()
            .find(|u| u.openid == openid)
            .unwrap_or_else(|| panic!("{openid} in the fixture"))
    }

    #[test]
    fn demo_constants_match_the_fixture() {
        let fixture = demo();
        let app = |appid: &str| fixture.apps.iter().find(|a| a.appid == appid).unwrap();
        for (appid, platform, msdkkey, appkey) in [
            (
                MSDK_QQ_APPID,
                MsdkPlatform::Qq,
                MSDK_QQ_MSDKKEY,
                MSDK_QQ_APPKEY,
            ),
            (
                MSDK_WX_APPID,
                MsdkPlatform::Wechat,
                MSDK_WX_MSDKKEY,
                MSDK_WX_APPKEY,
            ),
            (
                MSDK_GUEST_APPID,
                MsdkPlatform::Guest,
                MSDK_QQ_MSDKKEY,
                MSDK_QQ_APPKEY,
            ),
        ] {
            let app = app(appid);
            assert_eq!(app.platform, platform);
            assert_eq!(app.msdkkey, msdkkey);
            assert_eq!(app.appkey, appkey);
        }
        for (appid, openid, token) in [
            (MSDK_QQ_APPID, MSDK_QQ_ALICE_OPENID, MSDK_QQ_ALICE_TOKEN),
            (MSDK_QQ_APPID, MSDK_QQ_BOB_OPENID, MSDK_QQ_BOB_TOKEN),
            (MSDK_QQ_APPID, MSDK_QQ_CAROL_OPENID, MSDK_QQ_CAROL_TOKEN),
            (MSDK_QQ_APPID, MSDK_QQ_DAVE_OPENID, MSDK_QQ_DAVE_TOKEN),
            (MSDK_QQ_APPID, MSDK_QQ_ERIN_OPENID, MSDK_QQ_ERIN_TOKEN),
            (MSDK_WX_APPID, MSDK_WX_ALICE_OPENID, MSDK_WX_ALICE_TOKEN),
            (MSDK_WX_APPID, MSDK_WX_BOB_OPENID, MSDK_WX_BOB_TOKEN),
            (MSDK_WX_APPID, MSDK_WX_CAROL_OPENID, MSDK_WX_CAROL_TOKEN),
            (MSDK_WX_APPID, MSDK_WX_DAVE_OPENID, MSDK_WX_DAVE_TOKEN),
            (MSDK_GUEST_APPID, MSDK_GUEST_OPENID, MSDK_GUEST_TOKEN),
        ] {
            let user = user(&fixture, openid);
            assert_eq!(user.appid, appid, "{openid}");
            assert_eq!(user.access_token, token, "{openid}");
        }
        assert_eq!(
            user(&fixture, MSDK_QQ_ALICE_OPENID).pay_token,
            MSDK_QQ_ALICE_PAY_TOKEN
        );
        assert!(user(&fixture, MSDK_QQ_ERIN_OPENID).password_changed);
        let group = &fixture.qq_groups[0];
        assert_eq!(
            (
                group.appid.as_str(),
                group.gc.as_str(),
                group.owner.as_str()
            ),
            (MSDK_QQ_APPID, MSDK_QQ_EXISTING_GC, MSDK_QQ_ALICE_OPENID)
        );
        let group = &fixture.wechat_groups[0];
        assert_eq!(
            (group.appid.as_str(), group.groupid.as_str()),
            (MSDK_WX_APPID, MSDK_WX_GROUP_ID)
        );
    }

    #[test]
    fn fixture_shapes_follow_the_brief() {
        let fixture = demo();
        let is_qq_openid = |o: &str| {
            o.len() == 32
                && o.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        };
        for user in &fixture.users {
            match user.appid.as_str() {
                MSDK_QQ_APPID => {
                    assert!(is_qq_openid(&user.openid), "{}", user.openid);
                    assert!(!user.qq.nickname.is_empty());
                    assert!(user.qq.avatar_url.starts_with("http://"));
                    for friend in &user.unregistered_friends {
                        assert!(is_qq_openid(&friend.openid));
                        assert!(!fixture.users.iter().any(|u| u.openid == friend.openid));
                    }
                }
                MSDK_WX_APPID => {
                    assert!(user.openid.starts_with("oGRTij"), "{}", user.openid);
                    assert!(!user.wechat.unionid.is_empty());
                }
                MSDK_GUEST_APPID => {
                    let hex = user.openid.strip_prefix("G_").expect("guest prefix");
                    assert_eq!(hex.len(), 32);
                    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
                }
                other => panic!("user of unknown app {other}"),
            }
            for friend in user.friends.iter().chain(&user.close_friends) {
                assert!(
                    fixture
                        .users
                        .iter()
                        .any(|u| u.appid == user.appid && &u.openid == friend),
                    "friend {friend} of {} is a user of the app",
                    user.openid
                );
            }
        }
        assert!(
            fixture
                .users
                .iter()
                .filter(|u| u.appid == MSDK_QQ_APPID)
                .count()
                >= 5
        );
        assert!(
            fixture
                .users
                .iter()
                .filter(|u| u.appid == MSDK_WX_APPID)
                .count()
                >= 4
        );
    }
}
