//! An MSDK client of the tests' own, written from SIGNING.md apart from the sandbox's code: the
//! URL and sig, and msdktea (a second TEA implementation, pinned to the Python vectors).

use std::time::{SystemTime, UNIX_EPOCH};

use gamegate_sandbox::demo;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::common::Harness;

/// Lowercase hex md5(key + timestamp).
pub fn msdk_sig(key: &str, timestamp: &str) -> String {
    hex::encode(Md5::digest(format!("{key}{timestamp}").as_bytes()))
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

// ---- msdktea, second implementation -----------------------------------------------------------

const TEA_KEY: &[u8; 16] = b"msdkmsdkmsdkmsdk";

fn key_words() -> [u32; 4] {
    let mut words = [0; 4];
    for (word, chunk) in words.iter_mut().zip(TEA_KEY.chunks(4)) {
        *word = u32::from_be_bytes(chunk.try_into().unwrap());
    }
    words
}

/// One 16-round TEA block on a u64 (high word first, big-endian).
fn tea(block: u64, decrypt: bool) -> u64 {
    let k = key_words();
    let mut v0 = (block >> 32) as u32;
    let mut v1 = block as u32;
    let delta = 0x9e37_79b9_u32;
    if decrypt {
        let mut sum = delta.wrapping_mul(16);
        for _ in 0..16 {
            v1 = v1.wrapping_sub(
                (v0 << 4).wrapping_add(k[2]) ^ v0.wrapping_add(sum) ^ (v0 >> 5).wrapping_add(k[3]),
            );
            v0 = v0.wrapping_sub(
                (v1 << 4).wrapping_add(k[0]) ^ v1.wrapping_add(sum) ^ (v1 >> 5).wrapping_add(k[1]),
            );
            sum = sum.wrapping_sub(delta);
        }
    } else {
        let mut sum = 0u32;
        for _ in 0..16 {
            sum = sum.wrapping_add(delta);
            v0 = v0.wrapping_add(
                (v1 << 4).wrapping_add(k[0]) ^ v1.wrapping_add(sum) ^ (v1 >> 5).wrapping_add(k[1]),
            );
            v1 = v1.wrapping_add(
                (v0 << 4).wrapping_add(k[2]) ^ v0.wrapping_add(sum) ^ (v0 >> 5).wrapping_add(k[3]),
            );
        }
    }
    (u64::from(v0) << 32) | u64::from(v1)
}

/// Encrypts with the random bytes given (header, padding, salt, in that order).
pub fn tea_encrypt(data: &[u8], random: &[u8]) -> Vec<u8> {
    let pad = (8 - (data.len() + 10) % 8) % 8;
    let mut random = random.iter().copied();
    let mut next = || random.next().expect("enough random bytes");
    let mut frame = vec![(next() & 0xf8) | pad as u8];
    for _ in 0..pad + 2 {
        frame.push(next());
    }
    frame.extend_from_slice(data);
    frame.extend_from_slice(&[0; 7]);
    let (mut last_cipher, mut last_input) = (0u64, 0u64);
    let mut out = Vec::new();
    for chunk in frame.chunks(8) {
        let input = u64::from_be_bytes(chunk.try_into().unwrap()) ^ last_cipher;
        let cipher = tea(input, false) ^ last_input;
        out.extend_from_slice(&cipher.to_be_bytes());
        (last_cipher, last_input) = (cipher, input);
    }
    out
}

pub fn tea_decrypt(cipher: &[u8]) -> Option<Vec<u8>> {
    if cipher.len() < 16 || !cipher.len().is_multiple_of(8) {
        return None;
    }
    let (mut last_cipher, mut last_input) = (0u64, 0u64);
    let mut frame = Vec::new();
    for chunk in cipher.chunks(8) {
        let block = u64::from_be_bytes(chunk.try_into().unwrap());
        let input = tea(block ^ last_input, true);
        frame.extend_from_slice(&(input ^ last_cipher).to_be_bytes());
        (last_cipher, last_input) = (block, input);
    }
    let start = 3 + usize::from(frame[0] & 7);
    let end = frame.len() - 7;
    (start <= end && frame[end..].iter().all(|&b| b == 0)).then(|| frame[start..end].to_vec())
}

#[test]
fn client_tea_matches_the_python_vector() {
    // Python (the script in the sandbox's src/msdk/tea.rs tests):
    //   encrypt(b'{"ret":0,"msg":"ok"}', bytes(range(0xA1, 0xB1)))
    let random: Vec<u8> = (0xa1..=0xb0).collect();
    let cipher = tea_encrypt(br#"{"ret":0,"msg":"ok"}"#, &random);
    assert_eq!(
        hex::encode(&cipher),
        "b54e8ea1010367ba8c672e401a23ede2df6aa15225f8d81a4dc0341252d68a5f"
    );
    assert_eq!(tea_decrypt(&cipher).unwrap(), br#"{"ret":0,"msg":"ok"}"#);
    // encrypt(b"", bytes([0x5C, 1, 2, ..., 9]))
    assert_eq!(
        hex::encode(tea_encrypt(b"", &[0x5c, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
        "8de72f210d2d395bee9b519cf15fe2fc"
    );
}

#[test]
fn client_sig_matches_python() {
    // python3 -c 'import hashlib; print(hashlib.md5(b"demo-msdk-qq-key-0001" b"1700000000").hexdigest())'
    assert_eq!(
        msdk_sig(demo::MSDK_QQ_MSDKKEY, "1700000000"),
        "bcc31f206440071872d0f6a95e2b2091"
    );
    assert_eq!(
        msdk_sig(demo::MSDK_WX_MSDKKEY, "1700000000"),
        "0c3e143850343148c5d85425635f7a89"
    );
    // encode=1 signs with the appkey.
    assert_eq!(
        msdk_sig(demo::MSDK_QQ_APPKEY, "1700000000"),
        "783f63ca3c30edf02428e22b26ea25ea"
    );
    // The seed's PHP comment: md5("111111") = "96e79218965e*********d5a330112".
    assert_eq!(msdk_sig("111111", ""), "96e79218965eb72c92a549dd5a330112");
}

// ---- requests -------------------------------------------------------------------------------

/// One MSDK request; the constructors fill in a valid URL for the demo apps.
#[derive(Clone, Debug)]
pub struct MsdkRequest {
    pub path: String,
    pub appid: Option<String>,
    pub key: String,
    pub encode: Option<String>,
    pub timestamp: Option<String>,
    /// None = computed from `key` and `timestamp`.
    pub sig: Option<String>,
    pub openid: Option<String>,
    pub extra: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Send the body encrypted, with `Content-Encrypt: msdktea`.
    pub encrypt: bool,
    /// Ask for an encrypted answer (`Accept-Encrypt: msdktea`); `send` decrypts it.
    pub accept_encrypt: bool,
    pub headers: Vec<(&'static str, String)>,
}

impl MsdkRequest {
    pub fn new(path: &str, appid: &str, key: &str, openid: Option<&str>, body: &Value) -> Self {
        Self {
            path: path.to_owned(),
            appid: Some(appid.to_owned()),
            key: key.to_owned(),
            encode: Some("2".to_owned()),
            timestamp: Some(now().to_string()),
            sig: None,
            openid: openid.map(str::to_owned),
            extra: vec![("conn".to_owned(), "1".to_owned())],
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            encrypt: false,
            accept_encrypt: false,
            headers: Vec::new(),
        }
    }

    pub fn qq(path: &str, openid: &str, body: Value) -> Self {
        Self::new(
            path,
            demo::MSDK_QQ_APPID,
            demo::MSDK_QQ_MSDKKEY,
            Some(openid),
            &body,
        )
    }

    pub fn wx(path: &str, openid: &str, body: Value) -> Self {
        Self::new(
            path,
            demo::MSDK_WX_APPID,
            demo::MSDK_WX_MSDKKEY,
            Some(openid),
            &body,
        )
    }

    pub fn guest(path: &str, body: Value) -> Self {
        Self::new(
            path,
            demo::MSDK_GUEST_APPID,
            demo::MSDK_QQ_MSDKKEY,
            Some(demo::MSDK_GUEST_OPENID),
            &body,
        )
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn raw_body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    pub fn path_and_query(&self) -> String {
        let mut query = Vec::new();
        if let Some(timestamp) = &self.timestamp {
            query.push(format!("timestamp={timestamp}"));
        }
        if let Some(appid) = &self.appid {
            query.push(format!("appid={appid}"));
        }
        let sig = self
            .sig
            .clone()
            .unwrap_or_else(|| msdk_sig(&self.key, self.timestamp.as_deref().unwrap_or_default()));
        if !sig.is_empty() {
            query.push(format!("sig={sig}"));
        }
        if let Some(openid) = &self.openid {
            query.push(format!("openid={openid}"));
        }
        if let Some(encode) = &self.encode {
            query.push(format!("encode={encode}"));
        }
        for (name, value) in &self.extra {
            query.push(format!("{name}={value}"));
        }
        format!("{}?{}", self.path, query.join("&"))
    }

    pub async fn send_raw(&self, h: &Harness) -> reqwest::Response {
        let body = if self.encrypt {
            let random: Vec<u8> = (0..16).map(|i| 0x30 + i).collect();
            tea_encrypt(&self.body, &random)
        } else {
            self.body.clone()
        };
        let mut request = h
            .client
            .post(h.url(&self.path_and_query()))
            .header("Content-Type", self.content_type)
            .body(body);
        if self.encrypt {
            request = request.header("Content-Encrypt", "msdktea");
        }
        if self.accept_encrypt {
            request = request.header("Accept-Encrypt", "msdktea");
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// Sends, checks HTTP 200, decrypts when an encrypted answer was asked for, parses JSON.
    pub async fn send(&self, h: &Harness) -> Value {
        let response = self.send_raw(h).await;
        assert_eq!(response.status(), 200, "{}", self.path);
        let encrypted = response
            .headers()
            .get("content-encrypt")
            .is_some_and(|v| v == "msdktea");
        assert_eq!(encrypted, self.accept_encrypt, "answer encryption");
        let bytes = response.bytes().await.unwrap();
        let plain = if self.accept_encrypt {
            tea_decrypt(&bytes).expect("the answer decrypts")
        } else {
            bytes.to_vec()
        };
        serde_json::from_slice(&plain).unwrap_or_else(|error| {
            panic!("{error}: {}", String::from_utf8_lossy(&plain));
        })
    }
}

/// Sets the fields the body does not already have.
fn fill(body: &mut Value, fields: [(&str, &str); 3]) {
    let object = body.as_object_mut().expect("a JSON object body");
    for (name, value) in fields {
        object
            .entry(name)
            .or_insert_with(|| Value::from(value.to_owned()));
    }
}

/// A QQ call with the appid, openid and the user's demo token in the body (unless the body
/// already has them).
pub fn qq_call(path: &str, openid: &str, token: &str, mut body: Value) -> MsdkRequest {
    fill(
        &mut body,
        [
            ("appid", demo::MSDK_QQ_APPID),
            ("openid", openid),
            ("accessToken", token),
        ],
    );
    MsdkRequest::qq(path, openid, body)
}

pub fn alice(path: &str, body: Value) -> MsdkRequest {
    qq_call(
        path,
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        body,
    )
}

pub fn bob(path: &str, body: Value) -> MsdkRequest {
    qq_call(
        path,
        demo::MSDK_QQ_BOB_OPENID,
        demo::MSDK_QQ_BOB_TOKEN,
        body,
    )
}

pub fn carol(path: &str, body: Value) -> MsdkRequest {
    qq_call(
        path,
        demo::MSDK_QQ_CAROL_OPENID,
        demo::MSDK_QQ_CAROL_TOKEN,
        body,
    )
}

/// A WeChat call, filled in like [`qq_call`].
pub fn wx_call(path: &str, openid: &str, token: &str, mut body: Value) -> MsdkRequest {
    fill(
        &mut body,
        [
            ("appid", demo::MSDK_WX_APPID),
            ("openid", openid),
            ("accessToken", token),
        ],
    );
    MsdkRequest::wx(path, openid, body)
}

pub fn wx_alice(path: &str, body: Value) -> MsdkRequest {
    wx_call(
        path,
        demo::MSDK_WX_ALICE_OPENID,
        demo::MSDK_WX_ALICE_TOKEN,
        body,
    )
}

/// `ret`, asserting it is there.
pub fn ret(answer: &Value) -> i64 {
    answer["ret"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ret in {answer}"))
}
