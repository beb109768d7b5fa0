//! msdktea decryption of any bytes, and encryption round trips.
//! The input format and the properties: `gamegate::fuzzing::msdktea`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| gamegate::fuzzing::msdktea(input));
