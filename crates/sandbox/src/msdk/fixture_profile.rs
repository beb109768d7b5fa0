//! Fixture types of the MSDK `profile`, `share` and `freeflow` modules (public, part of
//! [`crate::MsdkApp`] and [`crate::MsdkUser`]). Every field has a default, so fixtures and admin
//! calls written before these modules existed stay valid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::REDACTED;

/// A Tencent Video channel: `qqget_video_vip` / `wxget_video_vip` sign their body with its
/// secret (`md5(str(channel_id) + channel_secret + openid [+ accessToken] + str(timestamp))`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkVideoChannel {
    pub channel_id: i64,
    pub channel_secret: String,
}

impl fmt::Debug for MsdkVideoChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsdkVideoChannel")
            .field("channel_id", &self.channel_id)
            .field("channel_secret", &REDACTED)
            .finish()
    }
}

/// A WeChat message users may subscribe to (`/profile/subscribe_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkSubscribeMessage {
    pub id: i64,
    pub title: String,
}

/// The free-flow domains and addresses a game configured (`/freeflow/getinfo`'s `ipList`,
/// `ltList` China Unicom, `dxList` China Telecom, `ydList` China Mobile), and how long the
/// answer holds (`expire`, seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkFreeFlowLists {
    pub ip_list: String,
    pub lt_list: String,
    pub dx_list: String,
    pub yd_list: String,
    pub expire: i64,
}

/// A user's free-flow subscription: whether they are a free-flow user and with which carrier
/// (`ccType`: 0 China Unicom, 1 China Telecom, 2 China Mobile).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkFreeFlow {
    pub is_free: bool,
    pub cc_type: i32,
}

/// One `query_vip` entry for a flag (1 member, 2 QQ level, 4 blue diamond, 8 red diamond,
/// 16 super member, 64 Xinyue, 128 yellow diamond, 256 animation, 512 Xinyue level). Values are
/// the 0/1 flags and the level the interface answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkVipEntry {
    pub flag: i64,
    pub isvip: i32,
    pub year: i32,
    pub level: i32,
    pub luxury: i32,
}

/// A blue-diamond gift pack waiting to be claimed (`/profile/get_gift`, once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkGift {
    pub gift_id: String,
    pub gift_count: i64,
}

/// The first-login flags after real-name registration (`qqget_first_reg`, `wxget_first_reg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkFirstRegistration {
    pub need_pop: bool,
    pub realname: bool,
    pub mobile: bool,
}

/// Tencent Video membership (Unix seconds). `status` and `is_annual` are answered from the
/// times: a member while `end_time` is in the future, annual while `annual_end` is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsdkVideoVip {
    pub annual_beg: i64,
    pub annual_end: i64,
    pub beg_time: i64,
    pub end_time: i64,
    pub service_type: String,
    pub vip_lv: i32,
    pub vip_score: i64,
}

#[cfg(test)]
mod tests {
    use super::super::fixture::demo;
    use crate::demo::*;

    #[test]
    fn demo_video_channel_is_configured_for_both_apps() {
        let fixture = demo();
        for appid in [MSDK_QQ_APPID, MSDK_WX_APPID] {
            let app = fixture.apps.iter().find(|a| a.appid == appid).unwrap();
            assert_eq!(app.video_channels.len(), 1, "{appid}");
            assert_eq!(app.video_channels[0].channel_id, MSDK_VIDEO_CHANNEL_ID);
            assert_eq!(
                app.video_channels[0].channel_secret,
                MSDK_VIDEO_CHANNEL_SECRET
            );
            let debug = format!("{app:?}");
            assert!(debug.contains("30012"));
            assert!(
                !debug.contains(MSDK_VIDEO_CHANNEL_SECRET),
                "secret redacted"
            );
        }
    }

    #[test]
    fn demo_profile_data() {
        let fixture = demo();
        let user = |openid: &str| fixture.users.iter().find(|u| u.openid == openid).unwrap();
        let alice = user(MSDK_QQ_ALICE_OPENID);
        assert!(!alice.qq.blue_gifts.is_empty(), "a gift to claim");
        assert!(alice.freeflow.is_free);
        assert!((0..=2).contains(&alice.freeflow.cc_type));
        assert_eq!(user(MSDK_WX_ALICE_OPENID).wechat.xinyue_vip, 2);
        let wx = fixture
            .apps
            .iter()
            .find(|a| a.appid == MSDK_WX_APPID)
            .unwrap();
        assert!(wx.subscribe_messages.iter().any(|m| m.id == 77));
        assert_eq!(wx.freeflow.expire, 3600);
    }
}
