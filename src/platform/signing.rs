//! Signature primitives of the platforms (`SIGNING.md`). The sandbox has its own,
//! independent implementation; tests hold vectors computed by hand.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Bytes that OpenAPI v3 leaves unencoded: `A-Z a-z 0-9 - _ .`; everything else,
/// `~` included, becomes `%XX` with uppercase hex.
const OPENAPI_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Percent-encodes a string the way QQ Game OpenAPI v3 does, both in the signature
/// source and in the query string.
pub fn openapi_encode(text: &str) -> String {
    utf8_percent_encode(text, OPENAPI_UNRESERVED).to_string()
}

/// QQ mini-game login-state signature: lowercase hex of HMAC-SHA256 keyed by the
/// session key's UTF-8 bytes (not base64-decoded) over the exact body bytes.
pub fn minigame_signature(session_key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_key.as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// QQ Game OpenAPI v3 signature: `base64(HMAC-SHA1(appkey + "&", source))` with
/// `source = METHOD & enc(path) & enc(sorted "name=value" pairs joined by "&")`.
/// `params` are every request parameter except `sig`, unencoded.
pub fn openapi_signature(method: &str, path: &str, params: &[(String, String)], appkey: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined = sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let source = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        openapi_encode(path),
        openapi_encode(&joined)
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{appkey}&").as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(source.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}
