//! The request half of every call: a request message is validated against its
//! declared limits and mapped, by the route's plan, to upstream query parameters
//! and a JSON body.

use std::fmt::Write as _;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value};
use secrecy::SecretString;
use serde_json::{Map, Number, Value as Json};

use crate::{
    errors::{GatewayError, Violation},
    proto::{Charset, ErrorReason, FieldRole, JsonType},
};

use super::routes::{FieldPlan, Location, MessagePlan, RequiredWhen, Route, Rules};

/// A request ready for a platform client: the app it names, the credentials
/// gamegate signs with, and the parameters to send.
#[derive(Clone)]
pub struct UpstreamRequest {
    pub app_id: String,
    /// The user's session key (QQ mini-game signature key), never sent.
    pub session_key: Option<SecretString>,
    /// The caller left a `from_custody` session key empty: the platform
    /// uses the one it keeps for the app and openid.
    pub session_key_from_custody: bool,
    /// The user's openid (MSDK carries it in the URL query too).
    pub openid: String,
    /// Query parameters, in declaration order.
    pub query: Vec<(String, String)>,
    /// Members of the JSON body.
    pub body: Map<String, Json>,
    /// What identifies the request without its credentials (routes that serve
    /// cached answers only): `name=value;` of every non-sensitive field sent.
    pub fingerprint: String,
}

/// Validates `message` against the route's declared limits and maps it.
pub fn build_request(
    route: &Route,
    message: &DynamicMessage,
) -> Result<UpstreamRequest, GatewayError> {
    let mut violations = Vec::new();
    validate_message(&route.request, message, &FieldPath::Root, &mut violations);
    violations.truncate(MAX_VIOLATIONS);
    if !violations.is_empty() {
        return Err(GatewayError::InvalidRequest { violations });
    }

    let mut request = UpstreamRequest {
        app_id: String::new(),
        session_key: None,
        session_key_from_custody: false,
        openid: String::new(),
        query: Vec::new(),
        body: Map::new(),
        fingerprint: String::new(),
    };
    collect_fields(route, &route.request, message, &mut request);
    request.query.extend(route.constant_query.iter().cloned());
    Ok(request)
}

/// Maps the fields of `message` (and of its flattened message fields) into
/// `request`, by their declared roles and locations.
fn collect_fields(
    route: &Route,
    plan: &MessagePlan,
    message: &DynamicMessage,
    request: &mut UpstreamRequest,
) {
    for field in &plan.fields {
        if field.flatten {
            if let (Value::Message(nested), Some(nested_plan)) =
                (message.get_field(&field.field).as_ref(), &field.nested)
            {
                collect_fields(route, nested_plan, nested, request);
            }
            continue;
        }
        match field.role {
            FieldRole::AppId => {
                request.app_id = string_of(message, field);
            }
            FieldRole::SessionKey => {
                let key = string_of(message, field);
                if key.is_empty() && field.from_custody {
                    request.session_key_from_custody = true;
                } else {
                    request.session_key = Some(SecretString::from(key));
                }
            }
            FieldRole::Openid => {
                request.openid = string_of(message, field);
            }
            FieldRole::Unspecified | FieldRole::ServedFromCache | FieldRole::IssuedSessionKey => {}
        }
        let location = route.location_of(field);
        if location == Location::None {
            continue;
        }
        let Some(value) = field_to_json(field, message) else {
            continue;
        };
        if route.serve_cached_when_lost && !field.sensitive {
            // Written in place: no String per field.
            let _ = write!(request.fingerprint, "{}={value};", field.upstream_name);
        }
        if let (Some(member), Value::Bytes(bytes)) = (
            &field.length_member,
            message.get_field(&field.field).as_ref(),
        ) {
            request.body.insert(member.clone(), Json::from(bytes.len()));
        }
        match location {
            Location::Query => request
                .query
                .push((field.upstream_name.clone(), query_text(&value))),
            Location::Body => {
                request.body.insert(field.upstream_name.clone(), value);
            }
            Location::None => {}
        }
    }
}

