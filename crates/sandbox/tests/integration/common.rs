//! Test client helpers. The signing here is written from SIGNING.md separately from the
//! sandbox's own code, so that a shared misreading shows up against the Python vectors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gamegate_sandbox::{RunningSandbox, SandboxConfig, demo, spawn};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use sha2::Sha256;

pub struct Harness {
    pub sandbox: RunningSandbox,
    pub client: reqwest::Client,
    pub base: String,
}

pub async fn start() -> Harness {
    start_with(SandboxConfig::demo()).await
}

pub async fn start_with(config: SandboxConfig) -> Harness {
    let sandbox = spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox binds");
    let base = sandbox.base_url();
    Harness {
        sandbox,
        client: reqwest::Client::new(),
        base,
    }
}

impl Harness {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub async fn get_json(&self, path_and_query: &str) -> Value {
        let response = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path_and_query}");
        response.json().await.unwrap()
    }

    /// An admin call with a JSON body; returns the status and the JSON answer.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn get_token(&self) -> String {
        let answer = self
            .get_json(&format!(
                "/api/getToken?grant_type=client_credential&appid={}&secret={}",
                demo::MINIGAME_APPID,
                demo::MINIGAME_SECRET
            ))
            .await;
        assert_eq!(answer["errcode"], 0, "{answer}");
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// A signed mini-game storage call with a raw body; returns the errcode.
    pub async fn storage_call(
        &self,
        path: &str,
        token: &str,
        openid: &str,
        session_key: &str,
        body: &str,
    ) -> i64 {
        let signature = sign_body(session_key, body.as_bytes());
        self.storage_call_raw(
            path,
            &format!(
                "access_token={token}&openid={openid}&signature={signature}&sig_method=hmac_sha256"
            ),
            body,
        )
        .await
    }

    /// A mini-game storage call with the query given as is; returns the errcode.
    pub async fn storage_call_raw(&self, path: &str, query: &str, body: &str) -> i64 {
        let response = self
            .client
            .post(self.url(&format!("{path}?{query}")))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert!(answer["errmsg"].is_string(), "{answer}");
        answer["errcode"].as_i64().unwrap()
    }

    /// Alice's call with the demo app's fresh token.
    pub async fn alice(&self, path: &str, body: &str) -> i64 {
        let token = self.get_token().await;
        self.storage_call(
            path,
            &token,
            demo::MINIGAME_ALICE_OPENID,
            demo::MINIGAME_ALICE_SESSION_KEY,
            body,
        )
        .await
    }

    pub async fn alice_storage(&self) -> Value {
        self.get_json(&format!(
            "/_sandbox/minigame/storage?appid={}&openid={}",
            demo::MINIGAME_APPID,
            demo::MINIGAME_ALICE_OPENID
        ))
        .await
    }

    /// A signed OpenAPI call on the demo app; returns the JSON answer.
    pub async fn openapi(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = self.url(&openapi_path(demo::OPENAPI_APPKEY, path, params));
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

pub const SET: &str = "/api/openDataContext/set_user_storage";
pub const REMOVE: &str = "/api/openDataContext/remove_user_storage";
pub const INTERACTIVE: &str = "/api/setuserinteractivedata";
pub const DAWANKA_INFO: &str = "/v3/user/get_dawanka_info";
pub const DAWANKA_PAY: &str = "/v3/user/report_dawanka_pay";

/// Lowercase hex HMAC-SHA256, keyed with the session_key string as it is.
pub fn sign_body(session_key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// OpenAPI V3 `enc`: keep `A-Z a-z 0-9 - _ .`, percent-encode every other byte in uppercase hex.
pub fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// base64(HMAC-SHA1(appkey + "&", GET&enc(path)&enc(sorted k=v joined by &))).
pub fn openapi_sig(appkey: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let joined = sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let source = format!("GET&{}&{}", enc(path), enc(&joined));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{appkey}&").as_bytes()).unwrap();
    mac.update(source.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Path and query with every value encoded and the sig appended.
pub fn openapi_path(appkey: &str, path: &str, params: &[(&str, &str)]) -> String {
    let sig = openapi_sig(appkey, path, params);
    let mut query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", enc(value)))
        .collect();
    query.push(format!("sig={}", enc(&sig)));
    format!("{path}?{}", query.join("&"))
}

/// The demo super dawanka player's public parameters.
pub fn super_player() -> Vec<(&'static str, &'static str)> {
    vec![
        ("appid", demo::OPENAPI_APPID),
        ("openid", demo::OPENAPI_SUPER_OPENID),
        ("openkey", demo::OPENAPI_SUPER_OPENKEY),
        ("pf", "qqgame"),
    ]
}

pub fn player(openid: &'static str, openkey: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("appid", demo::OPENAPI_APPID),
        ("openid", openid),
        ("openkey", openkey),
        ("pf", "qqgame"),
    ]
}

#[test]
fn client_signing_matches_python_vectors() {
    // python3 -c 'import hmac,hashlib; print(hmac.new(b"HyVFkGl5F5OQWJZZaNzBBg==",
    //   b"{\"kv_list\":[{\"key\":\"score\",\"value\":\"100\"}]}", hashlib.sha256).hexdigest())'
    assert_eq!(
        sign_body(
            "HyVFkGl5F5OQWJZZaNzBBg==",
            br#"{"kv_list":[{"key":"score","value":"100"}]}"#
        ),
        "f026a8d27ebc5f205fdfd0cdd0db90f3b0308571df4cc1653478f22b5a72af82"
    );
    // Python: base64(hmac.new(b"demo-openapi-appkey&", source, sha1)) over the source built by
    // the rules, with params version=2, format=json, userip=203.0.113.7, note="a b/c~+".
    assert_eq!(
        openapi_sig(
            "demo-openapi-appkey",
            DAWANKA_INFO,
            &[
                ("version", "2"),
                ("appid", "1110766236"),
                ("openid", "AB055EE03EE6F7CCB31F6CCE75A50A38"),
                ("openkey", "CC11B9096D458AEFDEF72981AE5A136D"),
                ("pf", "qqgame"),
                ("format", "json"),
                ("userip", "203.0.113.7"),
                ("note", "a b/c~+"),
            ]
        ),
        "dNrGk/pyS/K9IiplsO2pHoZ6r7Q="
    );
}
