//! The upstream HTTP/1.1 answer parser: head, length, chunked, trailers, limits, and the strict
//! framing rules (an accepted answer's body is its declared length; ambiguous framing, a
//! `Connection: close` or a body delimited by the close is never kept alive).
//! The input format and the properties: `gamegate::fuzzing::http_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::http_answer(input));
