//! The route declarations checked against the request examples of seed 002
//! (`crates/sandbox/src/msdk/seed_request_examples.json`, extracted by
//! `tools/seed_request_examples.py`): the examples are the wire truth, what the
//! platform's own samples send. Every member an example sends must be declared
//! (or filled by gamegate itself), in the same place, with the same JSON type;
//! a member the example sends empty must be declared `always_send`; an
//! interface whose example has no body must be declared without one.

use std::collections::BTreeMap;

use prost_reflect::Kind;
use serde::Deserialize;
use serde_json::Value as Json;

use super::routes::{FieldPlan, Location, MessagePlan, RouteTable};
use crate::proto::{self, BodySignatureRecipe, JsonType, Platform};

#[derive(Deserialize)]
struct Example {
    query: Vec<String>,
    body: Option<Json>,
}

/// The JSON type gamegate sends for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    String,
    Number,
    Bool,
    Array,
    Object,
    /// google.protobuf.Value: any JSON.
    Any,
}

fn shape_of_json(json: &Json) -> Shape {
    match json {
        Json::String(_) => Shape::String,
        Json::Number(_) => Shape::Number,
        Json::Bool(_) => Shape::Bool,
        Json::Array(_) => Shape::Array,
        Json::Object(_) => Shape::Object,
        Json::Null => Shape::Any,
    }
}

/// The shape of one item (of the field itself when it is not repeated).
fn item_shape(field: &FieldPlan) -> Shape {
    let natural = match field.field.kind() {
        Kind::String | Kind::Bytes => Shape::String,
        Kind::Bool => Shape::Bool,
        Kind::Enum(_) => {
            let numeric = field
                .enum_mapping
                .as_ref()
                .is_some_and(|m| m.to_upstream.values().all(|v| v.parse::<i64>().is_ok()));
            if numeric {
                Shape::Number
            } else {
                Shape::String
            }
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Value" => Shape::Any,
        Kind::Message(m) if m.full_name() == "google.protobuf.ListValue" => Shape::Array,
        Kind::Message(_) if field.is_timestamp => Shape::Number,
        Kind::Message(_) => Shape::Object,
        _ => Shape::Number,
    };
    match (field.json_type, natural) {
        (JsonType::String, Shape::Number | Shape::Bool) => Shape::String,
        (JsonType::Number, Shape::String | Shape::Bool) => Shape::Number,
        _ => natural,
    }
}

fn sent_shape(field: &FieldPlan) -> Shape {
    if field.bitmask {
        return item_shape(field);
    }
    if field.field.is_list() {
        Shape::Array
    } else {
        item_shape(field)
    }
}

/// The declared fields of a message by upstream name, flattened fields inlined.
fn members<'a>(plan: &'a MessagePlan, out: &mut BTreeMap<String, &'a FieldPlan>) {
    for field in &plan.fields {
        if field.flatten {
            if let Some(nested) = &field.nested {
                members(nested, out);
            }
            continue;
        }
        out.insert(field.upstream_name.clone(), field);
    }
}

fn is_empty(json: &Json) -> bool {
    match json {
        Json::String(s) => s.is_empty(),
        Json::Array(items) => items.is_empty(),
        Json::Object(members) => members.is_empty(),
        _ => false,
    }
}

/// Compares one example object with a message plan, recursively.
fn compare_object(
    path: &str,
    example: &serde_json::Map<String, Json>,
    plan: &MessagePlan,
    filled: &BTreeMap<&str, Shape>,
    top_level: Option<&dyn Fn(&FieldPlan) -> Location>,
    findings: &mut Vec<String>,
) {
    let mut declared = BTreeMap::new();
    members(plan, &mut declared);
    for (name, value) in example {
        let at = format!("{path} \"{name}\"");
        if let Some(shape) = filled.get(name.as_str()) {
            if *shape != shape_of_json(value) && !value.is_null() {
                findings.push(format!(
                    "{at}: gamegate fills it as {shape:?}, example {:?}",
                    shape_of_json(value)
                ));
            }
            continue;
        }
        let Some(field) = declared.get(name) else {
            findings.push(format!("{at}: sent by the example, not declared"));
            continue;
        };
        if let Some(location_of) = top_level {
            let location = location_of(field);
            if location != Location::Body {
                findings.push(format!(
                    "{at}: in the example's body, declared {location:?}"
                ));
                continue;
            }
        }
        let sent = sent_shape(field);
        let example_shape = shape_of_json(value);
        // One item of such a list is sent as an object: the example's form.
        let one_as_object = field.single_item_as_object && example_shape == Shape::Object;
        if sent != example_shape && sent != Shape::Any && !one_as_object {
            findings.push(format!(
                "{at}: gamegate sends {sent:?}, the example {example_shape:?}"
            ));
            continue;
        }
        if is_empty(value) && !field.always_send {
            findings.push(format!(
                "{at}: the example sends it empty; not declared always_send"
            ));
        }
        let nested_example = match value {
            Json::Object(object) => Some(object),
            Json::Array(items) => items.first().and_then(Json::as_object),
            _ => None,
        };
        if let (Some(object), Some(nested)) = (nested_example, &field.nested) {
            compare_object(&at, object, nested, &BTreeMap::new(), None, findings);
        }
    }
}

fn findings() -> Vec<String> {
    let examples: BTreeMap<String, Example> = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/sandbox/src/msdk/seed_request_examples.json"
    )))
    .expect("the extracted examples are JSON");
    let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
    let mut findings = Vec::new();
    let mut seen = 0;
    for route in table.routes().filter(|r| r.platform == Platform::Msdk) {
        let Some(example) = examples.get(&route.path) else {
            findings.push(format!("{}: no seed example", route.path));
            continue;
        };
        seen += 1;
        let mut declared = BTreeMap::new();
        members(&route.request, &mut declared);
        for name in &example.query {
            match declared.get(name) {
                Some(field) if route.location_of(field) == Location::Query => {}
                Some(field) => findings.push(format!(
                    "{} \"{name}\": in the example's query, declared {:?}",
                    route.path,
                    route.location_of(field)
                )),
                None => findings.push(format!(
                    "{} \"{name}\": in the example's query, not declared",
                    route.path
                )),
            }
        }
        let mut filled = BTreeMap::new();
        if let Some(member) = &route.appkey_member {
            filled.insert(member.as_str(), Shape::String);
        }
        if route.body_signature != BodySignatureRecipe::Unspecified {
            filled.insert("timestamp", Shape::Number);
            filled.insert("signature", Shape::String);
        }
        for field in declared.values() {
            if let Some(member) = &field.length_member {
                filled.insert(member.as_str(), Shape::Number);
            }
        }
        match &example.body {
            None => {
                if route.sends_body() {
                    findings.push(format!(
                        "{}: the example has no body; gamegate sends one",
                        route.path
                    ));
                }
            }
            Some(Json::Object(body)) => {
                let location_of = |field: &FieldPlan| route.location_of(field);
                compare_object(
                    &route.path,
                    body,
                    &route.request,
                    &filled,
                    Some(&location_of),
                    &mut findings,
                );
            }
            Some(other) => findings.push(format!("{}: example body {other}", route.path)),
        }
    }
    assert_eq!(seen, examples.len(), "every example has a route");
    findings
}

#[test]
fn every_msdk_route_sends_what_the_seed_examples_send() {
    let findings = findings();
    assert!(
        findings.is_empty(),
        "{} departures:\n{}",
        findings.len(),
        findings.join("\n")
    );
}
