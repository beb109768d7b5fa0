//! The protobuf encoding of the gateway's answers, in one pass.
//!
//! prost-reflect encodes a `DynamicMessage` the way prost encodes a generated
//! one: the length of each nested message is computed before its bytes are
//! written, by a walk of its own, so a message nested `d` deep is walked `d`
//! times, and every walk looks up each field's kind and default value in the
//! descriptor pool again. On GetQqFriendsDetail's answer (a list of friends)
//! that was about 20,000 of the call's 203,000 instructions under callgrind
//! (bench/FINDINGS.md section 13). This writes each field once, where it
//! goes, and puts a nested message's length in front of it once its bytes
//! are written (a move of those bytes, a few hundred at most).
//!
//! The bytes are prost-reflect's, field for field (the tests compare them):
//! fields in number order, proto3 scalars packed, defaults of fields without
//! presence left out. A message with unknown fields, extensions or groups
//! (never one the gateway builds from a platform's answer) is encoded by
//! prost-reflect instead.

use std::cell::RefCell;

use bytes::BufMut;
use prost::{
    Message,
    encoding::{self, WireType, encode_key, encode_varint},
};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, Value};

/// A message this encoder leaves to prost-reflect.
struct Unsupported;

thread_local! {
    /// The buffer answers are encoded into before they are copied out: one
    /// per thread, kept (answers are bounded by their routes' limits).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most a thread's scratch buffer keeps between answers.
const SCRATCH_KEPT: usize = 64 * 1024;

/// Writes `message`'s protobuf encoding to `out`.
pub fn encode_to(message: &DynamicMessage, out: &mut impl BufMut) {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => {
            scratch.clear();
            match encode_fields(message, &mut scratch) {
                Ok(()) => out.put_slice(&scratch),
                Err(Unsupported) => message.encode_raw(out),
            }
            if scratch.capacity() > SCRATCH_KEPT {
                *scratch = Vec::new();
            }
        }
        // Re-entered (an encoding inside an encoding): a buffer of its own.
        Err(_) => out.put_slice(&encode_to_vec(message)),
    })
}

/// `message`'s protobuf encoding.
pub fn encode_to_vec(message: &DynamicMessage) -> Vec<u8> {
    let mut out = Vec::new();
    match encode_fields(message, &mut out) {
        Ok(()) => out,
        Err(Unsupported) => message.encode_to_vec(),
    }
}

fn encode_fields(message: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    if message.unknown_fields().next().is_some() || message.extensions().next().is_some() {
        return Err(Unsupported);
    }
    // Set fields only (a field without presence at its default is not), in
    // field-number order.
    for (field, value) in message.fields() {
        encode_field(&field, value, out)?;
    }
    Ok(())
}

fn encode_field(
    field: &FieldDescriptor,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    if field.is_group() {
        return Err(Unsupported);
    }
    let number = field.number();
    let kind = field.kind();
    match value {
        Value::List(items) if field.is_packed() => {
            encode_key(number, WireType::LengthDelimited, out);
            let start = out.len();
            for item in items {
                encode_packed_item(&kind, item, out)?;
            }
            prefix_length(out, start);
        }
        Value::List(items) => {
            for item in items {
                encode_single(number, &kind, item, out)?;
            }
        }
        Value::Map(entries) => {
            let Kind::Message(entry) = &kind else {
                return Err(Unsupported);
            };
            let (key_field, value_field) =
                (entry.map_entry_key_field(), entry.map_entry_value_field());
            let (key_kind, value_kind) = (key_field.kind(), value_field.kind());
            for (key, entry_value) in entries {
                encode_key(number, WireType::LengthDelimited, out);
                let start = out.len();
                // The entry's fields have no presence: defaults are left out.
                if !key.is_default(&key_kind) {
                    encode_map_key(key_field.number(), &key_kind, key, out)?;
                }
                if value_field.supports_presence() || !entry_value.is_default(&value_kind) {
                    encode_single(value_field.number(), &value_kind, entry_value, out)?;
                }
                prefix_length(out, start);
            }
        }
        single => encode_single(number, &kind, single, out)?,
    }
    Ok(())
}

