//! A route's answer: lenient json decoding into its output type, then protobuf.
//! The input format and the properties: `gamegate::fuzzing::response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::response(input));
