//! The one HTTP client every platform sends through: pooled keep-alive
//! connections, a deadline on every call, errors that never carry the URL
//! (upstream URLs hold access tokens, secrets and openkeys).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use crate::{errors::GatewayError, proto::Platform, routes::Method};

/// A body to send and its content type.
pub struct OutgoingBody {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
}

impl UpstreamHttp {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("gamegate/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(UpstreamHttp { client })
    }

    /// Sends one request and returns the body of a 2xx answer, within `deadline`.
    pub async fn send(
        &self,
        platform: Platform,
        endpoint: &str,
        method: Method,
        url: &str,
        body: Option<OutgoingBody>,
        deadline: Instant,
    ) -> Result<Bytes, GatewayError> {
        self.send_with_headers(platform, endpoint, method, url, body, &[], deadline)
            .await
            .map(|answer| answer.body)
    }

    /// [`UpstreamHttp::send`] with extra request headers; the answer keeps its
    /// headers (MSDK says in `Content-Encrypt` whether the body is encrypted).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_with_headers(
        &self,
        platform: Platform,
        endpoint: &str,
        method: Method,
        url: &str,
        body: Option<OutgoingBody>,
        headers: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<UpstreamAnswer, GatewayError> {
        let now = Instant::now();
        let timeout = |budget: Duration| GatewayError::Timeout {
            platform,
            endpoint: endpoint.to_string(),
            budget,
        };
        if deadline <= now {
            return Err(timeout(Duration::ZERO));
        }
        let mut request = match method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, body.content_type)
                .body(body.bytes);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, bytes))
        };
        let (status, headers, bytes) = match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => return Err(timeout(deadline - now)),
            Ok(Err(error)) if error.is_timeout() => return Err(timeout(deadline - now)),
            Ok(Err(error)) => {
                return Err(GatewayError::Unreachable {
                    platform,
                    endpoint: endpoint.to_string(),
                    source: error.without_url(),
                });
            }
            Ok(Ok(answer)) => answer,
        };
        if !status.is_success() {
            return Err(GatewayError::HttpStatus {
                platform,
                endpoint: endpoint.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(UpstreamAnswer {
            headers,
            body: bytes,
        })
    }
}

/// A 2xx answer: its headers and body.
pub struct UpstreamAnswer {
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// Parses an answer that must be a JSON object.
pub fn json_object(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
) -> Result<Map<String, Json>, GatewayError> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: "the answer is json but not an object".into(),
        }),
        Err(error) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("the answer is not json: {error}"),
        }),
    }
}

/// Parses an answer whose envelope carries its result code in `code_member`
/// (`errcode`, `ret`): the JSON object and that code (0 = success).
pub fn enveloped(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
    code_member: &str,
) -> Result<(Map<String, Json>, i64), GatewayError> {
    let answer = json_object(platform, endpoint, bytes)?;
    match envelope_code(&answer, code_member) {
        Some(code) => Ok((answer, code)),
        None => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("{code_member} is not an integer"),
        }),
    }
}

/// Reads an integer envelope member (`errcode`, `ret`) leniently: a number or a
/// string holding one. Absent means 0.
pub fn envelope_code(object: &Map<String, Json>, name: &str) -> Option<i64> {
    match object.get(name) {
        None | Some(Json::Null) => Some(0),
        Some(Json::Number(n)) => n.as_i64(),
        Some(Json::String(s)) if s.trim().is_empty() => Some(0),
        Some(Json::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
}

/// Reads a text envelope member (`errmsg`, `msg`), whatever its JSON type.
pub fn envelope_text(object: &Map<String, Json>, names: &[&str]) -> String {
    for name in names {
        match object.get(*name) {
            Some(Json::String(s)) => return s.clone(),
            Some(Json::Null) | None => continue,
            Some(other) => return other.to_string(),
        }
    }
    String::new()
}
