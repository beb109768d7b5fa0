//! msdktea: the body cipher of MSDK's `Content-Encrypt: msdktea` / `Accept-Encrypt: msdktea`.
//!
//! It is QQ's TEA variant (`oi_symmetry_encrypt2`, seen in public MSDK client code): 16-round TEA
//! with big-endian 32-bit words under a fixed key, a random-padded frame, and a chaining in which
//! each ciphertext block is also XORed with the previous block's input to TEA. gamegate has its
//! own implementation; this one is written from SIGNING.md alone so that the two check each other.

/// The fixed key: the 16 ASCII bytes `msdkmsdkmsdkmsdk`.
const KEY: [u32; 4] = [
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
    u32::from_be_bytes(*b"msdk"),
];
const DELTA: u32 = 0x9e37_79b9;
const ROUNDS: u32 = 16;
const BLOCK: usize = 8;
/// Random salt bytes after the padding.
const SALT_LEN: usize = 2;
/// Zero bytes after the data; decryption checks them.
const ZERO_LEN: usize = 7;

/// Why a body could not be decrypted (the MSDK answer is -304 whatever the reason).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecryptError {
    #[error("ciphertext length {0} is not a positive multiple of 8 of at least 16 bytes")]
    Length(usize),
    #[error("the padding length does not fit the ciphertext")]
    Frame,
    #[error("the trailing zero bytes are not zero")]
    Trailer,
}

fn tea_encrypt_block(block: [u8; BLOCK]) -> [u8; BLOCK] {
    let (mut y, mut z) = split(block);
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
    join(y, z)
}

fn tea_decrypt_block(block: [u8; BLOCK]) -> [u8; BLOCK] {
    let (mut y, mut z) = split(block);
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
    join(y, z)
}

fn split(block: [u8; BLOCK]) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = block;
    (
        u32::from_be_bytes([a, b, c, d]),
        u32::from_be_bytes([e, f, g, h]),
    )
}

fn join(y: u32, z: u32) -> [u8; BLOCK] {
    let mut block = [0; BLOCK];
    block[..4].copy_from_slice(&y.to_be_bytes());
    block[4..].copy_from_slice(&z.to_be_bytes());
    block
}

fn xor(a: [u8; BLOCK], b: [u8; BLOCK]) -> [u8; BLOCK] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn block_at(bytes: &[u8], index: usize) -> [u8; BLOCK] {
    let mut block = [0; BLOCK];
    block.copy_from_slice(&bytes[index * BLOCK..(index + 1) * BLOCK]);
    block
}

/// Encrypts with the thread's random generator for the header, padding and salt bytes.
pub(crate) fn encrypt(data: &[u8]) -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::rng();
    encrypt_with(data, &mut || rng.random())
}

/// Encrypts taking the random bytes from `random`, in this order: the header byte, the padding
/// bytes, the two salt bytes. Tests pass a fixed sequence to get a known answer.
pub(crate) fn encrypt_with(data: &[u8], random: &mut dyn FnMut() -> u8) -> Vec<u8> {
    // Header byte + salt + zeros take 10 bytes; the padding tops the frame up to whole blocks.
    let pad_len = (BLOCK - (data.len() + 1 + SALT_LEN + ZERO_LEN) % BLOCK) % BLOCK;
    let mut frame = Vec::with_capacity(1 + pad_len + SALT_LEN + data.len() + ZERO_LEN);
    // pad_len < 8, so it fits the low three bits the mask leaves free.
    frame.push((random() & 0xf8) | pad_len as u8);
    frame.extend((0..pad_len + SALT_LEN).map(|_| random()));
    frame.extend_from_slice(data);
    frame.extend_from_slice(&[0; ZERO_LEN]);
    debug_assert_eq!(frame.len() % BLOCK, 0);

    let mut out = Vec::with_capacity(frame.len());
    // C_i = TEA(P_i ^ C_{i-1}) ^ X_{i-1}, where X_{i-1} = P_{i-1} ^ C_{i-2} is the previous
    // block's input to TEA; both start as zero blocks.
    let mut previous_cipher = [0; BLOCK];
    let mut previous_input = [0; BLOCK];
    for index in 0..frame.len() / BLOCK {
        let input = xor(block_at(&frame, index), previous_cipher);
        let cipher = xor(tea_encrypt_block(input), previous_input);
        out.extend_from_slice(&cipher);
        previous_cipher = cipher;
        previous_input = input;
    }
    out
}