/// Bytes that PHP's rawurlencode leaves as they are: `A-Z a-z 0-9 - _ . ~`.
const RAWURLENCODE_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Bytes as PHP's rawurlencode writes them (upload_wx "binary").
pub fn rawurlencode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, RAWURLENCODE_UNRESERVED).to_string()
}

fn string_of(message: &DynamicMessage, plan: &FieldPlan) -> String {
    match message.get_field(&plan.field).as_ref() {
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// The most violations one refusal lists: enough to fix a request, and a bound
/// on what a hostile one costs to describe.
const MAX_VIOLATIONS: usize = 32;

fn violation(
    violations: &mut Vec<Violation>,
    path: &FieldPath<'_>,
    rules: Option<&Rules>,
    description: String,
) {
    violations.push(Violation {
        field: path.to_string(),
        description,
        reason: rules
            .and_then(|r| r.reason)
            .unwrap_or(ErrorReason::FieldInvalid),
    });
}

fn required(path: &FieldPath<'_>) -> Violation {
    Violation {
        field: path.to_string(),
        description: "is required".into(),
        reason: ErrorReason::FieldRequired,
    }
}

/// Where a field is in the request (`user.openid`, `kv_list[2].key`): text
/// only for a violation, never for a valid request.
#[derive(Clone, Copy)]
enum FieldPath<'a> {
    Root,
    Field {
        parent: &'a FieldPath<'a>,
        name: &'a str,
    },
    Item {
        parent: &'a FieldPath<'a>,
        index: usize,
    },
}

impl FieldPath<'_> {
    fn is_root(&self) -> bool {
        matches!(self, FieldPath::Root)
    }
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Root => Ok(()),
            FieldPath::Field { parent, name } if parent.is_root() => f.write_str(name),
            FieldPath::Field { parent, name } => write!(f, "{parent}.{name}"),
            FieldPath::Item { parent, index } => write!(f, "{parent}[{index}]"),
        }
    }
}

fn validate_message(
    plan: &MessagePlan,
    message: &DynamicMessage,
    prefix: &FieldPath<'_>,
    violations: &mut Vec<Violation>,
) {
    for field in &plan.fields {
        let path = FieldPath::Field {
            parent: prefix,
            name: field.field.name(),
        };
        validate_field(field, message, &path, violations);
    }
    for condition in &plan.required_when {
        validate_condition(plan, condition, message, prefix, violations);
    }
    if let Some((max_total, reason)) = plan.max_total_bytes {
        let total: usize = plan
            .fields
            .iter()
            .map(|f| match message.get_field(&f.field).as_ref() {
                Value::String(s) => s.len(),
                _ => 0,
            })
            .sum();
        if total > max_total {
            violations.push(Violation {
                field: if prefix.is_root() {
                    plan.descriptor.name().to_string()
                } else {
                    prefix.to_string()
                },
                description: format!(
                    "together its fields hold {total} bytes; at most {max_total} are allowed"
                ),
                reason,
            });
        }
    }
}

/// A field required only when another field of its message has a given value
/// (declared `required_when`).
fn validate_condition(
    plan: &MessagePlan,
    condition: &RequiredWhen,
    message: &DynamicMessage,
    prefix: &FieldPath<'_>,
    violations: &mut Vec<Violation>,
) {
    let when = &plan.fields[condition.when_field];
    let Some(text) = sent_text(when, message) else {
        return;
    };
    if !condition.equals.contains(&text) || is_set(&condition.required, message) {
        return;
    }
    let mut path = prefix.to_string();
    for field in &condition.required {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field.name());
    }
    violations.push(Violation {
        field: path,
        description: format!("is required when {} is {text}", when.field.name()),
        reason: ErrorReason::FieldRequired,
    });
}

