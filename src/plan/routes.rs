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
    HttpMethod, JsonType, MessageRules, Platform, UpstreamField, UpstreamRoute,
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
}

/// Where a request field goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Query,
    Body,
    None,
}

/// Compiled limits of one field.
#[derive(Debug, Clone)]
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
}

/// How a whole message maps, field by field.
#[derive(Debug)]
pub struct MessagePlan {
    pub descriptor: MessageDescriptor,
    pub fields: Vec<FieldPlan>,
    pub max_total_bytes: Option<(usize, ErrorReason)>,
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
    pub request: Arc<MessagePlan>,
    pub response: Arc<MessagePlan>,
}

impl Route {
    /// Where a top-level request field goes.
    pub fn location_of(&self, field: &FieldPlan) -> Location {
        field.location.unwrap_or(match self.method {
            Method::Get => Location::Query,
            Method::Post => Location::Body,
        })
    }
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

    pub fn get(&self, grpc_path: &str) -> Option<&Arc<Route>> {
        self.routes.get(grpc_path)
    }

    /// Full names of the services that have at least one route.
    pub fn services(&self) -> &[String] {
        &self.services
    }
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
        let plan = Arc::new(MessagePlan {
            descriptor: descriptor.clone(),
            fields,
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
            Kind::Message(message)
                if matches!(
                    message.full_name(),
                    "google.protobuf.Struct"
                        | "google.protobuf.Value"
                        | "google.protobuf.ListValue"
                ) =>
            {
                is_free_form_json = true;
            }
            Kind::Message(message) => nested = Some(self.message(&message)?),
            Kind::Enum(enumeration) => enum_mapping = Some(self.enumeration(&enumeration)),
            _ => {}
        }
        let flatten = declared.flatten && nested.is_some();
        let sensitive = declared.sensitive;
        Ok(FieldPlan {
            upstream_name: if declared.name.is_empty() {
                field.name().to_string()
            } else {
                declared.name.clone()
            },
            location,
            role: declared.role(),
            rules: declared.rules.as_ref().map(Rules::compile),
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
