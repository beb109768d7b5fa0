//! MSDK `share` module: backend shares to Mobile QQ friends (`/share/qq`) and WeChat friends
//! (`/share/wx`, `/share/wx_link`), and the thumbnail upload whose `media_id` `/share/wx` takes.
//!
//! A user receives at most 5 shares a day, and at most 3 a day from the same sender (the seed's
//! limits for QQ, applied to each app's shares alike); days are China Standard Time days.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::{
    Call, Credential, Interface, MsdkError, MsdkPlatform, MsdkState, Scope, md5_hex, object,
    opt_int, opt_str,
};

/// Documented limits.
pub(super) const MAX_SHARES_RECEIVED_PER_DAY: usize = 5;
pub(super) const MAX_SHARES_PER_SENDER_PER_DAY: usize = 3;
const MAX_QQ_TITLE_BYTES: usize = 45;
const MAX_QQ_SUMMARY_BYTES: usize = 45;
const MAX_QQ_TARGET_URL_BYTES: usize = 512;
/// `/share/qq` supports one friend per share.
const MAX_QQ_FOPENIDS: usize = 1;
const MAX_WX_EXTINFO_BYTES: usize = 2048;
const MAX_WX_LINK_URL_BYTES: usize = 1024;
pub(super) const MAX_UPLOAD_BYTES: i64 = 64 * 1024;
/// China Standard Time: the day boundary of the daily limits.
const CHINA_UTC_OFFSET_SECS: i64 = 8 * 3600;
/// `act`, `dst` and `flag` of `/share/qq` have one allowed value each today.
const QQ_ACT: i64 = 1;
const QQ_DST: i64 = 1001;
const QQ_FLAG: i64 = 1;
/// The four game tags and the ADTAG each needs in `target_url` (case-sensitive).
const GAME_TAGS: [(&str, &str); 4] = [
    ("MSG_HEART_SEND", "gameobj.msg_heart"),
    ("MSG_INVITE", "gameobj.msg_invite"),
    ("MSG_FRIEND_EXCEED", "gameobj.msg_exceed"),
    ("MSG_SHARE_FRIEND_PVP", "gameobj.msg_pvp"),
];
const MEDIA_ID_LEN: usize = 64;
const MEDIA_ID_CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const UPLOAD_TOKEN_LEN: usize = 86;

const fn share(
    path: &'static str,
    scope: Scope,
    credential: Credential,
    handler: super::Handler,
) -> Interface {
    Interface {
        path,
        scope,
        credential,
        message_key: "msg",
        success: "success",
        reports_loss: false,
        handler,
    }
}

pub(super) const INTERFACES: &[Interface] = &[
    share(
        "/share/qq",
        Scope::Qq,
        Credential::BodyAccessToken,
        share_qq,
    ),
    share(
        "/share/upload_wx",
        Scope::Wechat,
        Credential::AppSecret,
        upload_wx,
    ),
    share(
        "/share/wx",
        Scope::Wechat,
        Credential::BodyAccessToken,
        share_wx,
    ),
    share(
        "/share/wx_link",
        Scope::Wechat,
        Credential::BodyAccessToken,
        share_wx_link,
    ),
];

/// One app's shares and uploaded media.
#[derive(Default)]
pub(super) struct ShareState {
    /// Every accepted share, oldest first.
    shares: Vec<Share>,
    /// media_id -> what was uploaded (without the bytes).
    media: BTreeMap<String, Value>,
}

struct Share {
    from: String,
    to: String,
    day: i64,
    record: Value,
}

/// The admin view of an app's shares: all of them, or those `openid` received.
pub(super) fn shares(state: &MsdkState, appid: &str, receiver: Option<&str>) -> Value {
    let shares: Vec<&Value> = state
        .share
        .get(appid)
        .map(|app| app.shares.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|share| receiver.is_none_or(|to| share.to == to))
        .map(|share| &share.record)
        .collect();
    json!({ "shares": shares })
}

/// Forgets the app's shares, as if a new day had started; returns how many there were.
pub(super) fn clear_shares(state: &mut MsdkState, appid: &str) -> usize {
    state
        .share
        .get_mut(appid)
        .map_or(0, |app| std::mem::take(&mut app.shares).len())
}

