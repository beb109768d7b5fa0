//! Outbound proxies: which platform calls go through one (the configuration,
//! else curl's environment variables and its `NO_PROXY` rules), and the
//! `CONNECT` tunnel an https base is reached through.
//!
//! An http base is not tunnelled: its requests are sent to the proxy in
//! absolute form (`POST http://host/path HTTP/1.1`), as HTTP/1.1 proxies
//! expect, so that a proxy that inspects or logs plain HTTP sees requests, not
//! an opaque tunnel.
//!
//! Nothing here ever shows the proxy's credentials: errors name the proxy's
//! host and port alone, and the `Proxy-Authorization` value is a secret.

use std::{io, net::IpAddr};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// The longest answer head to a `CONNECT` read: a proxy's answer is a status
/// line and a few headers; anything longer is not a proxy worth waiting for.
const MAX_CONNECT_HEAD: usize = 8 * 1024;

/// A proxy gamegate sends a platform's calls through.
#[derive(Clone)]
pub struct Proxy {
    /// Without brackets for IPv6 (what resolving needs).
    pub(super) host: String,
    pub(super) port: u16,
    /// `host:port` as errors name it (brackets kept); never the credentials.
    pub(super) authority: String,
    /// The `Proxy-Authorization` value (`Basic …`), when credentials are set.
    pub(super) authorization: Option<SecretString>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("authority", &self.authority)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "(redacted)"),
            )
            .finish()
    }
}

/// Where a proxy URL came from, for its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProxySource {
    /// The configuration's `proxy` key: credentials belong in `proxy_user`
    /// and `proxy_password`, not in the URL.
    Configuration,
    /// An environment variable: `http://user:password@host:port` is the
    /// convention there, and accepted.
    Environment,
}

/// The credentials a proxy URL carried (environment variables only).
pub(super) type UrlCredentials = Option<(String, SecretString)>;

