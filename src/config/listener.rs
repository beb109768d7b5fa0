//! The `[listener]` section: what clients, hostile ones included, may hold of
//! the gRPC listener. Every limit has a default fit for production, and
//! `validate` refuses values that would turn a limit off or cut legitimate
//! calls short.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Connections held at once; past it a new connection is accepted and
    /// closed at once, so that its client fails fast (and tries another
    /// replica) instead of waiting in the kernel's backlog.
    pub max_connections: usize,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`: streams one connection may have
    /// open; h2 refuses the ones past it (`REFUSED_STREAM`, which clients
    /// retry), and well-behaved clients queue instead of sending them.
    pub max_concurrent_streams: u32,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`, in bytes: larger request headers are
    /// refused.
    pub max_header_list_size: u32,
    /// A new connection that has not sent the HTTP/2 client preface (the magic
    /// and its SETTINGS frame), or on HTTP/1.1 its first request's head,
    /// within this time is closed.
    pub handshake_timeout_ms: u64,
    /// A connection without an open stream for this long is closed; a call
    /// waiting on a platform keeps its stream, and so its connection, open.
    pub idle_timeout_ms: u64,
    /// gamegate pings a connection after this long without a frame from it…
    pub keepalive_interval_ms: u64,
    /// …and closes it when the ping is not acknowledged within this time:
    /// dead peers and peers that stopped reading lose their streams.
    pub keepalive_timeout_ms: u64,
    /// A request body that sends no frame for this long fails its call, so
    /// that a stream opened without a body does not hold its slot.
    pub request_body_timeout_ms: u64,
    /// The longest one call may take from its headers to its answer; at least
    /// the longest platform budget plus a second, so that it only ever ends
    /// calls that gamegate's own deadlines (which answer with
    /// DEADLINE_EXCEEDED and details) could not.
    pub request_timeout_ms: u64,
    /// The origins (`https://ops.example.com`) whose browser pages may call
    /// gamegate by gRPC-Web or Connect: CORS preflights are answered for them
    /// and their answers carry the CORS headers. Empty (the default): no CORS
    /// header at all. `"*"` allows every origin, and only alone.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 10_000,
            max_concurrent_streams: 256,
            max_header_list_size: 16 * 1024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            keepalive_interval_ms: 60_000,
            keepalive_timeout_ms: 20_000,
            request_body_timeout_ms: 10_000,
            request_timeout_ms: 70_000,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// What a call needs beyond its platform budget: reading the request,
/// writing the answer.
const REQUEST_TIMEOUT_MARGIN_MS: u64 = 1_000;