/// The admin view of an app's uploaded media.
pub(super) fn media(state: &MsdkState, appid: &str) -> Value {
    let media: Vec<&Value> = state
        .share
        .get(appid)
        .map(|app| app.media.values().collect())
        .unwrap_or_default();
    json!({ "media": media })
}

fn china_day(now: i64) -> i64 {
    (now + CHINA_UTC_OFFSET_SECS).div_euclid(86_400)
}

fn check_len(value: &str, field: &'static str, limit: usize) -> Result<(), MsdkError> {
    if value.len() > limit {
        return Err(MsdkError::TooLong { field, limit });
    }
    Ok(())
}

/// The receiver must be the sender, a friend playing the same game, or (QQ, whose shares also
/// invite) one of the sender's QQ friends who have not registered yet.
fn check_receiver(state: &MsdkState, call: &Call, to: &str) -> Result<(), MsdkError> {
    if to == call.openid
        || state
            .friends_of(call.appid(), &call.openid)
            .iter()
            .any(|f| f == to)
    {
        return Ok(());
    }
    let unregistered = call.app.platform == MsdkPlatform::Qq
        && state
            .user(call.appid(), &call.openid)
            .is_some_and(|user| user.unregistered_friends.iter().any(|f| f.openid == to));
    if unregistered {
        Ok(())
    } else {
        Err(MsdkError::NotShareFriend)
    }
}

/// Checks the receiver and the daily limits, then records the share.
fn record_share(
    state: &mut MsdkState,
    call: &Call,
    to: &str,
    kind: &str,
    mut record: Map<String, Value>,
) -> Result<(), MsdkError> {
    check_receiver(state, call, to)?;
    let day = china_day(call.now);
    let app = state.share.entry(call.appid().to_owned()).or_default();
    let today: Vec<&Share> = app
        .shares
        .iter()
        .filter(|share| share.to == to && share.day == day)
        .collect();
    if today.len() >= MAX_SHARES_RECEIVED_PER_DAY {
        return Err(MsdkError::ReceiverDailyLimit {
            limit: MAX_SHARES_RECEIVED_PER_DAY,
        });
    }
    if today
        .iter()
        .filter(|share| share.from == call.openid)
        .count()
        >= MAX_SHARES_PER_SENDER_PER_DAY
    {
        return Err(MsdkError::SenderDailyLimit {
            limit: MAX_SHARES_PER_SENDER_PER_DAY,
        });
    }
    record.insert("kind".to_owned(), json!(kind));
    record.insert("openid".to_owned(), json!(call.openid));
    record.insert("to".to_owned(), json!(to));
    record.insert("time".to_owned(), json!(call.now));
    record.insert("day".to_owned(), json!(day));
    app.shares.push(Share {
        from: call.openid.clone(),
        to: to.to_owned(),
        day,
        record: Value::Object(record),
    });
    Ok(())
}

/// An int field with one allowed value, which is also the default.
fn fixed_int(call: &Call, field: &'static str, allowed: i64) -> Result<(), MsdkError> {
    match call.opt_int(field)? {
        None => Ok(()),
        Some(value) if value == allowed => Ok(()),
        Some(_) => Err(MsdkError::Invalid(field)),
    }
}

/// The one receiver of `fopenids`: a JSON array (or a JSON string of one) of
/// `{"openid":..,"type":0}`.
fn fopenid(call: &Call) -> Result<String, MsdkError> {
    let list = match call.body.get("fopenids") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Array(items)) => items,
            _ => return Err(MsdkError::Invalid("fopenids")),
        },
        _ => return Err(MsdkError::Invalid("fopenids")),
    };
    if list.len() > MAX_QQ_FOPENIDS {
        return Err(MsdkError::TooMany {
            field: "fopenids",
            limit: MAX_QQ_FOPENIDS,
        });
    }
    let Some(Value::Object(entry)) = list.first() else {
        return Err(MsdkError::Invalid("fopenids"));
    };
    let openid = opt_str(entry, "openid", "fopenids.openid")?
        .ok_or(MsdkError::Invalid("fopenids.openid"))?;
    if !matches!(opt_int(entry, "type", "fopenids.type")?, None | Some(0)) {
        return Err(MsdkError::Invalid("fopenids.type"));
    }
    Ok(openid)
}

