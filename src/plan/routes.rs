//! The route table: every RPC of `gamegate.v1` that carries a
//! `(gamegate.v1.route)` option, compiled once at start from the descriptor
//! pool into plans (a message plan per request and response type).

use std::{collections::HashMap, sync::Arc};

use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind,
    MessageDescriptor, MethodDescriptor, Value,
};
use thiserror::Error;

use crate::proto::{
    self, BodySignatureRecipe, Charset, ErrorReason, FieldLocation, FieldRole, FieldRules,
    HttpMethod, JsonType, MessageRules, Platform, RequestBody, UpstreamField, UpstreamRoute,
};
use crate::upstream::Method;

/// A proto declaration gamegate cannot serve; found at start, never at call time.
#[derive(Debug, Error)]
pub enum RouteDeclarationError {
    #[error("the descriptor pool lacks the extension {0}")]
    MissingExtension(&'static str),
    #[error("option {option} of {element} cannot be read: {source}")]
    UnreadableOption {
        option: &'static str,
        element: String,
        source: prost::DecodeError,
    },
    #[error("rpc {0} declares no platform, method or path in its route")]
    IncompleteRoute(String),
    #[error("rpc {0} is not unary; gamegate serves unary rpcs only")]
    Streaming(String),
    #[error(
        "rpc {rpc} may fan out into {calls} upstream calls (max_items over batch_size); at most {MAX_FAN_OUT_CALLS} are allowed"
    )]
    FanOutTooWide { rpc: String, calls: usize },
    #[error("message {message} declares a requirement on {path}, which it has no field for")]
    UnknownConditionField { message: String, path: String },
    #[error("rpc {0} declares an issued session key in its response but no openid field")]
    IssuedSessionWithoutOpenid(String),
    #[error("rpc {rpc} sends no body, but declares field {field} in the body")]
    BodyFieldWithoutBody { rpc: String, field: String },
}

/// Where a request field goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Query,
    Body,
    None,
}

/// The most items of a repeated field whose declaration sets no `max_items`
/// (where the platform's document is silent): generous for any game's lists,
/// and a bound on what one request may cost.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// The longest string or bytes field whose declaration sets no `max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 4096;
/// The most upstream calls one request may fan out into: a declared list
/// bound over its batch size beyond this is refused at start.
pub const MAX_FAN_OUT_CALLS: usize = 10;
/// What one protobuf field costs on the wire at most besides its value: a tag
/// of up to 5 bytes and a length of up to 5.
const FIELD_OVERHEAD: usize = 10;

/// Compiled limits of one field.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub required: bool,
    pub max_bytes: Option<usize>,
    pub exact_bytes: Option<usize>,
    pub min_items: Option<usize>,
    pub max_items: Option<usize>,
    pub charset: Charset,
    pub decimal_range: Option<(i64, i64)>,
    pub int_range: Option<(i64, i64)>,
    pub allowed_values: Vec<String>,
    pub reason: Option<ErrorReason>,
}

impl Rules {
    /// The declared rules of `field`, with the defaults that bound every
    /// repeated and every string or bytes field.
    fn of_field(declared: Option<&FieldRules>, field: &FieldDescriptor, role: FieldRole) -> Self {
        let mut rules = declared.map(Rules::compile).unwrap_or_default();
        // App ids select gamegate's credentials and appear in its logs and
        // metrics: whatever a platform's ids look like (digits, `wx…`, `G_…`),
        // letters, digits and underscores only.
        if role == FieldRole::AppId {
            if rules.charset == Charset::Unspecified {
                rules.charset = Charset::Word;
            }
            rules.max_bytes.get_or_insert(64);
        }
        if field.is_list() && rules.max_items.is_none() {
            rules.max_items = Some(DEFAULT_MAX_ITEMS);
        }
        let sized =
            matches!(field.kind(), Kind::String | Kind::Bytes) || free_form_json(&field.kind());
        if sized && rules.max_bytes.is_none() && rules.exact_bytes.is_none() {
            rules.max_bytes = Some(DEFAULT_MAX_BYTES);
        }
        rules
    }