/// Whether the field at the end of `path` (a chain of singular fields from
/// `message` down) is set; an absent message on the way leaves it unset.
fn is_set(path: &[FieldDescriptor], message: &DynamicMessage) -> bool {
    let Some((last, through)) = path.split_last() else {
        return true;
    };
    let mut current = std::borrow::Cow::Borrowed(message);
    for field in through {
        if !current.has_field(field) {
            return false;
        }
        let next = match current.get_field(field).as_ref() {
            Value::Message(nested) => nested.clone(),
            _ => return false,
        };
        current = std::borrow::Cow::Owned(next);
    }
    !is_unset(last, &current)
}

/// The value a field is sent as, as text: what a `required_when` condition
/// compares.
fn sent_text(plan: &FieldPlan, message: &DynamicMessage) -> Option<String> {
    match field_to_json(plan, message)? {
        Json::String(text) => Some(text),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The caller left the field empty: an empty string, list or bytes, an absent
/// message or optional scalar.
fn is_unset(field: &FieldDescriptor, message: &DynamicMessage) -> bool {
    if field.supports_presence() {
        return !message.has_field(field);
    }
    match message.get_field(field).as_ref() {
        Value::String(text) => text.is_empty(),
        Value::Bytes(bytes) => bytes.is_empty(),
        Value::List(items) => items.is_empty(),
        _ => false,
    }
}

fn validate_field(
    plan: &FieldPlan,
    message: &DynamicMessage,
    path: &FieldPath<'_>,
    violations: &mut Vec<Violation>,
) {
    let rules = plan.rules.as_ref();
    let value = message.get_field(&plan.field);
    if let Value::List(items) = value.as_ref() {
        if items.is_empty() {
            if rules.is_some_and(|r| r.required || r.min_items.is_some()) {
                violations.push(Violation {
                    field: path.to_string(),
                    description: "is required and must hold at least one item".into(),
                    reason: ErrorReason::FieldRequired,
                });
            }
            return;
        }
        if let Some(rules) = rules {
            if let Some(min) = rules.min_items.filter(|min| items.len() < *min) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("holds {} items; at least {min} are required", items.len()),
                );
            }
            if let Some(max) = rules.max_items.filter(|max| items.len() > *max) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("holds {} items; at most {max} are allowed", items.len()),
                );
                // Its items are not looked at: the list is refused whole.
                return;
            }
        }
        for (index, item) in items.iter().enumerate() {
            if violations.len() >= MAX_VIOLATIONS {
                return;
            }
            let item_path = FieldPath::Item {
                parent: path,
                index,
            };
            validate_value(plan, item, &item_path, violations);
        }
        return;
    }
    if plan.nested.is_some() && !message.has_field(&plan.field) {
        if rules.is_some_and(|r| r.required) {
            violations.push(required(path));
        }
        return;
    }
    validate_value(plan, value.as_ref(), path, violations);
}

