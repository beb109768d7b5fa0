//! The answer half of every call: an upstream JSON object decoded, leniently,
//! into the RPC's response message by the route's plan.

use prost_reflect::{DynamicMessage, Kind, Value};
use serde_json::{Map, Value as Json};

use super::routes::{FieldPlan, MessagePlan};

/// Decodes an upstream JSON object into the response message. Lenient as the
/// platforms require: numbers that arrive as strings and the reverse, booleans as
/// 0/1, unknown members ignored. Returns a description of what did not fit.
pub fn decode_response(
    plan: &MessagePlan,
    object: &Map<String, Json>,
) -> Result<DynamicMessage, String> {
    let mut message = DynamicMessage::new(plan.descriptor.clone());
    for field in &plan.fields {
        let Some(json) = object.get(&field.upstream_name).or_else(|| {
            field
                .also_named
                .iter()
                .find_map(|name| object.get(name.as_str()))
        }) else {
            continue;
        };
        if json.is_null() {
            continue;
        }
        let value = if field.field.is_list() {
            let items: Vec<&Json> = match json {
                Json::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                if let Some(value) = json_to_value(field, item)? {
                    values.push(value);
                }
            }
            Value::List(values)
        } else {
            match json_to_value(field, json)? {
                Some(value) => value,
                None => continue,
            }
        };
        message.set_field(&field.field, value);
    }
    Ok(message)
}

fn json_to_value(plan: &FieldPlan, json: &Json) -> Result<Option<Value>, String> {
    let name = &plan.upstream_name;
    let mismatch = |expected: &str| format!("member {name:?} is not {expected}");
    let integer = || -> Result<i64, String> {
        match json {
            Json::Number(n) => n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| u as i64))
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| mismatch("an integer")),
            Json::String(s) if s.trim().is_empty() => Ok(0),
            Json::String(s) => s.trim().parse::<i64>().map_err(|_| mismatch("an integer")),
            Json::Bool(b) => Ok(i64::from(*b)),
            _ => Err(mismatch("an integer")),
        }
    };
    Ok(Some(match plan.field.kind() {
        Kind::String => Value::String(match json {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            other => other.to_string(),
        }),
        // The platforms' flags are "1" for yes and anything else for no
        // (e.g. need_pop: "any value other than 1 means no popup").
        Kind::Bool => Value::Bool(match json {
            Json::Bool(b) => *b,
            Json::Number(n) => n.as_i64() == Some(1),
            Json::String(s) => s.trim() == "1" || s.trim().eq_ignore_ascii_case("true"),
            _ => return Err(mismatch("a boolean")),
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(integer()?).map_err(|_| mismatch("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(integer()?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            u32::try_from(integer()?).map_err(|_| mismatch("an unsigned 32-bit integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(u64::try_from(integer()?).map_err(|_| mismatch("an unsigned integer"))?)
        }
        Kind::Double | Kind::Float => {
            let number = match json {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .ok_or_else(|| mismatch("a number"))?;
            if matches!(plan.field.kind(), Kind::Float) {
                Value::F32(number as f32)
            } else {
                Value::F64(number)
            }
        }
        Kind::Bytes => Value::Bytes(match json {
            Json::String(s) => s.clone().into_bytes().into(),
            other => other.to_string().into_bytes().into(),
        }),
        Kind::Enum(_) => {
            let text = match json {
                Json::String(s) => s.trim().to_string(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => i32::from(*b).to_string(),
                _ => return Err(mismatch("an enumerated value")),
            };
            let number = plan
                .enum_mapping
                .as_ref()
                .and_then(|m| m.from_upstream.get(&text).copied())
                // A value the proto does not know yet: report it as unspecified
                // rather than failing the whole call.
                .unwrap_or(0);
            Value::EnumNumber(number)
        }
        Kind::Message(descriptor) if plan.is_free_form_json => Value::Message(
            DynamicMessage::deserialize(descriptor, json.clone())
                .map_err(|e| format!("member {name:?}: {e}"))?,
        ),
        Kind::Message(descriptor) if plan.is_timestamp => {
            let seconds = integer()?;
            if seconds == 0 {
                return Ok(None);
            }
            let timestamp = prost_types::Timestamp { seconds, nanos: 0 };
            let mut message = DynamicMessage::new(descriptor);
            message
                .transcode_from(&timestamp)
                .map_err(|e| format!("member {name:?}: {e}"))?;
            Value::Message(message)
        }
        Kind::Message(_) => {
            let Some(nested_plan) = plan.nested.as_ref() else {
                return Ok(None);
            };
            match json {
                Json::Object(object) => Value::Message(decode_response(nested_plan, object)?),
                // Platforms send "" or [] for an absent object ("data is empty
                // when there is nothing").
                Json::String(s) if s.trim().is_empty() => return Ok(None),
                Json::Array(items) if items.is_empty() => return Ok(None),
                _ => return Err(mismatch("an object")),
            }
        }
    }))
}