    fn compile(rules: &FieldRules) -> Self {
        let positive = |n: u32| (n > 0).then_some(n as usize);
        let range = |min: Option<i64>, max: Option<i64>| {
            (min.is_some() || max.is_some())
                .then(|| (min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX)))
        };
        Rules {
            required: rules.required,
            max_bytes: positive(rules.max_bytes),
            exact_bytes: positive(rules.exact_bytes),
            min_items: positive(rules.min_items),
            max_items: positive(rules.max_items),
            charset: rules.charset(),
            decimal_range: range(rules.decimal_min, rules.decimal_max),
            int_range: range(rules.int_min, rules.int_max),
            allowed_values: rules.allowed_values.clone(),
            reason: match rules.reason() {
                ErrorReason::Unspecified => None,
                reason => Some(reason),
            },
        }
    }
}

/// Enum values and their upstream spellings, both ways.
#[derive(Debug, Default)]
pub struct EnumMapping {
    pub to_upstream: HashMap<i32, String>,
    pub from_upstream: HashMap<String, i32>,
}

/// How one field of a message maps to and from the upstream JSON or query.
#[derive(Debug)]
pub struct FieldPlan {
    pub field: FieldDescriptor,
    pub upstream_name: String,
    /// Where a top-level request field goes; `None`: the route's default
    /// (query for GET, body for POST).
    pub location: Option<Location>,
    pub role: FieldRole,
    /// Declared limits, plus the defaults that bound every list and string.
    pub rules: Option<Rules>,
    pub default_value: Option<String>,
    /// The plan of the field's message type, for message fields (not Timestamp).
    pub nested: Option<Arc<MessagePlan>>,
    pub enum_mapping: Option<Arc<EnumMapping>>,
    /// The field is a `google.protobuf.Timestamp` carried upstream as Unix seconds.
    pub is_timestamp: bool,
    /// A message field whose own fields map as if they were the parent's.
    pub flatten: bool,
    /// The JSON type of the value upstream, when not the natural one.
    pub json_type: JsonType,
    /// The platform's per-call maximum of a repeated field (fan-out above it).
    pub batch_size: Option<usize>,
    /// Declared `sensitive`: a credential, never logged, never part of a cache
    /// key.
    pub sensitive: bool,
    /// Other spellings accepted in answers.
    pub also_named: Vec<String>,
    /// A repeated enum sent as the bitwise OR of its upstream numbers.
    pub bitmask: bool,
    /// Bytes sent as a percent-encoded string (PHP rawurlencode).
    pub url_encoded: bool,
    /// The body member that also carries the byte length of this field.
    pub length_member: Option<String>,
    /// `google.protobuf.Struct`, `Value` or `ListValue`: free-form JSON.
    pub is_free_form_json: bool,
    /// Sent even when empty: as the default value, or the empty value of its type.
    pub always_send: bool,
    /// A session key the caller may leave empty: gamegate then uses the one
    /// it keeps in custody for the request's app and openid.
    pub from_custody: bool,
    /// A repeated message sent as the object itself when it holds one item.
    pub single_item_as_object: bool,
}

/// How a whole message maps, field by field.
#[derive(Debug)]
pub struct MessagePlan {
    pub descriptor: MessageDescriptor,
    pub fields: Vec<FieldPlan>,
    pub max_total_bytes: Option<(usize, ErrorReason)>,
    /// Fields required only when another field has a given value.
    pub required_when: Vec<RequiredWhen>,
    /// The largest protobuf encoding of a message within every field's
    /// limits (unknown fields aside): the bound on what a request of this
    /// type may cost to read.
    pub max_wire_bytes: usize,
}

/// A declared conditional requirement of a message (`message_rules`
/// `required_when`), resolved against its descriptor.
#[derive(Debug)]
pub struct RequiredWhen {
    /// The required field: a path of fields from the message down, the last
    /// one the field that must be set.
    pub required: Vec<FieldDescriptor>,
    /// The index, in the message plan's fields, of the field that decides.
    pub when_field: usize,
    /// Its values, as sent upstream, that make `required` required.
    pub equals: Vec<String>,
}

/// Resolves a declared `required_when` against the message it belongs to.
fn required_when(
    descriptor: &MessageDescriptor,
    fields: &[FieldPlan],
    condition: &proto::RequiredWhen,
) -> Result<RequiredWhen, RouteDeclarationError> {
    let unknown = |path: &str| RouteDeclarationError::UnknownConditionField {
        message: descriptor.full_name().into(),
        path: path.into(),
    };
    let when_field = fields
        .iter()
        .position(|f| f.field.name() == condition.when_field)
        .ok_or_else(|| unknown(&condition.when_field))?;
    let mut required = Vec::new();
    let mut message = Some(descriptor.clone());
    for name in condition.required.split('.') {
        let field = message
            .as_ref()
            .and_then(|m| m.get_field_by_name(name))
            .filter(|f| !f.is_list() && !f.is_map())
            .ok_or_else(|| unknown(&condition.required))?;
        message = match field.kind() {
            Kind::Message(nested) => Some(nested),
            _ => None,
        };
        required.push(field);
    }
    Ok(RequiredWhen {
        required,
        when_field,
        equals: condition.equals.clone(),
    })
}