fn validate_value(
    plan: &FieldPlan,
    value: &Value,
    path: &FieldPath<'_>,
    violations: &mut Vec<Violation>,
) {
    let rules = plan.rules.as_ref();
    match value {
        Value::String(text) => {
            let Some(rules) = rules else { return };
            if text.is_empty() {
                if rules.required {
                    violations.push(required(path));
                }
                return;
            }
            if let Some(exact) = rules.exact_bytes.filter(|n| text.len() != *n) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("is {} bytes long; it must be exactly {exact}", text.len()),
                );
            }
            if let Some(max) = rules.max_bytes.filter(|n| text.len() > *n) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("is {} bytes long; at most {max} are allowed", text.len()),
                );
            }
            let charset_ok = match rules.charset {
                Charset::Unspecified => true,
                Charset::Hex => text.bytes().all(|b| b.is_ascii_hexdigit()),
                Charset::Decimal => text.bytes().all(|b| b.is_ascii_digit()),
                Charset::Word => text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            };
            if !charset_ok {
                let allowed = match rules.charset {
                    Charset::Hex => "hexadecimal digits",
                    Charset::Decimal => "decimal digits",
                    _ => "letters, digits and underscores",
                };
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("may hold only {allowed}"),
                );
            } else if let Some((min, max)) = rules.decimal_range {
                match text.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => {}
                    _ => violation(
                        violations,
                        path,
                        Some(rules),
                        format!("must be a decimal number from {min} to {max}"),
                    ),
                }
            }
            if !rules.allowed_values.is_empty() && !rules.allowed_values.iter().any(|v| v == text) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("must be one of: {}", rules.allowed_values.join(", ")),
                );
            }
        }
        Value::I32(_) | Value::I64(_) | Value::U32(_) | Value::U64(_) => {
            let Some((min, max)) = rules.and_then(|r| r.int_range) else {
                return;
            };
            let number = match value {
                Value::I32(n) => i128::from(*n),
                Value::I64(n) => i128::from(*n),
                Value::U32(n) => i128::from(*n),
                Value::U64(n) => i128::from(*n),
                _ => 0,
            };
            if number < i128::from(min) || number > i128::from(max) {
                violation(
                    violations,
                    path,
                    rules,
                    format!("must be from {min} to {max}"),
                );
            }
        }
        Value::Message(nested) if plan.is_free_form_json => {
            let size = prost::Message::encoded_len(nested);
            if let Some(max) = rules.and_then(|r| r.max_bytes).filter(|max| size > *max) {
                violation(
                    violations,
                    path,
                    rules,
                    format!("is {size} bytes encoded; at most {max} are allowed"),
                );
            }
        }
        Value::Message(nested) => {
            if let Some(nested_plan) = &plan.nested {
                validate_message(nested_plan, nested, path, violations);
            }
        }
        Value::Bytes(bytes) => {
            let Some(rules) = rules else { return };
            if bytes.is_empty() {
                if rules.required {
                    violations.push(required(path));
                }
                return;
            }
            if let Some(max) = rules.max_bytes.filter(|n| bytes.len() > *n) {
                violation(
                    violations,
                    path,
                    Some(rules),
                    format!("is {} bytes long; at most {max} are allowed", bytes.len()),
                );
            }
        }
        Value::EnumNumber(0) if rules.is_some_and(|r| r.required) => {
            violations.push(required(path));
        }
        _ => {}
    }
}

/// The upstream JSON of one field, or `None` when nothing is sent.
fn field_to_json(plan: &FieldPlan, message: &DynamicMessage) -> Option<Json> {
    if plan.field.supports_presence() && !message.has_field(&plan.field) {
        return match &plan.default_value {
            Some(text) => Some(with_json_type(plan.json_type, Json::String(text.clone()))),
            None if plan.always_send => Some(empty_json(plan)),
            None => None,
        };
    }
    let value = message.get_field(&plan.field);
    match value.as_ref() {
        Value::List(items) if plan.bitmask => {
            let mapping = plan.enum_mapping.as_ref()?;
            let mask = items
                .iter()
                .filter_map(|item| match item {
                    Value::EnumNumber(number) => mapping.to_upstream.get(number),
                    _ => None,
                })
                .filter_map(|upstream| upstream.parse::<i64>().ok())
                .fold(0i64, |mask, bit| mask | bit);
            (mask != 0).then(|| with_json_type(plan.json_type, Json::from(mask)))
        }
        Value::List(items) if items.is_empty() => plan.always_send.then(|| Json::Array(Vec::new())),
        Value::List(items) if items.len() == 1 && plan.single_item_as_object => {
            value_to_json(plan, &items[0])
        }
        Value::List(items) => Some(Json::Array(
            items
                .iter()
                .filter_map(|item| value_to_json(plan, item))
                .collect(),
        )),
        Value::String(text) if text.is_empty() => match &plan.default_value {
            Some(default) => Some(Json::String(default.clone())),
            None => plan.always_send.then(|| Json::String(String::new())),
        },
        other => value_to_json(plan, other),
    }
}

/// What an `always_send` field the caller left unset is sent as: the empty
/// value of its upstream JSON type.
fn empty_json(plan: &FieldPlan) -> Json {
    let natural = match plan.field.kind() {
        _ if plan.field.is_list() => return Json::Array(Vec::new()),
        Kind::String | Kind::Bytes => Json::String(String::new()),
        Kind::Bool => Json::Bool(false),
        Kind::Message(_) if plan.is_timestamp => Json::from(0),
        Kind::Message(_) => Json::Object(Map::new()),
        _ => Json::from(0),
    };
    with_json_type(plan.json_type, natural)
}

