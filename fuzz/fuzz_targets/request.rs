//! A route's request message: protobuf decoding, validation, mapping.
//! The input format and the properties: `gamegate::fuzzing::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::request(input));