/// One declared route: an RPC and its upstream interface.
#[derive(Debug)]
pub struct Route {
    /// The gRPC path, `/gamegate.v1.StorageService/SetUserStorage`.
    pub grpc_path: String,
    pub method_descriptor: MethodDescriptor,
    pub platform: Platform,
    pub method: Method,
    /// The upstream path, `/api/openDataContext/set_user_storage`.
    pub path: String,
    pub idempotent: bool,
    pub code_overrides: HashMap<i64, ErrorReason>,
    /// Serve the last good answer when the platform's is degraded (is_lost).
    pub serve_cached_when_lost: bool,
    /// The body member that is split into calls of at most this many items.
    pub batch: Option<(String, usize)>,
    /// The response field gamegate sets when it served a cached answer.
    pub served_from_cache: Option<FieldDescriptor>,
    /// A signature gamegate computes into the body.
    pub body_signature: BodySignatureRecipe,
    /// The body member gamegate fills with the app's appkey.
    pub appkey_member: Option<String>,
    /// Declared `REQUEST_BODY_NONE`: a POST without a body, every field in the query.
    pub no_body: bool,
    /// The query parameter gamegate fills with the app's secret; such a route
    /// is called with the secret instead of an access token and signature.
    pub app_secret_member: Option<String>,
    /// Query parameters sent as they are, after the request's own.
    pub constant_query: Vec<(String, String)>,
    /// The response's issued session key and openid (upstream names), kept
    /// in custody when the call succeeds.
    pub issued_session: Option<IssuedSession>,
    pub request: Arc<MessagePlan>,
    pub response: Arc<MessagePlan>,
}

impl Route {
    /// Where a top-level request field goes.
    pub fn location_of(&self, field: &FieldPlan) -> Location {
        field.location.unwrap_or(if self.sends_body() {
            Location::Body
        } else {
            Location::Query
        })
    }

    /// Whether the upstream request has a body: POSTs do, unless declared
    /// `REQUEST_BODY_NONE`.
    pub fn sends_body(&self) -> bool {
        self.method == Method::Post && !self.no_body
    }
}

/// Where an answer carries a session key the platform issued.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The response field (cleared for callers who may not receive it).
    pub field: FieldDescriptor,
    /// The answer members of the key and of the user's openid.
    pub key_member: String,
    pub openid_member: String,
}

/// Every route of the descriptor pool, by gRPC path.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Arc<Route>>,
    services: Vec<String>,
}

struct Extensions {
    route: ExtensionDescriptor,
    upstream: ExtensionDescriptor,
    message_rules: ExtensionDescriptor,
    upstream_value: ExtensionDescriptor,
}