/// The `ADTAG` parameter of a URL's query, if any.
fn adtag(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("ADTAG="))
        .map(str::trim)
}

/// P2P share to one Mobile QQ friend. Required: `fopenids` (one friend), `title` (45 bytes),
/// `summary` (45 bytes), `target_url` (512 bytes, with the ADTAG of `game_tag`), `game_tag`.
/// `act`, `dst`, `flag` default to and must be 1, 1001, 1; `oauth_consumer_key`, when sent,
/// must be the appid.
fn share_qq(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let to = fopenid(call)?;
    fixed_int(call, "act", QQ_ACT)?;
    fixed_int(call, "dst", QQ_DST)?;
    fixed_int(call, "flag", QQ_FLAG)?;
    let src = call.opt_int("src")?.unwrap_or(0);
    if let Some(key) = call.opt_str("oauth_consumer_key")?
        && key != call.appid()
    {
        return Err(MsdkError::Invalid("oauth_consumer_key"));
    }
    let title = call.req_str("title")?;
    check_len(&title, "title", MAX_QQ_TITLE_BYTES)?;
    let summary = call.req_str("summary")?;
    check_len(&summary, "summary", MAX_QQ_SUMMARY_BYTES)?;
    let target_url = call.req_str("target_url")?;
    check_len(&target_url, "target_url", MAX_QQ_TARGET_URL_BYTES)?;
    let game_tag = call.req_str("game_tag")?;
    let Some((_, expected_adtag)) = GAME_TAGS.iter().find(|(tag, _)| *tag == game_tag) else {
        return Err(MsdkError::Invalid("game_tag"));
    };
    if adtag(&target_url) != Some(*expected_adtag) {
        return Err(MsdkError::Invalid("target_url"));
    }
    let image_url = call.opt_str("image_url")?.unwrap_or_default();
    let userip = call.opt_str("userip")?.unwrap_or_default();
    call.opt_str("previewText")?;
    let record = object([
        ("title", json!(title)),
        ("summary", json!(summary)),
        ("target_url", json!(target_url)),
        ("game_tag", json!(game_tag)),
        ("image_url", json!(image_url)),
        ("userip", json!(userip)),
        ("src", json!(src)),
    ]);
    record_share(state, call, &to, "qq", record)?;
    Ok(Map::new())
}

/// `binary` as PHP's rawurlencode writes it: `%XX` is a byte, any other character stands for
/// its own UTF-8 bytes (`+` included). A `%` without two hex digits is refused.
fn raw_url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn random_text(len: usize, charset: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(charset[rng.random_range(0..charset.len())]))
        .collect()
}

/// Stores a thumbnail (authenticated by `secret`, checked before) and answers a new media_id.
/// `flag` defaults to and must be 1, `type` to and must be `thumb`; `content_type` an `image/`
/// type; `filelength` 1..=65536 and the decoded length of `binary`.
fn upload_wx(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    fixed_int(call, "flag", 1)?;
    let kind = call.opt_str("type")?.unwrap_or_else(|| "thumb".to_owned());
    if kind != "thumb" {
        return Err(MsdkError::Invalid("type"));
    }
    let filename = call.req_str("filename")?;
    let content_type = call.req_str("content_type")?;
    if !content_type.starts_with("image/") {
        return Err(MsdkError::Invalid("content_type"));
    }
    let filelength = call
        .opt_int("filelength")?
        .filter(|length| *length > 0)
        .ok_or(MsdkError::Invalid("filelength"))?;
    if filelength > MAX_UPLOAD_BYTES {
        return Err(MsdkError::FileTooLarge {
            limit: MAX_UPLOAD_BYTES,
        });
    }
    let binary = call.req_str("binary")?;
    let bytes = raw_url_decode(&binary).ok_or(MsdkError::Invalid("binary"))?;
    if i64::try_from(bytes.len()).ok() != Some(filelength) {
        return Err(MsdkError::FileLengthMismatch);
    }
    let app = state.share.entry(call.appid().to_owned()).or_default();
    let media_id = loop {
        let candidate = random_text(MEDIA_ID_LEN, MEDIA_ID_CHARSET);
        if !app.media.contains_key(&candidate) {
            break candidate;
        }
    };
    app.media.insert(
        media_id.clone(),
        json!({
            "media_id": media_id,
            "type": kind,
            "filename": filename,
            "content_type": content_type,
            "length": bytes.len(),
            "md5": md5_hex(&[&bytes]),
            "created_at": call.now.to_string(),
            "openid": call.openid,
        }),
    );
    Ok(object([
        ("type", json!(kind)),
        ("media_id", json!(media_id)),
        ("created_at", json!(call.now.to_string())),
        (
            "access_token",
            json!(random_text(UPLOAD_TOKEN_LEN, &MEDIA_ID_CHARSET[..62])),
        ),
        ("expire", json!("")),
    ]))
}

