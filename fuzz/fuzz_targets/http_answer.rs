//! The upstream HTTP/1.1 answer parser: head, length, chunked, trailers, limits.
//! The input format and the properties: `gamegate::fuzzing::http_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::http_answer(input));