/// Parses `http://host:port` (`host:port` alone means http, as curl reads
/// it; no port means 1080, curl's default). The error says what is wrong,
/// never the URL (it may hold a password).
pub(super) fn parse_proxy_url(
    text: &str,
    source: ProxySource,
) -> Result<(String, u16, String, UrlCredentials), &'static str> {
    let text = text.trim();
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(
                "is an https:// proxy; only http:// proxies are supported (an https \
                        platform is still reached over TLS, through a CONNECT tunnel)",
            );
        }
        Some(_) => {
            return Err("is not an http:// proxy (socks and other schemes are not supported)");
        }
        None => text,
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if !(path.is_empty() || path == "/") {
        return Err("has a path, query or fragment; a proxy is http://host:port");
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let credentials = match (userinfo, source) {
        (None, _) => None,
        (Some(_), ProxySource::Configuration) => {
            return Err("holds credentials; set proxy_user and proxy_password (or \
                        proxy_password_file) instead");
        }
        (Some(userinfo), ProxySource::Environment) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |part: &str| {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| "holds credentials that are not UTF-8 once percent-decoded")
            };
            Some((decode(user)?, SecretString::from(decode(password)?)))
        }
    };
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("has an IPv6 address without its closing bracket")?;
        match after {
            "" => (host, None),
            port => (
                host,
                Some(port.strip_prefix(':').ok_or("is not host:port")?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("has a host holding spaces or control characters");
    }
    let port = match port {
        None => 1080,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or("has a port that is not a number from 1 to 65535")?,
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((host.to_ascii_lowercase(), port, authority, credentials))
}

impl Proxy {
    pub(super) fn new(
        host: String,
        port: u16,
        authority: String,
        credentials: Option<(String, SecretString)>,
    ) -> Proxy {
        let authorization = credentials.map(|(user, password)| {
            // Every copy of the password is a secret: wiped when dropped.
            let pair = SecretString::from(format!("{user}:{}", password.expose_secret()));
            let encoded = SecretString::from(
                base64::engine::general_purpose::STANDARD.encode(pair.expose_secret()),
            );
            SecretString::from(format!("Basic {}", encoded.expose_secret()))
        });
        Proxy {
            host,
            port,
            authority,
            authorization,
        }
    }

    /// Opens a tunnel to `target` (`host:port`, brackets for IPv6) over `tcp`,
    /// a connection to this proxy, by `CONNECT`. The proxy's answer is read
    /// up to its empty line and no further (the TLS server speaks only after
    /// the client's hello, so nothing can follow it). Errors are io errors
    /// naming the proxy: the caller classes them as connecting failures. The
    /// answer must come before `until`, what is left of the connect timeout:
    /// the proxy opens the connection to the platform meanwhile, which is
    /// what that timeout bounds when there is no proxy.
    pub(super) async fn tunnel(
        &self,
        tcp: &mut TcpStream,
        target: &str,
        until: Instant,
    ) -> Result<(), TunnelError> {
        let mut request = format!(
            "CONNECT {target} HTTP/1.1\r\nhost: {target}\r\nuser-agent: {}\r\n",
            super::USER_AGENT
        );
        if let Some(authorization) = &self.authorization {
            request.push_str("proxy-authorization: ");
            request.push_str(authorization.expose_secret());
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        // It holds the credentials: wiped from memory once written.
        let request = SecretString::from(request);
        let exchange = async {
            tcp.write_all(request.expose_secret().as_bytes())
                .await
                .map_err(|e| self.io(e))?;
            drop(request);
            let mut head = Vec::with_capacity(512);
            let mut chunk = [0u8; 512];
            loop {
                let read = tcp.read(&mut chunk).await.map_err(|e| self.io(e))?;
                if read == 0 {
                    return Err(self.refused(
                        io::ErrorKind::ConnectionAborted,
                        "closed the connection instead of answering the CONNECT".into(),
                    ));
                }
                head.extend_from_slice(&chunk[..read]);
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut answer = httparse::Response::new(&mut headers);
                match answer.parse(&head) {
                    Ok(httparse::Status::Complete(length)) => {
                        let status = answer.code.unwrap_or(0);
                        // A refusal may carry a body; a tunnel carries
                        // nothing before the platform's first TLS record,
                        // which only follows the client's hello.
                        if (200..300).contains(&status) && length != head.len() {
                            return Err(self.refused(
                                io::ErrorKind::InvalidData,
                                "sent bytes after its answer to the CONNECT".into(),
                            ));
                        }
                        return self.judge(status);
                    }
                    Ok(httparse::Status::Partial) if head.len() < MAX_CONNECT_HEAD => {}
                    Ok(httparse::Status::Partial) => {
                        return Err(self.refused(
                            io::ErrorKind::InvalidData,
                            format!(
                                "answered the CONNECT with a head over {MAX_CONNECT_HEAD} bytes"
                            ),
                        ));
                    }
                    Err(_) => {
                        return Err(self.refused(
                            io::ErrorKind::InvalidData,
                            "answered the CONNECT with something that is not HTTP".into(),
                        ));
                    }
                }
            }
        };
        tokio::time::timeout_at(until, exchange)
            .await
            .map_err(|_| TunnelError::Timeout)?
    }

    fn judge(&self, status: u16) -> Result<(), TunnelError> {
        match status {
            200..=299 => Ok(()),
            // 407 is the standard answer; some proxies (tinyproxy 1.11) answer
            // a CONNECT with 401 instead. Either is the proxy's own refusal:
            // the platform was not reached.
            401 | 407 if self.authorization.is_some() => Err(self.refused(
                io::ErrorKind::PermissionDenied,
                format!(
                    "refused the credentials (status {status}): check proxy_user and \
                     proxy_password"
                ),
            )),
            401 | 407 => Err(self.refused(
                io::ErrorKind::PermissionDenied,
                format!(
                    "requires credentials (status {status}): set proxy_user and proxy_password"
                ),
            )),
            status => Err(self.refused(
                io::ErrorKind::ConnectionRefused,
                format!("refused the tunnel to the platform with status {status}"),
            )),
        }
    }

    fn refused(&self, kind: io::ErrorKind, what: String) -> TunnelError {
        TunnelError::Refused(io::Error::new(
            kind,
            format!("the proxy {} {what}", self.authority),
        ))
    }

    fn io(&self, error: io::Error) -> TunnelError {
        TunnelError::Refused(io::Error::new(
            error.kind(),
            format!("the proxy {}: {error}", self.authority),
        ))
    }

    /// An error of connecting to the proxy (or resolving its name), naming it.
    pub(super) fn named(&self, error: io::Error) -> io::Error {
        io::Error::new(
            error.kind(),
            format!("the proxy {}: {error}", self.authority),
        )
    }
}

/// Why a `CONNECT` tunnel did not open.
#[derive(Debug)]
pub(super) enum TunnelError {
    /// The proxy refused, answered badly, or the connection failed; the io
    /// error's text names the proxy.
    Refused(io::Error),
    /// No complete answer within the connect timeout.
    Timeout,
}

/// Whether `host` (a platform's, without brackets) at `port` is exempted from
/// the proxy by `list`, a `NO_PROXY` value. curl's rules: entries are
/// separated by commas (and white space); `*` exempts every host; a name
/// matches itself and every name below it (`example.com` and `.example.com`
/// both exempt `example.com` and `api.example.com`), ignoring case and a
/// trailing dot; an IP address or CIDR range (`10.0.0.0/8`, `fd00::/8`)
/// matches the addresses it covers. Loopback is not exempt unless listed
/// (`localhost,127.0.0.1,::1`). One addition to curl, Go's: an entry may end
/// in `:port` (`[::1]:8080` for IPv6), and then it exempts that port only.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry_matches(entry, &host, host_ip, port))
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = split_entry_port(entry);
    if entry_port.is_some_and(|entry_port| entry_port != port) {
        return false;
    }
    let pattern = pattern.to_ascii_lowercase();
    if let Some(ip) = host_ip {
        if let Some((network, bits)) = pattern.split_once('/') {
            return match (network.parse::<IpAddr>(), bits.parse::<u8>()) {
                (Ok(network), Ok(bits)) => in_network(ip, network, bits),
                _ => false,
            };
        }
        if let Ok(listed) = pattern.parse::<IpAddr>() {
            return listed == ip;
        }
    }
    let pattern = pattern.trim_start_matches('.').trim_end_matches('.');
    if pattern.is_empty() {
        return false;
    }
    host == pattern
        || host
            .strip_suffix(pattern)
            .is_some_and(|above| above.ends_with('.'))
}

/// `[v6]:port`, `host:port`, a bare IPv6 address (several colons: no port),
/// or a name.
fn split_entry_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = entry.strip_prefix('[') {
        return match bracketed.split_once(']') {
            Some((address, rest)) => (
                address,
                rest.strip_prefix(':').and_then(|port| port.parse().ok()),
            ),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// The proxy variable curl reads for a base of this scheme, lower case first:
/// `https_proxy` / `HTTPS_PROXY` for https bases, `http_proxy` / `HTTP_PROXY`
/// for http bases (gamegate is no CGI program, so the upper-case
/// `HTTP_PROXY` that curl ignores there is honoured too). An empty variable
/// is unset.
pub(super) fn proxy_from_environment(
    tls: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(&'static str, String)> {
    let names: [&'static str; 2] = if tls {
        ["https_proxy", "HTTPS_PROXY"]
    } else {
        ["http_proxy", "HTTP_PROXY"]
    };
    names.into_iter().find_map(|name| {
        env(name)
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    })
}

/// `no_proxy`, else `NO_PROXY`: the environment's exemptions.
pub(super) fn no_proxy_from_environment(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    ["no_proxy", "NO_PROXY"]
        .into_iter()
        .find_map(|name| env(name).filter(|value| !value.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_follows_curl() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "api.q.qq.com", 443, true),
            ("a.com, *", "b.com", 80, true),
            ("qq.com", "qq.com", 443, true),
            ("qq.com", "api.q.qq.com", 443, true),
            (".qq.com", "qq.com", 443, true),
            (".qq.com", "api.q.qq.com", 443, true),
            ("qq.com", "notqq.com", 443, false),
            ("QQ.COM.", "Api.Q.qq.com.", 443, true),
            ("msdk.qq.com", "qq.com", 80, false),
            ("", "qq.com", 80, false),
            (" , ,", "qq.com", 80, false),
            ("a.com b.com\tqq.com", "x.qq.com", 80, true),
            // Loopback is not exempt unless listed.
            ("example.com", "127.0.0.1", 80, false),
            ("example.com", "localhost", 80, false),
            ("localhost,127.0.0.1,::1", "127.0.0.1", 80, true),
            ("localhost,127.0.0.1,::1", "::1", 80, true),
            ("localhost", "localhost", 8080, true),
            // Addresses and ranges.
            ("10.0.0.0/8", "10.1.2.3", 80, true),
            ("10.0.0.0/8", "11.1.2.3", 80, false),
            ("192.168.1.7", "192.168.1.7", 80, true),
            ("192.168.1.7", "192.168.1.8", 80, false),
            ("fd00::/8", "fd12::1", 443, true),
            ("fd00::/8", "fe80::1", 443, false),
            ("0.0.0.0/0", "8.8.8.8", 443, true),
            ("10.0.0.0/40", "10.0.0.1", 443, false),
            // Ports (Go's addition).
            ("qq.com:8443", "api.qq.com", 8443, true),
            ("qq.com:8443", "api.qq.com", 443, false),
            ("127.0.0.1:9000", "127.0.0.1", 9000, true),
            ("127.0.0.1:9000", "127.0.0.1", 9001, false),
            ("[::1]:9000", "::1", 9000, true),
            ("[::1]:9000", "::1", 9001, false),
            ("[::1]", "::1", 1, true),
        ];
        for (list, host, port, exempt) in cases {
            assert_eq!(
                no_proxy_matches(list, host, *port),
                *exempt,
                "NO_PROXY={list:?} for {host}:{port}"
            );
        }
    }

    #[test]
    fn proxy_urls() {
        let parse = |text| parse_proxy_url(text, ProxySource::Configuration);
        let (host, port, authority, credentials) = parse("http://Proxy.corp:3128").unwrap();
        assert_eq!(
            (host.as_str(), port, authority.as_str()),
            ("proxy.corp", 3128, "Proxy.corp:3128")
        );
        assert!(credentials.is_none());
        assert_eq!(parse("proxy.corp:3128").unwrap().1, 3128);
        assert_eq!(parse("http://proxy.corp").unwrap().1, 1080);
        assert_eq!(parse("http://proxy.corp:3128/").unwrap().1, 3128);
        let (host, port, authority, _) = parse("http://[::1]:3128").unwrap();
        assert_eq!(
            (host.as_str(), port, authority.as_str()),
            ("::1", 3128, "[::1]:3128")
        );
        for bad in [
            "https://proxy:3128",
            "socks5://proxy:1080",
            "http://proxy:3128/path",
            "http://proxy:99999",
            "http://proxy:0",
            "http://:3128",
            "http://[::1:3128",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        let refused = parse("http://user:hunter2@proxy:3128").unwrap_err();
        assert!(refused.contains("proxy_user") && !refused.contains("hunter2"));

        let (_, _, authority, credentials) =
            parse_proxy_url("http://us%40er:p%3Ass@proxy:3128", ProxySource::Environment).unwrap();
        let (user, password) = credentials.unwrap();
        assert_eq!((user.as_str(), password.expose_secret()), ("us@er", "p:ss"));
        assert_eq!(authority, "proxy:3128");
    }

    #[test]
    fn credentials_are_basic_and_never_shown() {
        let proxy = Proxy::new(
            "proxy".into(),
            3128,
            "proxy:3128".into(),
            Some(("user".into(), SecretString::from("pass"))),
        );
        assert_eq!(
            proxy.authorization.as_ref().unwrap().expose_secret(),
            "Basic dXNlcjpwYXNz"
        );
        let shown = format!("{proxy:?}");
        assert!(
            !shown.contains("dXNlcjpwYXNz") && shown.contains("proxy:3128"),
            "{shown}"
        );
        let TunnelError::Refused(error) = proxy.judge(407).unwrap_err() else {
            panic!("407 is a refusal")
        };
        let text = error.to_string();
        assert!(
            text.contains("proxy:3128") && text.contains("refused the credentials"),
            "{text}"
        );
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn environment_variables_by_scheme() {
        let env = |name: &str| match name {
            "https_proxy" => Some("".to_string()),
            "HTTPS_PROXY" => Some("http://tls-proxy:1".to_string()),
            "http_proxy" => Some("http://plain-proxy:2".to_string()),
            "NO_PROXY" => Some("internal".to_string()),
            _ => None,
        };
        assert_eq!(
            proxy_from_environment(true, &env),
            Some(("HTTPS_PROXY", "http://tls-proxy:1".to_string()))
        );
        assert_eq!(
            proxy_from_environment(false, &env),
            Some(("http_proxy", "http://plain-proxy:2".to_string()))
        );
        assert_eq!(no_proxy_from_environment(&env).as_deref(), Some("internal"));
        assert_eq!(proxy_from_environment(true, &|_| None), None);
    }
}
