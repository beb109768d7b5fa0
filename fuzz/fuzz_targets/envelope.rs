//! The three platforms' answer envelopes (and msdktea decryption in front of MSDK's).
//! The input format and the properties: `gamegate::fuzzing::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::envelope(input));