/// Decrypts and unframes; checks the frame and its 7 trailing zero bytes.
pub(crate) fn decrypt(cipher: &[u8]) -> Result<Vec<u8>, DecryptError> {
    // The smallest frame (empty data) is 1 + 5 padding + 2 + 7 = 16 bytes.
    if !cipher.len().is_multiple_of(BLOCK) || cipher.len() < 2 * BLOCK {
        return Err(DecryptError::Length(cipher.len()));
    }
    let mut frame = Vec::with_capacity(cipher.len());
    let mut previous_cipher = [0; BLOCK];
    let mut previous_input = [0; BLOCK];
    for index in 0..cipher.len() / BLOCK {
        let block = block_at(cipher, index);
        let input = tea_decrypt_block(xor(block, previous_input));
        frame.extend_from_slice(&xor(input, previous_cipher));
        previous_cipher = block;
        previous_input = input;
    }
    let pad_len = usize::from(frame[0] & 0x07);
    let start = 1 + pad_len + SALT_LEN;
    let end = frame.len() - ZERO_LEN;
    if start > end {
        return Err(DecryptError::Frame);
    }
    if frame[end..].iter().any(|&b| b != 0) {
        return Err(DecryptError::Trailer);
    }
    Ok(frame[start..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte source that yields `bytes` in order.
    fn fixed(bytes: &[u8]) -> impl FnMut() -> u8 + '_ {
        let mut iter = bytes.iter().copied();
        move || iter.next().expect("enough fixed random bytes")
    }

    // Expected values computed with this Python (3.11), written from SIGNING.md's rules, not from
    // this code:
    //
    //   import struct
    //   DELTA, KEY, M = 0x9E3779B9, b"msdkmsdkmsdkmsdk", 0xFFFFFFFF
    //   def tea_block(block, key=KEY):
    //       y, z = struct.unpack(">II", block); k = struct.unpack(">IIII", key); s = 0
    //       for _ in range(16):
    //           s = (s + DELTA) & M
    //           y = (y + ((((z << 4) & M) + k[0]) ^ ((z + s) & M) ^ ((z >> 5) + k[1]))) & M
    //           z = (z + ((((y << 4) & M) + k[2]) ^ ((y + s) & M) ^ ((y >> 5) + k[3]))) & M
    //       return struct.pack(">II", y, z)
    //   def encrypt(data, rnd):  # rnd: header byte, then padLen pad bytes, then 2 salt bytes
    //       rnd = iter(rnd); pad = (8 - (len(data) + 10) % 8) % 8
    //       plain = bytes([(next(rnd) & 0xF8) | pad]) + bytes(next(rnd) for _ in range(pad))
    //       plain += bytes(next(rnd) for _ in range(2)) + data + bytes(7)
    //       prev_cipher = prev_plain = bytes(8); out = b""
    //       for i in range(0, len(plain), 8):
    //           x = bytes(a ^ b for a, b in zip(plain[i:i + 8], prev_cipher))
    //           c = bytes(a ^ b for a, b in zip(tea_block(x), prev_plain))
    //           out += c; prev_cipher, prev_plain = c, x
    //       return plain, out
    //
    // The same round function with 32 rounds and a zero key gives the textbook TEA vector
    // tea(0, 0) = 41ea3a0a 94baa940, which checks the Python itself.

    /// `encrypt(b'{"ret":0,"msg":"ok"}', bytes(range(0xA1, 0xB1)))`: 20 data bytes, so padLen 2;
    /// header (0xA1 & 0xF8) | 2 = 0xA2, padding A2 A3, salt A4 A5.
    const KNOWN_DATA: &[u8] = br#"{"ret":0,"msg":"ok"}"#;
    const KNOWN_FRAME: &str = "a2a2a3a4a57b22726574223a302c226d7367223a226f6b227d00000000000000";
    const KNOWN_CIPHER: &str = "b54e8ea1010367ba8c672e401a23ede2df6aa15225f8d81a4dc0341252d68a5f";
    /// `encrypt(b"", bytes([0x5C, 1, 2, ..., 9]))`: padLen 6, header 0x5E.
    const EMPTY_CIPHER: &str = "8de72f210d2d395bee9b519cf15fe2fc";
    /// `tea_block(bytes(8))` under the msdk key.
    const TEA_OF_ZERO: &str = "4283fd0fca7edc59";

    #[test]
    fn tea_block_matches_python() {
        assert_eq!(hex::encode(tea_encrypt_block([0; 8])), TEA_OF_ZERO);
        assert_eq!(tea_decrypt_block(tea_encrypt_block([7; 8])), [7; 8]);
    }

    #[test]
    fn known_answer() {
        let random: Vec<u8> = (0xa1..=0xb0).collect();
        let cipher = encrypt_with(KNOWN_DATA, &mut fixed(&random));
        assert_eq!(hex::encode(&cipher), KNOWN_CIPHER);
        assert_eq!(decrypt(&cipher).unwrap(), KNOWN_DATA);
        // The frame itself, as the Python printed it: the first block decrypts to it.
        let first = tea_decrypt_block(block_at(&cipher, 0));
        assert_eq!(hex::encode(first), &KNOWN_FRAME[..16]);

        let cipher = encrypt_with(b"", &mut fixed(&[0x5c, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
        assert_eq!(hex::encode(&cipher), EMPTY_CIPHER);
        assert_eq!(decrypt(&cipher).unwrap(), b"");
    }

    #[test]
    fn round_trips_every_length_around_block_edges() {
        for len in 0..=40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let cipher = encrypt(&data);
            assert_eq!(cipher.len() % 8, 0);
            assert_eq!(cipher.len(), (len + 10).div_ceil(8) * 8, "len {len}");
            assert_eq!(decrypt(&cipher).unwrap(), data, "len {len}");
        }
        let utf8 = "{\"nickName\":\"헌터\",\"city\":\"深圳\"}".as_bytes();
        assert_eq!(decrypt(&encrypt(utf8)).unwrap(), utf8);
    }

    #[test]
    fn random_bytes_change_the_ciphertext_not_the_data() {
        let a = encrypt_with(KNOWN_DATA, &mut fixed(&[0; 16]));
        let b = encrypt_with(KNOWN_DATA, &mut fixed(&[0xff; 16]));
        assert_ne!(a, b);
        assert_eq!(decrypt(&a).unwrap(), decrypt(&b).unwrap());
    }

    #[test]
    fn refuses_bad_ciphertexts() {
        assert_eq!(decrypt(b""), Err(DecryptError::Length(0)));
        assert_eq!(decrypt(&[0; 8]), Err(DecryptError::Length(8)));
        assert_eq!(decrypt(&[0; 17]), Err(DecryptError::Length(17)));
        // Plain JSON of a block length is not a ciphertext.
        assert!(decrypt(br#"{"accessToken":"0123456789ABCDEF"}"#).is_err());
        // A flipped bit in the last block breaks the trailing zeros.
        let mut cipher = hex::decode(KNOWN_CIPHER).unwrap();
        let last = cipher.len() - 1;
        cipher[last] ^= 1;
        assert_eq!(decrypt(&cipher), Err(DecryptError::Trailer));
    }
}
