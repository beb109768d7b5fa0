//! What the MSDK interfaces receive on the wire.
//!
//! Two jobs: the last requests as they arrived (method, query, content type, the body as
//! JSON after decryption), kept so that a client's tests can assert on the bytes the platform
//! received (`GET /_sandbox/msdk/requests?path=...`); and the JSON types of the body members,
//! checked against the seed's own request examples (`seed_request_examples.json`, extracted
//! from seed 002 by `tools/seed_request_examples.py`), so that a client that sends a string
//! where the platform's sample sends a number, or an array where it sends an object, is
//! refused as the platform would refuse a request it cannot read.

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::{Map, Value};

use super::MsdkError;
use crate::query::QueryParams;

/// How many received requests are kept, oldest dropped first: enough for any one test, and a
/// bounded cost whatever a client sends.
pub(crate) const KEPT: usize = 256;

/// The longest body kept whole in a record; a longer one is kept as its first this many bytes
/// of text, so that the record costs at most [`KEPT`] times this, whatever clients send.
const KEPT_BODY_BYTES: usize = 16 * 1024;

/// The content types a body may come with: what every seed-002 example sends (a form label on
/// JSON text), and the JSON type clients naturally use. No content type at all is accepted too
/// (the qqstrange_profile example has none).
const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/x-www-form-urlencoded", "application/json"];

/// Members whose example is one object while the seed also documents an array of such objects
/// for several items: the array must then hold at least two (one item is the object form).
const BATCH_MEMBERS: [(&str, &str); 1] = [("/profile/wxbattle_report", "json")];

/// One request as the sandbox received it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReceivedRequest {
    /// The canonical interface path.
    pub(crate) path: &'static str,
    pub(crate) method: String,
    /// Every query parameter but `sig`, decoded, in the order received.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) content_type: Option<String>,
    /// Whether the body came msdktea-encrypted (`Content-Encrypt`).
    pub(crate) encrypted: bool,
    /// Whether the request had a body at all (an empty one counts as none).
    pub(crate) has_body: bool,
    /// The body as JSON (decrypted first), or as text when it is not JSON or longer than
    /// [`KEPT_BODY_BYTES`] (then cut there); null without one.
    pub(crate) body: Value,
    /// The length of the (decrypted) body, in bytes.
    pub(crate) body_bytes: usize,
}

impl ReceivedRequest {
    pub(crate) fn new(
        path: &'static str,
        method: &str,
        params: &QueryParams,
        headers: &HeaderMap,
        encrypted: bool,
        plain_body: Option<&[u8]>,
    ) -> Self {
        let cut = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(KEPT_BODY_BYTES)]);
            Value::String(text.into_owned())
        };
        let body = match plain_body {
            None => Value::Null,
            Some(bytes) if bytes.len() > KEPT_BODY_BYTES => cut(bytes),
            Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| cut(bytes)),
        };
        ReceivedRequest {
            path,
            method: method.to_owned(),
            query: params
                .pairs_except("sig")
                .map(|(name, value)| {
                    (
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    )
                })
                .collect(),
            content_type: headers
                .get(CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            encrypted,
            has_body: plain_body.is_some(),
            body_bytes: plain_body.map_or(0, <[u8]>::len),
            body,
        }
    }
}

/// The last [`KEPT`] requests the MSDK interfaces received.
#[derive(Debug, Default)]
pub(crate) struct Received {
    requests: VecDeque<ReceivedRequest>,
}

impl Received {
    pub(crate) fn push(&mut self, request: ReceivedRequest) {
        if self.requests.len() == KEPT {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// The kept requests of one interface (every one without a path), oldest first.
    pub(crate) fn of(&self, path: Option<&str>) -> Vec<ReceivedRequest> {
        self.requests
            .iter()
            .filter(|r| path.is_none_or(|p| super::canonical_path(p) == Some(r.path)))
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.requests.clear();
    }
}

/// The body's content type must be one the platform reads (parameters such as charset aside).
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), MsdkError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|text| text.split(';').next())
        .map(|text| text.trim().to_ascii_lowercase());
    match essence {
        Some(essence) if ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) => Ok(()),
        _ => Err(MsdkError::ContentTypeNotAccepted),
    }
}

/// The request examples of seed 002 by canonical path: the body each sends, when it has one.
static EXAMPLES: LazyLock<HashMap<String, Map<String, Value>>> = LazyLock::new(|| {
    let all: Map<String, Value> = serde_json::from_str(include_str!("seed_request_examples.json"))
        .expect("seed_request_examples.json is JSON");
    all.into_iter()
        .filter_map(|(path, example)| match example.get("body") {
            Some(Value::Object(body)) => Some((path, body.clone())),
            _ => None,
        })
        .collect()
});

/// The JSON type of a value, as the refusal names it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every body member the seed's example of the interface also sends must have the example's
/// form where the seed is unambiguous (see [`compare_value`]), nested objects and array items
/// included. Members the example does not show are the interface's own business (its handler
/// reads them).
pub(crate) fn check_member_types(path: &str, body: &Map<String, Value>) -> Result<(), MsdkError> {
    match EXAMPLES.get(path) {
        Some(example) => compare_object(path, "", example, body),
        None => Ok(()),
    }
}