fn encode_single(
    number: u32,
    kind: &Kind,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    match (value, kind) {
        (Value::Bool(v), Kind::Bool) => encoding::bool::encode(number, v, out),
        (Value::I32(v), Kind::Int32) => encoding::int32::encode(number, v, out),
        (Value::I32(v), Kind::Sint32) => encoding::sint32::encode(number, v, out),
        (Value::I32(v), Kind::Sfixed32) => encoding::sfixed32::encode(number, v, out),
        (Value::I64(v), Kind::Int64) => encoding::int64::encode(number, v, out),
        (Value::I64(v), Kind::Sint64) => encoding::sint64::encode(number, v, out),
        (Value::I64(v), Kind::Sfixed64) => encoding::sfixed64::encode(number, v, out),
        (Value::U32(v), Kind::Uint32) => encoding::uint32::encode(number, v, out),
        (Value::U32(v), Kind::Fixed32) => encoding::fixed32::encode(number, v, out),
        (Value::U64(v), Kind::Uint64) => encoding::uint64::encode(number, v, out),
        (Value::U64(v), Kind::Fixed64) => encoding::fixed64::encode(number, v, out),
        (Value::F32(v), Kind::Float) => encoding::float::encode(number, v, out),
        (Value::F64(v), Kind::Double) => encoding::double::encode(number, v, out),
        (Value::String(v), Kind::String) => encoding::string::encode(number, v, out),
        (Value::Bytes(v), Kind::Bytes) => encoding::bytes::encode(number, v, out),
        (Value::EnumNumber(v), Kind::Enum(_)) => encoding::int32::encode(number, v, out),
        (Value::Message(message), Kind::Message(_)) => {
            encode_key(number, WireType::LengthDelimited, out);
            let start = out.len();
            encode_fields(message, out)?;
            prefix_length(out, start);
        }
        _ => return Err(Unsupported),
    }
    Ok(())
}

fn encode_packed_item(kind: &Kind, value: &Value, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    match (value, kind) {
        (Value::Bool(v), Kind::Bool) => encode_varint(u64::from(*v), out),
        (Value::I32(v), Kind::Int32) | (Value::EnumNumber(v), Kind::Enum(_)) => {
            // Negative int32s are sign-extended to ten bytes, as prost does.
            encode_varint(*v as i64 as u64, out)
        }
        (Value::I32(v), Kind::Sint32) => {
            encode_varint(u64::from(((*v << 1) ^ (*v >> 31)) as u32), out)
        }
        (Value::I32(v), Kind::Sfixed32) => out.put_i32_le(*v),
        (Value::I64(v), Kind::Int64) => encode_varint(*v as u64, out),
        (Value::I64(v), Kind::Sint64) => encode_varint(((*v << 1) ^ (*v >> 63)) as u64, out),
        (Value::I64(v), Kind::Sfixed64) => out.put_i64_le(*v),
        (Value::U32(v), Kind::Uint32) => encode_varint(u64::from(*v), out),
        (Value::U32(v), Kind::Fixed32) => out.put_u32_le(*v),
        (Value::U64(v), Kind::Uint64) => encode_varint(*v, out),
        (Value::U64(v), Kind::Fixed64) => out.put_u64_le(*v),
        (Value::F32(v), Kind::Float) => out.put_f32_le(*v),
        (Value::F64(v), Kind::Double) => out.put_f64_le(*v),
        _ => return Err(Unsupported),
    }
    Ok(())
}

fn encode_map_key(
    number: u32,
    kind: &Kind,
    key: &MapKey,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    match (key, kind) {
        (MapKey::Bool(v), Kind::Bool) => encoding::bool::encode(number, v, out),
        (MapKey::I32(v), Kind::Int32) => encoding::int32::encode(number, v, out),
        (MapKey::I32(v), Kind::Sint32) => encoding::sint32::encode(number, v, out),
        (MapKey::I32(v), Kind::Sfixed32) => encoding::sfixed32::encode(number, v, out),
        (MapKey::I64(v), Kind::Int64) => encoding::int64::encode(number, v, out),
        (MapKey::I64(v), Kind::Sint64) => encoding::sint64::encode(number, v, out),
        (MapKey::I64(v), Kind::Sfixed64) => encoding::sfixed64::encode(number, v, out),
        (MapKey::U32(v), Kind::Uint32) => encoding::uint32::encode(number, v, out),
        (MapKey::U32(v), Kind::Fixed32) => encoding::fixed32::encode(number, v, out),
        (MapKey::U64(v), Kind::Uint64) => encoding::uint64::encode(number, v, out),
        (MapKey::U64(v), Kind::Fixed64) => encoding::fixed64::encode(number, v, out),
        (MapKey::String(v), Kind::String) => encoding::string::encode(number, v, out),
        _ => return Err(Unsupported),
    }
    Ok(())
}

/// Puts the length of `out[start..]`, as a varint, in front of those bytes.
fn prefix_length(out: &mut Vec<u8>, start: usize) {
    let len = (out.len() - start) as u64;
    let mut prefix = [0u8; 10];
    let mut rest: &mut [u8] = &mut prefix;
    encode_varint(len, &mut rest);
    let written = 10 - rest.len();
    out.splice(start..start, prefix[..written].iter().copied());
}

#[cfg(test)]
mod tests {
    use prost_reflect::{MessageDescriptor, ReflectMessage};

    use super::*;
    use crate::{plan::RouteTable, proto};

