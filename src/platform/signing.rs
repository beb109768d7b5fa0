//! Signature primitives of the platforms (`SIGNING.md`). The sandbox has its own,
//! independent implementation; tests hold vectors computed by hand.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};

/// Bytes that OpenAPI v3 leaves unencoded: `A-Z a-z 0-9 - _ .`; everything else,
/// `~` included, becomes `%XX` with uppercase hex.
const OPENAPI_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Percent-encodes a string the way QQ Game OpenAPI v3 does, both in the signature
/// source and in the query string.
pub fn openapi_encode(text: &str) -> String {
    encode_query(text).to_string()
}

/// [`openapi_encode`] written straight into a query string being built
/// (`write!(target, "{}", encode_query(value))`), without a `String` per value.
pub fn encode_query(text: &str) -> PercentEncode<'_> {
    utf8_percent_encode(text, OPENAPI_UNRESERVED)
}

/// Appends `name=value` pairs, encoded by [`encode_query`], to a query string or
/// form body being built, each after a `&` unless `out` is empty or ends in `?`.
pub fn push_query_pairs<'a>(
    out: &mut String,
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    use std::fmt::Write as _;
    for (name, value) in pairs {
        if !(out.is_empty() || out.ends_with('?')) {
            out.push('&');
        }
        let _ = write!(out, "{}={}", encode_query(name), encode_query(value));
    }
}

/// QQ mini-game login-state signature: lowercase hex of HMAC-SHA256 keyed by the
/// session key's UTF-8 bytes (not base64-decoded) over the exact body bytes.
pub fn minigame_signature(session_key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_key.as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(body);
    lower_hex(&mac.finalize().into_bytes())
}

/// Lowercase hex of a digest, as the platforms' signatures write it. Into one
/// buffer: `hex::encode` collects the digits char by char (1,600 instructions
/// of a call under callgrind, bench/FINDINGS.md section 13).
pub fn lower_hex(digest: &[u8]) -> String {
    let mut digits = vec![0u8; digest.len() * 2];
    hex::encode_to_slice(digest, &mut digits).expect("two digits per byte");
    String::from_utf8(digits).expect("hex digits are ascii")
}

/// QQ Game OpenAPI v3 signature: `base64(HMAC-SHA1(appkey + "&", source))` with
/// `source = METHOD & enc(path) & enc(sorted "name=value" pairs joined by "&")`.
/// `params` are every request parameter except `sig`, unencoded.
pub fn openapi_signature(
    method: &str,
    path: &str,
    params: &[(String, String)],
    appkey: &str,
) -> String {
    let source = openapi_signature_source(method, path, params);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{appkey}&").as_bytes())
        .expect("hmac accepts keys of any length");
    mac.update(source.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The string an OpenAPI v3 signature is computed over.
pub fn openapi_signature_source(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined = sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        openapi_encode(path),
        openapi_encode(&joined)
    )
}

#[cfg(test)]
mod tests {
    //! Vectors computed by hand from SIGNING.md with Python's hmac/hashlib/base64
    //! (not with this code), e.g.:
    //! `hmac.new(b"HyVFkGl5F5OQWJZZaNzBBg==", body, hashlib.sha256).hexdigest()` and
    //! `base64.b64encode(hmac.new(b"demo-openapi-appkey&", source.encode(), hashlib.sha1).digest())`.
    use super::*;

    const SESSION_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";

    #[test]
    fn minigame_signature_uses_the_session_key_string_over_the_exact_body() {
        assert_eq!(
            minigame_signature(
                SESSION_KEY,
                br#"{"kv_list":[{"key":"score","value":"100"}]}"#
            ),
            "f026a8d27ebc5f205fdfd0cdd0db90f3b0308571df4cc1653478f22b5a72af82"
        );
        // The seed's own example content.
        let seed_body = br#"{"kv_list":[{"key":"1","value":0}]}"#;
        assert_eq!(
            minigame_signature(SESSION_KEY, seed_body),
            "d8b0ae81b9af33181e2440dee41b047a71fbea101f994533a4882e67dfda6959"
        );
        // What a base64-decoded key would give: must not be what we send.
        assert_ne!(
            minigame_signature(SESSION_KEY, seed_body),
            "3eed84b7d76cc20d3739949f3abbf5713d37d54d24de172a6a65690f18bc5635"
        );
        // One byte of whitespace changes everything: sign what is sent.
        assert_ne!(
            minigame_signature(SESSION_KEY, br#"{"kv_list": [{"key":"1","value":0}]}"#),
            minigame_signature(SESSION_KEY, seed_body)
        );
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn openapi_signature_of_get_dawanka_info() {
        let params = params(&[
            ("version", "2"),
            ("appid", "1110766236"),
            ("openid", "AB055EE03EE6F7CCB31F6CCE75A50A38"),
            ("openkey", "CC11B9096D458AEFDEF72981AE5A136D"),
            ("pf", "qqgame"),
            ("format", "json"),
            ("userip", "10.0.0.1"),
        ]);
        assert_eq!(
            openapi_signature_source("GET", "/v3/user/get_dawanka_info", &params),
            "GET&%2Fv3%2Fuser%2Fget_dawanka_info&appid%3D1110766236%26format%3Djson%26openid%3DAB055EE03EE6F7CCB31F6CCE75A50A38%26openkey%3DCC11B9096D458AEFDEF72981AE5A136D%26pf%3Dqqgame%26userip%3D10.0.0.1%26version%3D2"
        );
        let sig = openapi_signature(
            "GET",
            "/v3/user/get_dawanka_info",
            &params,
            "demo-openapi-appkey",
        );
        assert_eq!(sig, "Csl//tkIZetPSYKpLNHt885Sb18=");
        // In the query string the sig is encoded like any other value.
        assert_eq!(openapi_encode(&sig), "Csl%2F%2FtkIZetPSYKpLNHt885Sb18%3D");
    }

    #[test]
    fn query_pairs_are_encoded_and_joined() {
        let pairs = [
            ("a b".to_string(), "x~y".to_string()),
            ("k".to_string(), "1&2".to_string()),
        ];
        let pairs = pairs.iter().map(|(n, v)| (n, v));
        let mut form = String::new();
        push_query_pairs(&mut form, pairs.clone());
        assert_eq!(form, "a%20b=x%7Ey&k=1%262");
        let mut target = "/p?".to_string();
        push_query_pairs(&mut target, pairs.clone());
        assert_eq!(target, "/p?a%20b=x%7Ey&k=1%262");
        let mut target = "/p?t=1".to_string();
        push_query_pairs(&mut target, pairs);
        assert_eq!(target, "/p?t=1&a%20b=x%7Ey&k=1%262");
    }

    #[test]
    fn openapi_signature_encodes_space_slash_tilde_and_plus() {
        let params = params(&[
            ("appid", "1110766236"),
            ("note", "a b/c~d+e"),
            ("pf", "qqgame"),
        ]);
        assert_eq!(
            openapi_signature_source("get", "/v3/user/report_dawanka_pay", &params),
            "GET&%2Fv3%2Fuser%2Freport_dawanka_pay&appid%3D1110766236%26note%3Da%20b%2Fc%7Ed%2Be%26pf%3Dqqgame"
        );
        assert_eq!(
            openapi_signature(
                "get",
                "/v3/user/report_dawanka_pay",
                &params,
                "demo-openapi-appkey"
            ),
            "wzaoyd+DtFQkbP19p6JrQrsLG2g="
        );
    }
}