impl RouteTable {
    /// Compiles the routes of every service of the `gamegate.v1` package.
    pub fn from_pool(pool: &DescriptorPool) -> Result<Self, RouteDeclarationError> {
        let extension = |name: &'static str| {
            pool.get_extension_by_name(name)
                .ok_or(RouteDeclarationError::MissingExtension(name))
        };
        let extensions = Extensions {
            route: extension("gamegate.v1.route")?,
            upstream: extension("gamegate.v1.upstream")?,
            message_rules: extension("gamegate.v1.message_rules")?,
            upstream_value: extension("gamegate.v1.upstream_value")?,
        };
        let mut compiler = PlanCompiler {
            extensions: &extensions,
            messages: HashMap::new(),
            enums: HashMap::new(),
        };
        let mut table = RouteTable::default();
        for service in pool.services() {
            if service.package_name() != proto::PACKAGE {
                continue;
            }
            let mut served = false;
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&extensions.route) {
                    continue;
                }
                let declared: UpstreamRoute =
                    transcode(&options, &extensions.route, "route", method.full_name())?;
                if method.is_client_streaming() || method.is_server_streaming() {
                    return Err(RouteDeclarationError::Streaming(method.full_name().into()));
                }
                let http_method = match declared.method() {
                    HttpMethod::Get => Method::Get,
                    HttpMethod::Post => Method::Post,
                    HttpMethod::Unspecified => {
                        return Err(RouteDeclarationError::IncompleteRoute(
                            method.full_name().into(),
                        ));
                    }
                };
                if declared.platform() == Platform::Unspecified || declared.path.is_empty() {
                    return Err(RouteDeclarationError::IncompleteRoute(
                        method.full_name().into(),
                    ));
                }
                let grpc_path = format!("/{}/{}", service.full_name(), method.name());
                let request = compiler.message(&method.input())?;
                check_fan_out(&request, method.full_name())?;
                let no_body = declared.body() == RequestBody::None;
                if no_body
                    && let Some(field) = request
                        .fields
                        .iter()
                        .find(|f| f.location == Some(Location::Body))
                {
                    return Err(RouteDeclarationError::BodyFieldWithoutBody {
                        rpc: method.full_name().into(),
                        field: field.field.name().into(),
                    });
                }
                let response = compiler.message(&method.output())?;
                let route = Route {
                    grpc_path: grpc_path.clone(),
                    platform: declared.platform(),
                    method: http_method,
                    path: declared.path.clone(),
                    idempotent: declared.idempotent,
                    code_overrides: declared
                        .code_overrides
                        .iter()
                        .map(|o| (o.code, o.reason()))
                        .collect(),
                    serve_cached_when_lost: declared.serve_cached_when_lost,
                    body_signature: declared
                        .body_signature
                        .as_ref()
                        .map(|s| s.recipe())
                        .unwrap_or(BodySignatureRecipe::Unspecified),
                    appkey_member: (!declared.appkey_member.is_empty())
                        .then(|| declared.appkey_member.clone()),
                    no_body,
                    app_secret_member: (!declared.app_secret_member.is_empty())
                        .then(|| declared.app_secret_member.clone()),
                    constant_query: declared
                        .constant_query
                        .iter()
                        .map(|p| (p.name.clone(), p.value.clone()))
                        .collect(),
                    issued_session: issued_session(&response, method.full_name())?,
                    batch: request.fields.iter().find_map(|f| {
                        Some((f.upstream_name.clone(), f.batch_size?)).filter(|_| f.field.is_list())
                    }),
                    served_from_cache: response
                        .fields
                        .iter()
                        .find(|f| f.role == FieldRole::ServedFromCache)
                        .map(|f| f.field.clone()),
                    request,
                    response,
                    method_descriptor: method.clone(),
                };
                table.routes.insert(grpc_path, Arc::new(route));
                served = true;
            }
            if served {
                table.services.push(service.full_name().to_string());
            }
        }
        Ok(table)
    }

    /// Every route, in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    pub fn get(&self, grpc_path: &str) -> Option<&Arc<Route>> {
        self.routes.get(grpc_path)
    }

    /// Full names of the services that have at least one route.
    pub fn services(&self) -> &[String] {
        &self.services
    }
}

/// The issued session key of a response plan and the openid it belongs to.
fn issued_session(
    response: &MessagePlan,
    rpc: &str,
) -> Result<Option<IssuedSession>, RouteDeclarationError> {
    let Some(key) = response
        .fields
        .iter()
        .find(|f| f.role == FieldRole::IssuedSessionKey)
    else {
        return Ok(None);
    };
    let openid = response
        .fields
        .iter()
        .find(|f| f.role == FieldRole::Openid)
        .ok_or_else(|| RouteDeclarationError::IssuedSessionWithoutOpenid(rpc.into()))?;
    Ok(Some(IssuedSession {
        field: key.field.clone(),
        key_member: key.upstream_name.clone(),
        openid_member: openid.upstream_name.clone(),
    }))
}

fn transcode<T: prost::Message + Default>(
    options: &DynamicMessage,
    extension: &ExtensionDescriptor,
    option: &'static str,
    element: &str,
) -> Result<T, RouteDeclarationError> {
    match options.get_extension(extension).as_ref() {
        Value::Message(message) => {
            message
                .transcode_to::<T>()
                .map_err(|source| RouteDeclarationError::UnreadableOption {
                    option,
                    element: element.to_string(),
                    source,
                })
        }
        _ => Ok(T::default()),
    }
}

struct PlanCompiler<'a> {
    extensions: &'a Extensions,
    messages: HashMap<String, Arc<MessagePlan>>,
    enums: HashMap<String, Arc<EnumMapping>>,
}