/// A share to a WeChat friend playing the same game (or oneself, as in the seed's example).
/// Required: `fopenid`, `title`; `extinfo` up to 2048 bytes; `thumb_media_id` empty (the app's
/// icon) or a media_id of `/share/upload_wx`.
fn share_wx(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let to = call.req_str("fopenid")?;
    let title = call.req_str("title")?;
    let description = call.opt_str("description")?.unwrap_or_default();
    let extinfo = call.opt_str("extinfo")?.unwrap_or_default();
    check_len(&extinfo, "extinfo", MAX_WX_EXTINFO_BYTES)?;
    let media_tag_name = call.opt_str("media_tag_name")?.unwrap_or_default();
    let thumb = call.opt_str("thumb_media_id")?.unwrap_or_default();
    if !thumb.is_empty()
        && !state
            .share
            .get(call.appid())
            .is_some_and(|app| app.media.contains_key(&thumb))
    {
        return Err(MsdkError::UnknownMedia);
    }
    let record = object([
        ("title", json!(title)),
        ("description", json!(description)),
        ("extinfo", json!(extinfo)),
        ("media_tag_name", json!(media_tag_name)),
        ("thumb_media_id", json!(thumb)),
    ]);
    record_share(state, call, &to, "wx", record)?;
    Ok(Map::new())
}

/// A link message to a WeChat friend. Required: `touser`, `title`, `url`; `url` and `thumb_url`
/// up to 1024 bytes.
fn share_wx_link(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let to = call.req_str("touser")?;
    let title = call.req_str("title")?;
    let description = call.opt_str("description")?.unwrap_or_default();
    let url = call.req_str("url")?;
    check_len(&url, "url", MAX_WX_LINK_URL_BYTES)?;
    let thumb_url = call.opt_str("thumb_url")?.unwrap_or_default();
    check_len(&thumb_url, "thumb_url", MAX_WX_LINK_URL_BYTES)?;
    let record = object([
        ("title", json!(title)),
        ("description", json!(description)),
        ("url", json!(url)),
        ("thumb_url", json!(thumb_url)),
    ]);
    record_share(state, call, &to, "wx_link", record)?;
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rawurlencode_is_decoded_strictly() {
        assert_eq!(
            raw_url_decode("%FF%D8%FF%E0%00%10JFIF%00").unwrap(),
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
        );
        assert_eq!(raw_url_decode("a+b%20c").unwrap(), b"a+b c");
        assert_eq!(raw_url_decode("%e4%b8%ad").unwrap(), "中".as_bytes());
        for bad in ["%", "%4", "%G0", "ab%"] {
            assert!(raw_url_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn adtags() {
        assert_eq!(
            adtag("http://gamecenter.qq.com/gcjump?appid=1&pf=invite&ADTAG=gameobj.msg_invite"),
            Some("gameobj.msg_invite")
        );
        assert_eq!(
            adtag("http://x/?ADTAG=gameobj.msg_pvp#top"),
            Some("gameobj.msg_pvp")
        );
        assert_eq!(adtag("http://x/?XADTAG=gameobj.msg_pvp"), None);
        assert_eq!(adtag("http://x/"), None);
    }

    #[test]
    fn china_days_start_at_16_utc() {
        // 2023-11-14 15:59:59 UTC is still the 14th in China; 16:00:00 is the 15th.
        assert_eq!(china_day(1_699_977_599) + 1, china_day(1_699_977_600));
    }
}