impl ListenerLimits {
    /// `longest_budget_ms`: the longest budget of the configured platforms.
    pub(super) fn validate(&self, longest_budget_ms: u64) -> Result<(), ConfigError> {
        let range = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    format!("listener.{name}"),
                    format!("is {value}; it must be from {min} to {max}"),
                ))
            }
        };
        range("max_connections", self.max_connections as u64, 1, 1_000_000)?;
        range(
            "max_concurrent_streams",
            self.max_concurrent_streams.into(),
            1,
            65_536,
        )?;
        // gRPC metadata (authorization, grpc-timeout, tracing) needs a few KiB.
        range(
            "max_header_list_size",
            self.max_header_list_size.into(),
            4_096,
            1 << 20,
        )?;
        const HOUR_MS: u64 = 3_600_000;
        range(
            "handshake_timeout_ms",
            self.handshake_timeout_ms,
            1,
            HOUR_MS,
        )?;
        range("idle_timeout_ms", self.idle_timeout_ms, 1, 24 * HOUR_MS)?;
        range(
            "keepalive_interval_ms",
            self.keepalive_interval_ms,
            1,
            24 * HOUR_MS,
        )?;
        range(
            "keepalive_timeout_ms",
            self.keepalive_timeout_ms,
            1,
            HOUR_MS,
        )?;
        range(
            "request_body_timeout_ms",
            self.request_body_timeout_ms,
            1,
            HOUR_MS,
        )?;
        let shortest_request = longest_budget_ms + REQUEST_TIMEOUT_MARGIN_MS;
        if self.request_timeout_ms < shortest_request {
            return Err(ConfigError::invalid(
                "listener.request_timeout_ms",
                format!(
                    "is {}; it must be at least the longest platform budget plus \
                     {REQUEST_TIMEOUT_MARGIN_MS} ms ({shortest_request})",
                    self.request_timeout_ms
                ),
            ));
        }
        range("request_timeout_ms", self.request_timeout_ms, 1, HOUR_MS)?;
        self.validate_cors()
    }

    /// Exact origins (a scheme, a host, maybe a port: what a browser sends in
    /// `Origin`), or `*` alone: a pattern or a path would never match, and
    /// `*` beside origins would silently allow them all.
    fn validate_cors(&self) -> Result<(), ConfigError> {
        let origins = &self.cors_allowed_origins;
        let invalid = |problem: String| {
            Err(ConfigError::invalid(
                "listener.cors_allowed_origins",
                problem,
            ))
        };
        if origins.iter().any(|origin| origin == "*") {
            return if origins.len() == 1 {
                Ok(())
            } else {
                invalid(
                    "holds \"*\" beside other origins; \"*\" allows every origin and goes alone"
                        .into(),
                )
            };
        }
        for origin in origins {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let exact = host.is_some_and(|host| {
                !host.is_empty()
                    && host.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    })
            });
            if !exact {
                return invalid(format!(
                    "holds {:?}; an origin is a scheme and a host with an optional port, \
                     as in \"https://ops.example.com\" (no path, no pattern, no trailing slash)",
                    origin.chars().take(100).collect::<String>()
                ));
            }
        }
        Ok(())
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms)
    }

    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    pub fn request_body_timeout(&self) -> Duration {
        Duration::from_millis(self.request_body_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_with_the_longest_budget() {
        ListenerLimits::default().validate(60_000).unwrap();
    }

    #[test]
    fn a_request_timeout_shorter_than_a_budget_is_refused() {
        let limits = ListenerLimits {
            request_timeout_ms: 5_000,
            ..ListenerLimits::default()
        };
        limits.validate(3_100).unwrap();
        let error = limits.validate(5_000).unwrap_err().to_string();
        assert!(error.contains("listener.request_timeout_ms"), "{error}");
    }

    #[test]
    fn cors_origins_are_exact_or_a_lone_star() {
        let with = |origins: &[&str]| ListenerLimits {
            cors_allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..ListenerLimits::default()
        };
        for good in [
            &[][..],
            &["*"],
            &["https://ops.example.com", "http://127.0.0.1:8080"],
        ] {
            with(good).validate(0).unwrap();
        }
        for bad in [
            &["*", "https://ops.example.com"][..],
            &["ops.example.com"],
            &["https://ops.example.com/"],
            &["https://*.example.com"],
            &["https://"],
        ] {
            let error = with(bad).validate(0).unwrap_err().to_string();
            assert!(error.contains("listener.cors_allowed_origins"), "{error}");
        }
    }

    #[test]
    fn a_zero_limit_is_refused() {
        for limits in [
            ListenerLimits {
                max_connections: 0,
                ..ListenerLimits::default()
            },
            ListenerLimits {
                max_concurrent_streams: 0,
                ..ListenerLimits::default()
            },
            ListenerLimits {
                idle_timeout_ms: 0,
                ..ListenerLimits::default()
            },
            ListenerLimits {
                handshake_timeout_ms: 0,
                ..ListenerLimits::default()
            },
        ] {
            assert!(limits.validate(0).is_err(), "{limits:?}");
        }
    }

    #[test]
    fn a_listener_section_sets_some_limits_and_keeps_the_defaults_of_the_others() {
        use figment::providers::{Format, Toml};
        let config: super::super::Config = figment::Figment::from(Toml::string(
            "[listener]\nmax_connections = 50\nidle_timeout_ms = 2000\n",
        ))
        .extract()
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.listener.max_connections, 50);
        assert_eq!(config.listener.idle_timeout(), Duration::from_secs(2));
        assert_eq!(config.listener.max_concurrent_streams, 256);
    }
}