fn value_to_json(plan: &FieldPlan, value: &Value) -> Option<Json> {
    natural_json(plan, value).map(|json| with_json_type(plan.json_type, json))
}

/// `google.protobuf.Struct` holds every number as a double; the platforms want
/// `358267`, not `358267.0`, for whole numbers.
fn integral_numbers(json: Json) -> Json {
    match json {
        Json::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Json::from(f as i64),
            _ => Json::Number(n),
        },
        Json::Array(items) => Json::Array(items.into_iter().map(integral_numbers).collect()),
        Json::Object(members) => Json::Object(
            members
                .into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Converts a scalar to the JSON type the platform documents for it.
fn with_json_type(json_type: JsonType, json: Json) -> Json {
    match (json_type, json) {
        (JsonType::String, Json::Number(n)) => Json::String(n.to_string()),
        (JsonType::String, Json::Bool(b)) => Json::String(if b { "1" } else { "0" }.into()),
        (JsonType::Number, Json::String(s)) => match s.parse::<i64>() {
            Ok(n) => Json::from(n),
            Err(_) => s
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Json::Number)
                .unwrap_or(Json::String(s)),
        },
        (JsonType::Number, Json::Bool(b)) => Json::from(i64::from(b)),
        (_, json) => json,
    }
}

fn natural_json(plan: &FieldPlan, value: &Value) -> Option<Json> {
    Some(match value {
        Value::String(text) => Json::String(text.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => Number::from_f64(f64::from(*n)).map(Json::Number)?,
        Value::F64(n) => Number::from_f64(*n).map(Json::Number)?,
        Value::Bytes(bytes) if plan.url_encoded => Json::String(rawurlencode(bytes)),
        Value::Bytes(bytes) => Json::String(String::from_utf8_lossy(bytes).into_owned()),
        Value::Message(nested) if plan.is_free_form_json => {
            integral_numbers(serde_json::to_value(nested).ok()?)
        }
        Value::EnumNumber(number) => {
            let upstream = plan.enum_mapping.as_ref()?.to_upstream.get(number)?;
            match upstream.parse::<i64>() {
                Ok(n) => Json::from(n),
                Err(_) => Json::String(upstream.clone()),
            }
        }
        Value::Message(nested) if plan.is_timestamp => {
            let seconds = nested.get_field_by_name("seconds")?;
            Json::from(seconds.as_i64()?)
        }
        Value::Message(nested) => {
            let nested_plan = plan.nested.as_ref()?;
            let mut object = Map::new();
            for field in &nested_plan.fields {
                if let Some(json) = field_to_json(field, nested) {
                    object.insert(field.upstream_name.clone(), json);
                }
            }
            Json::Object(object)
        }
        Value::List(_) | Value::Map(_) => return None,
    })
}

/// How a JSON value is written in a query string.
fn query_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Json::Number(n) => n.to_string(),
        Json::Array(items) => items.iter().map(query_text).collect::<Vec<_>>().join(","),
        Json::Null => String::new(),
        Json::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use prost_reflect::DynamicMessage;
    use serde_json::json;

    use super::{Json, build_request, rawurlencode};
    use crate::{
        errors::GatewayError,
        plan::{RouteTable, UpstreamRequest},
        proto::{self, ErrorReason},
    };

    /// Builds the upstream request of `rpc` (`Service/Method` of gamegate.v1)
    /// from a generated message, as the generic path does.
    fn build(rpc: &str, message: &impl prost::Message) -> Result<UpstreamRequest, GatewayError> {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        let route = table
            .get(&format!("/gamegate.v1.{rpc}"))
            .unwrap_or_else(|| panic!("no route {rpc}"));
        let dynamic = DynamicMessage::decode(
            route.request.descriptor.clone(),
            message.encode_to_vec().as_slice(),
        )
        .expect("a generated message decodes");
        build_request(route, &dynamic)
    }

    fn wx_login() -> Option<proto::WxUserLogin> {
        Some(proto::WxUserLogin {
            openid: "oGRTijrV0l67hDGN7dstOl8CphN0".into(),
            access_token: "token".into(),
        })
    }

    #[test]
    fn a_link_share_without_its_link_is_refused_before_any_call() {
        let message = |msg_type: proto::WxGroupMessageType, share_url: &str| {
            proto::SendWxGroupMessageRequest {
                app_id: "wxcde873f99466f74a".into(),
                user: wx_login(),
                req_body: Some(proto::WxGroupMessageBody {
                    msg_type: msg_type as i32,
                    group_id: "guild".into(),
                    content: Some(proto::WxGroupMessageContent {
                        title: "t".into(),
                        share_url: share_url.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                options: None,
            }
        };
        let rpc = "RelationService/SendWxGroupMessage";
        let Err(GatewayError::InvalidRequest { violations }) =
            build(rpc, &message(proto::WxGroupMessageType::Link, ""))
        else {
            panic!("a link share without share_url is refused");
        };
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "req_body.content.share_url");
        assert_eq!(violations[0].reason, ErrorReason::FieldRequired);
        assert_eq!(violations[0].description, "is required when msg_type is 2");
        assert!(
            build(
                rpc,
                &message(proto::WxGroupMessageType::Link, "https://a.b/")
            )
            .is_ok()
        );
        let structured = build(rpc, &message(proto::WxGroupMessageType::Structured, ""))
            .expect("a structured share needs no link");
        assert_eq!(structured.body["reqBody"]["msg_type"], json!(1));
        assert!(
            structured.body["reqBody"]["open"]
                .get("share_url")
                .is_none()
        );
    }

    #[test]
    fn members_the_example_always_sends_go_out_empty() {
        let request = build(
            "ShareService/ShareWx",
            &proto::ShareWxRequest {
                app_id: "wxcde873f99466f74a".into(),
                openid: "o".into(),
                access_token: "t".into(),
                fopenid: "f".into(),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(request.body.get("thumb_media_id"), Some(&json!("")));
        assert_eq!(
            request.body.get("extinfo"),
            None,
            "not declared always_send"
        );
    }

    #[test]
    fn one_battle_report_is_an_object_and_several_an_array() {
        let report = || proto::WxBattleReport {
            base_info: Some(proto::WxBattleBaseInfo {
                game_name: "g".into(),
                plat_id: proto::WxBattlePlatform::Ios as i32,
                level: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let message = |reports| proto::ReportWxBattleRequest {
            app_id: "wxcde873f99466f74a".into(),
            openid: "o".into(),
            reports,
            options: None,
        };
        let rpc = "ProfileService/ReportWxBattle";
        let one = build(rpc, &message(vec![report()])).expect("valid");
        assert_eq!(one.body["json"]["baseinfo"]["level"], json!(2));
        let two = build(rpc, &message(vec![report(), report()])).expect("valid");
        assert!(matches!(&two.body["json"], Json::Array(items) if items.len() == 2));
    }

    #[test]
    fn rawurlencode_matches_php() {
        // python3: urllib.parse.quote(data, safe="-_.~"), which is PHP's rawurlencode.
        let data = [
            &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..],
            b"JFIF a~b-c_d.e/f+",
        ]
        .concat();
        assert_eq!(
            rawurlencode(&data),
            "%FF%D8%FF%E0%00%10JFIF%20a~b-c_d.e%2Ff%2B"
        );
    }
}

#[cfg(test)]
mod struct_tests {
    use serde_json::json;

    use super::integral_numbers;

    #[test]
    fn whole_doubles_become_integers_and_fractions_stay() {
        assert_eq!(
            integral_numbers(
                json!({"value": 358267.0, "ratio": 0.5, "list": [1.0, 2.5], "name": "gold"})
            ),
            json!({"value": 358267, "ratio": 0.5, "list": [1, 2.5], "name": "gold"})
        );
    }
}