/// `at` is the dotted name of the object within the body ("" for the body itself).
fn compare_object(
    path: &str,
    at: &str,
    example: &'static Map<String, Value>,
    sent: &Map<String, Value>,
) -> Result<(), MsdkError> {
    for (name, expected) in example {
        let Some(value) = sent.get(name) else {
            continue;
        };
        let batch = at.is_empty() && BATCH_MEMBERS.contains(&(path, name.as_str()));
        let member = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}.{name}")
        };
        compare_value(path, &member, batch, expected, value)?;
    }
    Ok(())
}

fn compare_value(
    path: &str,
    member: &str,
    batch: bool,
    expected: &'static Value,
    value: &Value,
) -> Result<(), MsdkError> {
    let wrong = || MsdkError::WrongJsonType {
        member: member.to_owned(),
        expected: type_name(expected),
    };
    match (expected, value) {
        // An example's null says nothing; a null sent is "not given".
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::Object(expected), Value::Object(value)) => {
            compare_object(path, member, expected, value)
        }
        (Value::Object(expected), Value::Array(items)) if batch && items.len() >= 2 => {
            items.iter().try_for_each(|item| match item {
                Value::Object(item) => compare_object(path, member, expected, item),
                _ => Err(wrong()),
            })
        }
        (Value::Array(expected), Value::Array(items)) => match expected.first() {
            Some(first) => items
                .iter()
                .try_for_each(|item| compare_value(path, member, false, first, item)),
            None => Ok(()),
        },
        // Where the seed is unambiguous, the other form is refused: an array for its object
        // or an object for its array, a string of digits for its number. The other
        // departures (a number for a string, JSON text for an object) the handlers read as
        // the platform's lenient readers do.
        (Value::Object(_), Value::Array(_))
        | (Value::Array(_), Value::Object(_))
        | (Value::Number(_), Value::String(_)) => Err(wrong()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(path: &str, body: Value) -> Result<(), MsdkError> {
        check_member_types(path, body.as_object().unwrap())
    }

    #[test]
    fn the_examples_load() {
        assert!(EXAMPLES.len() >= 40, "{}", EXAMPLES.len());
        assert!(EXAMPLES.get("/freeflow/getinfo").is_none(), "no body");
    }

    #[test]
    fn numbers_where_the_example_sends_numbers() {
        assert!(check("/relation/qqstrange_profile", json!({"appid": 100732256})).is_ok());
        let refused = check("/relation/qqstrange_profile", json!({"appid": "100732256"}));
        assert_eq!(refused.unwrap_err().to_string(), "appid invalid");
        assert!(
            check("/auth/get_pfval", json!({"appid": 1})).is_ok(),
            "read leniently"
        );
    }

    #[test]
    fn one_battle_report_is_an_object_several_an_array() {
        let report =
            json!({"baseinfo": {"gamename": "g", "platid": 0}, "battleinfo": {"score": 1}});
        let path = "/profile/wxbattle_report";
        assert!(check(path, json!({"json": report})).is_ok());
        assert!(check(path, json!({"json": [report, report]})).is_ok());
        let one = check(path, json!({"json": [report]})).unwrap_err();
        assert_eq!(one.to_string(), "json invalid");
        let nested = json!({"json": [report, {"baseinfo": {"platid": "0"}}]});
        assert_eq!(
            check(path, nested).unwrap_err().to_string(),
            "json.baseinfo.platid invalid"
        );
    }

    #[test]
    fn array_items_follow_the_first_example_item() {
        let path = "/relation/qqstrange_profile";
        assert!(check(path, json!({"vcopenid": ["a", "b"]})).is_ok());
        assert!(check(path, json!({"vcopenid": ["a", {"b": 1}]})).is_ok());
        assert!(check(path, json!({"vcopenid": {"a": 1}})).is_err());
        assert!(
            check("/auth/verify_login", json!({"appid": ["1"]})).is_ok(),
            "left to the handler"
        );
    }

    #[test]
    fn content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            check_content_type(&headers)
        };
        assert!(with("application/x-www-form-urlencoded").is_ok());
        assert!(with("application/json; charset=utf-8").is_ok());
        assert!(with("Application/JSON").is_ok());
        assert!(with("text/xml").is_err());
        assert!(check_content_type(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn the_record_is_bounded() {
        let mut received = Received::default();
        let params = QueryParams::parse(Some("appid=1&sig=secret&openid=o"));
        for _ in 0..KEPT + 10 {
            received.push(ReceivedRequest::new(
                "/auth/verify_login",
                "POST",
                &params,
                &HeaderMap::new(),
                false,
                Some(b"{\"a\":1}"),
            ));
        }
        let kept = received.of(Some("/auth/verify_login/"));
        assert_eq!(kept.len(), KEPT);
        assert_eq!(
            kept[0].query,
            [("appid".into(), "1".into()), ("openid".into(), "o".into())]
        );
        assert_eq!(kept[0].body, json!({"a": 1}));
        assert!(received.of(Some("/auth/check_token")).is_empty());
        let large = vec![b' '; KEPT_BODY_BYTES * 4];
        let record = ReceivedRequest::new(
            "/auth/verify_login",
            "POST",
            &params,
            &HeaderMap::new(),
            false,
            Some(&large),
        );
        assert_eq!(record.body_bytes, large.len());
        assert_eq!(record.body.as_str().map(str::len), Some(KEPT_BODY_BYTES));
    }
}