impl PlanCompiler<'_> {
    fn message(
        &mut self,
        descriptor: &MessageDescriptor,
    ) -> Result<Arc<MessagePlan>, RouteDeclarationError> {
        if let Some(plan) = self.messages.get(descriptor.full_name()) {
            return Ok(plan.clone());
        }
        let options = descriptor.options();
        let message_rules: Option<MessageRules> =
            if options.has_extension(&self.extensions.message_rules) {
                Some(transcode(
                    &options,
                    &self.extensions.message_rules,
                    "message_rules",
                    descriptor.full_name(),
                )?)
            } else {
                None
            };
        let mut fields = Vec::new();
        for field in descriptor.fields() {
            fields.push(self.field(field)?);
        }
        let required_when = message_rules
            .iter()
            .flat_map(|r| &r.required_when)
            .map(|condition| required_when(descriptor, &fields, condition))
            .collect::<Result<Vec<_>, _>>()?;
        let plan = Arc::new(MessagePlan {
            descriptor: descriptor.clone(),
            max_wire_bytes: fields
                .iter()
                .map(max_field_wire_bytes)
                .fold(0, usize::saturating_add),
            fields,
            required_when,
            max_total_bytes: message_rules
                .filter(|r| r.max_total_bytes > 0)
                .map(|r| (r.max_total_bytes as usize, r.reason())),
        });
        self.messages
            .insert(descriptor.full_name().to_string(), plan.clone());
        Ok(plan)
    }

    fn field(&mut self, field: FieldDescriptor) -> Result<FieldPlan, RouteDeclarationError> {
        let options = field.options();
        let declared: UpstreamField = if options.has_extension(&self.extensions.upstream) {
            transcode(
                &options,
                &self.extensions.upstream,
                "upstream",
                field.full_name(),
            )?
        } else {
            UpstreamField::default()
        };
        let location = match declared.location() {
            FieldLocation::Query => Some(Location::Query),
            FieldLocation::Body => Some(Location::Body),
            FieldLocation::None => Some(Location::None),
            FieldLocation::Unspecified => None,
        };
        let mut is_timestamp = false;
        let mut nested = None;
        let mut enum_mapping = None;
        let mut is_free_form_json = false;
        match field.kind() {
            Kind::Message(message) if message.full_name() == "google.protobuf.Timestamp" => {
                is_timestamp = true;
            }
            kind if free_form_json(&kind) => is_free_form_json = true,
            Kind::Message(message) => nested = Some(self.message(&message)?),
            Kind::Enum(enumeration) => enum_mapping = Some(self.enumeration(&enumeration)),
            _ => {}
        }
        let flatten = declared.flatten && nested.is_some();
        let single_item_as_object = declared.single_item_as_object && nested.is_some();
        let sensitive = declared.sensitive;
        Ok(FieldPlan {
            upstream_name: if declared.name.is_empty() {
                field.name().to_string()
            } else {
                declared.name.clone()
            },
            location,
            role: declared.role(),
            rules: Some(Rules::of_field(
                declared.rules.as_ref(),
                &field,
                declared.role(),
            )),
            default_value: (!declared.default_value.is_empty())
                .then(|| declared.default_value.clone()),
            nested,
            enum_mapping,
            is_timestamp,
            flatten,
            json_type: declared.json_type(),
            batch_size: (declared.batch_size > 0).then_some(declared.batch_size as usize),
            sensitive,
            also_named: declared.also_named.clone(),
            bitmask: declared.bitmask,
            url_encoded: declared.url_encoded,
            length_member: (!declared.length_member.is_empty())
                .then(|| declared.length_member.clone()),
            is_free_form_json,
            always_send: declared.always_send,
            from_custody: declared.from_custody && declared.role() == FieldRole::SessionKey,
            single_item_as_object,
            field,
        })
    }

    fn enumeration(&mut self, descriptor: &EnumDescriptor) -> Arc<EnumMapping> {
        if let Some(mapping) = self.enums.get(descriptor.full_name()) {
            return mapping.clone();
        }
        let mut mapping = EnumMapping::default();
        for value in descriptor.values() {
            let options = value.options();
            if !options.has_extension(&self.extensions.upstream_value) {
                continue;
            }
            if let Value::String(upstream) = options
                .get_extension(&self.extensions.upstream_value)
                .as_ref()
            {
                mapping.to_upstream.insert(value.number(), upstream.clone());
                mapping
                    .from_upstream
                    .insert(upstream.clone(), value.number());
            }
        }
        let mapping = Arc::new(mapping);
        self.enums
            .insert(descriptor.full_name().to_string(), mapping.clone());
        mapping
    }
}

