//! msdktea: the optional MSDK body encryption (`Content-Encrypt: msdktea`,
//! `Accept-Encrypt: msdktea`), QQ's TEA variant "oi_symmetry_encrypt2" as
//! `SIGNING.md` describes it. No maintained crate implements this variant (its
//! framing and chaining are QQ's own), so it is the one primitive written here.
//!
//! - TEA: 16 rounds, delta 0x9e3779b9, big-endian 32-bit words, key
//!   `msdkmsdkmsdkmsdk`.
//! - Framing: `(random & 0xF8) | pad`, `pad` random bytes, 2 random salt bytes,
//!   the data, 7 zero bytes; `pad` makes the total a multiple of 8.
//! - Chaining: `C_i = TEA(P_i ^ C_{i-1}) ^ X_{i-1}` with `X_i = P_i ^ C_{i-1}`.

use thiserror::Error;

const KEY: [u32; 4] = [
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
];
const DELTA: u32 = 0x9e37_79b9;
const ROUNDS: u32 = 16;
const SALT_LEN: usize = 2;
const ZERO_LEN: usize = 7;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TeaError {
    #[error("msdktea ciphertext length {0} is not a multiple of 8 of at least 16")]
    Length(usize),
    #[error("msdktea padding does not fit the ciphertext")]
    Padding,
    #[error("msdktea trailing zero bytes are wrong: wrong key or corrupted body")]
    TrailingZeros,
}

fn encipher(block: u64) -> u64 {
    let (mut y, mut z) = ((block >> 32) as u32, block as u32);
    let mut sum = 0u32;
    for _ in 0..ROUNDS {
        sum = sum.wrapping_add(DELTA);
        y = y.wrapping_add(
            (z << 4).wrapping_add(KEY[0]) ^ z.wrapping_add(sum) ^ (z >> 5).wrapping_add(KEY[1]),
        );
        z = z.wrapping_add(
            (y << 4).wrapping_add(KEY[2]) ^ y.wrapping_add(sum) ^ (y >> 5).wrapping_add(KEY[3]),
        );
    }
    (u64::from(y) << 32) | u64::from(z)
}

fn decipher(block: u64) -> u64 {
    let (mut y, mut z) = ((block >> 32) as u32, block as u32);
    let mut sum = DELTA.wrapping_mul(ROUNDS);
    for _ in 0..ROUNDS {
        z = z.wrapping_sub(
            (y << 4).wrapping_add(KEY[2]) ^ y.wrapping_add(sum) ^ (y >> 5).wrapping_add(KEY[3]),
        );
        y = y.wrapping_sub(
            (z << 4).wrapping_add(KEY[0]) ^ z.wrapping_add(sum) ^ (z >> 5).wrapping_add(KEY[1]),
        );
        sum = sum.wrapping_sub(DELTA);
    }
    (u64::from(y) << 32) | u64::from(z)
}

fn block_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_be_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// Encrypts with fresh random padding and salt.
pub fn encrypt(data: &[u8]) -> Vec<u8> {
    let mut random = rand::random_iter::<u8>();
    encrypt_with(data, || random.next().unwrap_or(0))
}

/// Encrypts taking the header, padding and salt bytes from `random`.
pub fn encrypt_with(data: &[u8], mut random: impl FnMut() -> u8) -> Vec<u8> {
    let pad = (8 - (data.len() + 1 + SALT_LEN + ZERO_LEN) % 8) % 8;
    let mut plain = Vec::with_capacity(data.len() + 1 + pad + SALT_LEN + ZERO_LEN);
    plain.push((random() & 0xF8) | pad as u8);
    for _ in 0..pad + SALT_LEN {
        plain.push(random());
    }
    plain.extend_from_slice(data);
    plain.extend_from_slice(&[0; ZERO_LEN]);

    let mut out = Vec::with_capacity(plain.len());
    let (mut previous_cipher, mut previous_mixed) = (0u64, 0u64);
    for offset in (0..plain.len()).step_by(8) {
        let mixed = block_at(&plain, offset) ^ previous_cipher;
        let cipher = encipher(mixed) ^ previous_mixed;
        out.extend_from_slice(&cipher.to_be_bytes());
        previous_cipher = cipher;
        previous_mixed = mixed;
    }
    out
}

/// Decrypts and checks the framing.
pub fn decrypt(cipher: &[u8]) -> Result<Vec<u8>, TeaError> {
    if cipher.len() < 16 || !cipher.len().is_multiple_of(8) {
        return Err(TeaError::Length(cipher.len()));
    }
    let mut plain = Vec::with_capacity(cipher.len());
    let (mut previous_cipher, mut previous_mixed) = (0u64, 0u64);
    for offset in (0..cipher.len()).step_by(8) {
        let block = block_at(cipher, offset);
        let mixed = decipher(block ^ previous_mixed);
        plain.extend_from_slice(&(mixed ^ previous_cipher).to_be_bytes());
        previous_cipher = block;
        previous_mixed = mixed;
    }
    let pad = usize::from(plain[0] & 0x07);
    let start = 1 + pad + SALT_LEN;
    let end = plain.len() - ZERO_LEN;
    if start > end {
        return Err(TeaError::Padding);
    }
    if plain[end..].iter().any(|b| *b != 0) {
        return Err(TeaError::TrailingZeros);
    }
    Ok(plain[start..end].to_vec())
}

#[cfg(test)]
mod tests {
    //! Known answers derived by hand with an independent Python implementation of
    //! the rules above (struct.unpack(">II"), 16 rounds, fixed random bytes
    //! A7 11 22 ...): header 0xA7 & 0xF8 | pad 1 = 0xA1, pad byte 0x11, salt 22 33.
    use super::*;

    #[test]
    fn one_tea_block_of_zeros() {
        assert_eq!(encipher(0), 0x4283_fd0f_ca7e_dc59);
        assert_eq!(decipher(0x4283_fd0f_ca7e_dc59), 0);
    }

    #[test]
    fn known_answer_with_fixed_random_bytes() {
        let data = br#"{"appid":"100703379"}"#;
        let mut bytes = [0xA7u8, 0x11, 0x22, 0x33, 0x44].into_iter();
        let cipher = encrypt_with(data, || bytes.next().unwrap());
        assert_eq!(
            hex::encode(&cipher),
            "84807b685665d70e39b9041bf574b259d618f2c91fc7b66e93b5f8c007d02631"
        );
        assert_eq!(decrypt(&cipher).unwrap(), data);
    }

    #[test]
    fn round_trip_at_every_padding_length() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let cipher = encrypt(&data);
            assert_eq!(cipher.len() % 8, 0);
            assert_eq!(decrypt(&cipher).unwrap(), data, "length {len}");
        }
    }

    #[test]
    fn corruption_and_bad_lengths_are_refused() {
        let mut cipher = encrypt(b"{\"ret\":0}");
        assert_eq!(decrypt(&cipher[..8]), Err(TeaError::Length(8)));
        assert_eq!(decrypt(&cipher[..15]), Err(TeaError::Length(15)));
        let last = cipher.len() - 1;
        cipher[last] ^= 0x01;
        assert_eq!(decrypt(&cipher), Err(TeaError::TrailingZeros));
    }
}
