//! The JSON envelopes of the platforms' answers, read leniently: the answer must
//! be a JSON object; its result code (`errcode`, `ret`) may be a number or a
//! string holding one; its text (`errmsg`, `msg`, `message`) any JSON type.

use serde_json::{Map, Value as Json};

use crate::{
    errors::{self, CodeRow, GatewayError, UpstreamError},
    plan::Route,
    proto::Platform,
};

/// Parses an answer that must be a JSON object.
pub fn json_object(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
) -> Result<Map<String, Json>, GatewayError> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: "the answer is json but not an object".into(),
            transport: None,
        }),
        Err(error) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("the answer is not json: {error}"),
            transport: None,
        }),
    }
}

/// Parses an answer whose envelope carries its result code in `code_member`
/// (`errcode`, `ret`): the JSON object and that code (0 = success).
pub fn enveloped(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
    code_member: &str,
) -> Result<(Map<String, Json>, i64), GatewayError> {
    let answer = json_object(platform, endpoint, bytes)?;
    match envelope_code(&answer, code_member) {
        Some(code) => {
            // On the span of the upstream attempt that answered, when traced.
            crate::telemetry::trace::platform_code(code);
            Ok((answer, code))
        }
        None => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("{code_member} is not an integer"),
            transport: None,
        }),
    }
}

/// The answer of a route whose envelope is a result code (`code_member`) and a
/// text (the first of `text_members` present): its object when the code is 0,
/// otherwise the platform's refusal, its reason from the route's overrides and
/// `codes`.
pub fn coded_answer(
    platform: Platform,
    route: &Route,
    bytes: &[u8],
    code_member: &str,
    text_members: &[&str],
    codes: &[CodeRow],
) -> Result<Map<String, Json>, GatewayError> {
    let (answer, code) = enveloped(platform, &route.path, bytes, code_member)?;
    if code == 0 {
        return Ok(answer);
    }
    Err(GatewayError::Upstream(UpstreamError {
        platform,
        endpoint: route.path.clone(),
        code,
        message: envelope_text(&answer, text_members),
        reason: errors::classify(codes, &route.code_overrides, code),
        metadata: Vec::new(),
    }))
}

/// Reads an integer envelope member (`errcode`, `ret`) leniently: a number or a
/// string holding one. Absent means 0.
pub fn envelope_code(object: &Map<String, Json>, name: &str) -> Option<i64> {
    match object.get(name) {
        None | Some(Json::Null) => Some(0),
        Some(Json::Number(n)) => n.as_i64(),
        Some(Json::String(s)) if s.trim().is_empty() => Some(0),
        Some(Json::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
}

/// Reads a text envelope member (`errmsg`, `msg`), whatever its JSON type.
pub fn envelope_text(object: &Map<String, Json>, names: &[&str]) -> String {
    for name in names {
        match object.get(*name) {
            Some(Json::String(s)) => return s.clone(),
            Some(Json::Null) | None => continue,
            Some(other) => return other.to_string(),
        }
    }
    String::new()
}
