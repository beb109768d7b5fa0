//! A platform's base URL, parsed once at start (`http[s]://host[:port][/prefix]`).

use thiserror::Error;

/// A base URL gamegate cannot use.
#[derive(Debug, Error)]
#[error("base_url {url:?}: {problem}")]
pub struct InvalidBaseUrl {
    pub url: String,
    pub problem: &'static str,
}

/// The parts of a platform base URL (`http[s]://host[:port][/prefix]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    /// Without brackets for IPv6 (what a socket address and SNI need).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the authority as written, without a default port.
    pub host_header: String,
    /// The path before every endpoint, without a trailing `/` ("" for none).
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<Self, InvalidBaseUrl> {
        let invalid = |problem| InvalidBaseUrl {
            // A base URL with user info may hold a password: not repeated in errors.
            url: if url.contains('@') {
                "(not shown: it holds user info)".into()
            } else {
                url.to_string()
            },
            problem,
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a url"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if uri.query().is_some() {
            return Err(invalid("a base url takes no query"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in a base url are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let default_port = port == if tls { 443 } else { 80 };
        let host_header = if default_port {
            authority.host().to_string()
        } else {
            format!("{}:{port}", authority.host())
        };
        Ok(BaseUrl {
            tls,
            host: host.to_string(),
            port,
            host_header,
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }
}