    /// A message of `descriptor` with every field set (lists of two, maps of
    /// two entries, messages two deep), values varied by `seed`.
    fn filled(descriptor: &MessageDescriptor, seed: i64, depth: usize) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields() {
            if field.containing_oneof().is_some() && seed % 2 == 0 {
                continue;
            }
            let value = |seed: i64| sample(&field.kind(), seed, depth);
            let value = if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    unreachable!()
                };
                let key_kind = entry.map_entry_key_field().kind();
                let value_kind = entry.map_entry_value_field().kind();
                let mut map = std::collections::HashMap::new();
                for i in 0..2 {
                    if let Some(value) = sample(&value_kind, seed + i, depth) {
                        map.insert(sample_key(&key_kind, seed + i), value);
                    }
                }
                Some(Value::Map(map))
            } else if field.is_list() {
                let items: Option<Vec<Value>> = (0..2).map(|i| value(seed + i)).collect();
                items.map(Value::List)
            } else {
                value(seed)
            };
            if let Some(value) = value {
                message.set_field(&field, value);
            }
        }
        message
    }

    fn sample(kind: &Kind, seed: i64, depth: usize) -> Option<Value> {
        Some(match kind {
            Kind::Bool => Value::Bool(seed % 2 == 1),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-(seed as i32) * 300),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-seed * 1_000_000_007),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(seed as u32 * 70_000),
            Kind::Uint64 | Kind::Fixed64 => Value::U64((seed as u64) << 40),
            Kind::Float => Value::F32(seed as f32 * 1.5),
            Kind::Double => Value::F64(seed as f64 * -2.25),
            Kind::String => Value::String(format!("text {seed} \u{4e2d}")),
            Kind::Bytes => Value::Bytes(vec![seed as u8; 3].into()),
            Kind::Enum(e) => Value::EnumNumber(e.values().last().map_or(0, |v| v.number())),
            Kind::Message(m) if depth < 2 => Value::Message(filled(m, seed, depth + 1)),
            Kind::Message(_) => return None,
        })
    }

    fn sample_key(kind: &Kind, seed: i64) -> MapKey {
        match kind {
            Kind::String => MapKey::String(format!("k{seed}")),
            Kind::Bool => MapKey::Bool(seed % 2 == 1),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(seed as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(seed),
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(seed as u32),
            _ => MapKey::U64(seed as u64),
        }
    }

    #[test]
    fn every_answer_and_request_of_the_gateway_encodes_as_prost_reflect_encodes_it() {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        let mut compared = 0;
        for route in table.routes() {
            for descriptor in [
                route.method_descriptor.output(),
                route.method_descriptor.input(),
            ] {
                for seed in [0, 1, 3] {
                    let message = filled(&descriptor, seed, 0);
                    let ours = encode_to_vec(&message);
                    let decoded = DynamicMessage::decode(descriptor.clone(), ours.as_slice())
                        .unwrap_or_else(|e| panic!("{}: {e}", descriptor.full_name()));
                    // (A field set to its default is stored in `message`, not in
                    // `decoded`: the messages differ, their encodings do not.)
                    assert_eq!(decoded.encode_to_vec(), ours, "{}", descriptor.full_name());
                    // A map's entries come in the HashMap's order, the same for
                    // both encoders as long as it is the same map.
                    assert_eq!(ours, message.encode_to_vec(), "{}", descriptor.full_name());
                    let mut via_buf = Vec::new();
                    encode_to(&message, &mut via_buf);
                    assert_eq!(via_buf, ours);
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "{compared} messages compared");
        // Defaults left out: an empty message is no bytes.
        let empty = DynamicMessage::new(table.routes().next().unwrap().method_descriptor.output());
        assert!(encode_to_vec(&empty).is_empty());
    }

    #[test]
    fn unknown_fields_are_encoded_by_prost_reflect() {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        let descriptor = table.routes().next().unwrap().method_descriptor.output();
        // Field 4095, varint 7: unknown to every gateway message.
        let bytes = [0xf8, 0xff, 0x01, 0x07];
        let message = DynamicMessage::decode(descriptor.clone(), &bytes[..]).unwrap();
        assert_eq!(message.unknown_fields().count(), 1);
        assert_eq!(encode_to_vec(&message), bytes);
        assert_eq!(message.descriptor(), descriptor);
    }

    #[test]
    fn lengths_of_every_size_are_put_in_front() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let mut out = vec![9u8; 3];
            out.extend(std::iter::repeat_n(1u8, len));
            prefix_length(&mut out, 3);
            let mut expected = vec![9u8; 3];
            encode_varint(len as u64, &mut expected);
            expected.extend(std::iter::repeat_n(1u8, len));
            assert_eq!(out, expected, "{len}");
        }
    }
}