/// `google.protobuf.Struct`, `Value` or `ListValue`: free-form JSON.
fn free_form_json(kind: &Kind) -> bool {
    matches!(kind, Kind::Message(message) if matches!(
        message.full_name(),
        "google.protobuf.Struct" | "google.protobuf.Value" | "google.protobuf.ListValue"
    ))
}

/// The most bytes `field` can take in an encoded message within its limits.
fn max_field_wire_bytes(field: &FieldPlan) -> usize {
    let rules = field.rules.as_ref();
    let sized = rules
        .and_then(|r| r.max_bytes.or(r.exact_bytes))
        .unwrap_or(DEFAULT_MAX_BYTES);
    let item = match field.field.kind() {
        Kind::String | Kind::Bytes => sized,
        _ if field.is_free_form_json => sized,
        // seconds and nanos, each a tag and a varint.
        _ if field.is_timestamp => 22,
        Kind::Message(_) => field.nested.as_ref().map_or(0, |plan| plan.max_wire_bytes),
        // A varint or a fixed64 at most.
        _ => 10,
    };
    let items = if field.field.is_list() {
        rules.and_then(|r| r.max_items).unwrap_or(DEFAULT_MAX_ITEMS)
    } else {
        1
    };
    item.saturating_add(FIELD_OVERHEAD).saturating_mul(items)
}

/// A route's declared list bound over its batch size: how many upstream calls
/// one request may become.
fn check_fan_out(request: &MessagePlan, rpc: &str) -> Result<(), RouteDeclarationError> {
    for field in &request.fields {
        let (Some(batch), Some(max)) = (
            field.batch_size,
            field.rules.as_ref().and_then(|r| r.max_items),
        ) else {
            continue;
        };
        let calls = max.div_ceil(batch);
        if calls > MAX_FAN_OUT_CALLS {
            return Err(RouteDeclarationError::FanOutTooWide {
                rpc: rpc.to_string(),
                calls,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request size gamegate accepts by default: every route's declared
    /// limits must fit in it, or its largest valid request would be refused.
    const DEFAULT_REQUEST_CAP: usize = 1024 * 1024;

    #[test]
    fn every_routes_largest_request_fits_the_default_size_cap() {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        let mut sizes: Vec<(usize, &str)> = table
            .routes
            .values()
            .map(|route| (route.request.max_wire_bytes, route.grpc_path.as_str()))
            .collect();
        sizes.sort();
        let over: Vec<_> = sizes
            .iter()
            .filter(|(size, _)| *size > DEFAULT_REQUEST_CAP)
            .collect();
        assert!(
            over.is_empty(),
            "over {DEFAULT_REQUEST_CAP} bytes: {over:?}"
        );
        let (largest, path) = sizes.last().expect("routes");
        assert!(
            *largest > 64 * 1024,
            "the largest is {path}: {largest} bytes"
        );
    }

    #[test]
    fn a_list_may_not_fan_out_into_more_calls_than_allowed() {
        let plan_of = |max_items: u32| {
            let descriptor = proto::DESCRIPTOR_POOL
                .get_message_by_name("gamegate.v1.GetQqFriendsVipRequest")
                .unwrap();
            let extensions = Extensions {
                route: proto::DESCRIPTOR_POOL
                    .get_extension_by_name("gamegate.v1.route")
                    .unwrap(),
                upstream: proto::DESCRIPTOR_POOL
                    .get_extension_by_name("gamegate.v1.upstream")
                    .unwrap(),
                message_rules: proto::DESCRIPTOR_POOL
                    .get_extension_by_name("gamegate.v1.message_rules")
                    .unwrap(),
                upstream_value: proto::DESCRIPTOR_POOL
                    .get_extension_by_name("gamegate.v1.upstream_value")
                    .unwrap(),
            };
            let plan = PlanCompiler {
                extensions: &extensions,
                messages: HashMap::new(),
                enums: HashMap::new(),
            }
            .message(&descriptor)
            .unwrap();
            let mut plan = Arc::try_unwrap(plan).unwrap_or_else(|_| panic!("one owner"));
            for field in &mut plan.fields {
                if let (Some(_), Some(rules)) = (field.batch_size, field.rules.as_mut()) {
                    rules.max_items = Some(max_items as usize);
                }
            }
            check_fan_out(&plan, "GetQqFriendsVip")
        };
        assert!(plan_of(490).is_ok(), "10 calls of 49");
        assert!(matches!(
            plan_of(491),
            Err(RouteDeclarationError::FanOutTooWide { calls: 11, .. })
        ));
    }
}
