//! How gamegate protects each platform from its callers, and itself from a
//! failing platform: a platform section's `[<platform>.rate_limits]` (token
//! buckets towards the platform, before the call) and `[<platform>.circuit]`
//! (fail fast while most recent calls fail). The mechanisms are in
//! `policy::rate` and `policy::breaker`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// One token bucket: `rate_per_s` calls a second on average, bursts of up to
/// `burst` calls. With a fleet store each replica takes its share (both
/// divided by the number of live replicas).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub rate_per_s: f64,
    pub burst: u32,
}

/// `[<platform>.rate_limits]`: none by default. Every bucket that applies to
/// a call must have room for it, or the call is refused before the platform
/// is called (`GATEWAY_RATE_LIMITED`, with the time a call will be let
/// through).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// One bucket for every call to the platform, whatever the app.
    pub platform: Option<RateSpec>,
    /// One bucket per app, each with this rate (the platforms' frequency
    /// limits are per app).
    pub per_app: Option<RateSpec>,
    /// Upstream path (as declared, e.g. `/relation/qqfriends_detail`) ->
    /// one bucket per app and path.
    #[serde(default)]
    pub per_path: BTreeMap<String, RateSpec>,
}

impl RateLimitsConfig {
    pub fn is_empty(&self) -> bool {
        self.platform.is_none() && self.per_app.is_none() && self.per_path.is_empty()
    }

    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let key = |what: &str| format!("{section}.rate_limits.{what}");
        if let Some(spec) = &self.platform {
            spec.validate(&key("platform"))?;
        }
        if let Some(spec) = &self.per_app {
            spec.validate(&key("per_app"))?;
        }
        for (path, spec) in &self.per_path {
            let at = key(&format!("per_path.\"{path}\""));
            if !path.starts_with('/') || path.contains(['?', ' ']) {
                return Err(ConfigError::invalid(
                    at,
                    "must be an upstream path as declared, such as /relation/qqfriends_detail",
                ));
            }
            spec.validate(&at)?;
        }
        Ok(())
    }
}

impl RateSpec {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0 && self.rate_per_s <= 1e6) {
            return Err(ConfigError::invalid(
                format!("{key}.rate_per_s"),
                format!(
                    "is {}; it must be above 0 and at most 1000000",
                    self.rate_per_s
                ),
            ));
        }
        if !(1..=1_000_000).contains(&self.burst) {
            return Err(ConfigError::invalid(
                format!("{key}.burst"),
                format!("is {}; it must be from 1 to 1000000", self.burst),
            ));
        }
        Ok(())
    }
}

/// `[<platform>.circuit]`: on by default. When at least `min_calls` calls
/// ended in the last `window_ms` and `failure_ratio` of them failed with a
/// transport error, a timeout or an HTTP 5xx, calls fail fast for `open_ms`
/// (`UPSTREAM_CIRCUIT_OPEN`); then `probes` calls are let through, and the
/// circuit closes when they all succeed, or opens again (for twice as long,
/// up to `max_open_ms`) when one fails. Envoy's outlier detection, per
/// platform.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitConfig {
    pub enabled: bool,
    pub window_ms: u64,
    pub min_calls: u32,
    pub failure_ratio: f64,
    pub open_ms: u64,
    pub max_open_ms: u64,
    pub probes: u32,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            enabled: true,
            window_ms: 10_000,
            min_calls: 20,
            failure_ratio: 0.5,
            open_ms: 5_000,
            max_open_ms: 60_000,
            probes: 3,
        }
    }
}

impl CircuitConfig {
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let key = |what: &str| format!("{section}.circuit.{what}");
        let range = |what: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    key(what),
                    format!(
                        "is {value}; it must be from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        range("window_ms", self.window_ms, 1_000..=600_000)?;
        range("min_calls", u64::from(self.min_calls), 1..=100_000)?;
        range("open_ms", self.open_ms, 10..=600_000)?;
        range("max_open_ms", self.max_open_ms, self.open_ms..=3_600_000)?;
        range("probes", u64::from(self.probes), 1..=1_000)?;
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(ConfigError::invalid(
                key("failure_ratio"),
                format!(
                    "is {}; it must be above 0 and at most 1",
                    self.failure_ratio
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rates_and_circuits_are_refused_with_their_keys() {
        let limits = RateLimitsConfig {
            per_app: Some(RateSpec {
                rate_per_s: 0.0,
                burst: 5,
            }),
            ..RateLimitsConfig::default()
        };
        let error = limits.validate("msdk").unwrap_err().to_string();
        assert!(
            error.contains("msdk.rate_limits.per_app.rate_per_s"),
            "{error}"
        );
        let limits = RateLimitsConfig {
            per_path: [(
                "relation/qqfriends_detail".to_string(),
                RateSpec {
                    rate_per_s: 5.0,
                    burst: 5,
                },
            )]
            .into(),
            ..RateLimitsConfig::default()
        };
        let error = limits.validate("msdk").unwrap_err().to_string();
        assert!(error.contains("per_path"), "{error}");
        let circuit = CircuitConfig {
            failure_ratio: 1.5,
            ..CircuitConfig::default()
        };
        let error = circuit.validate("qq_openapi").unwrap_err().to_string();
        assert!(
            error.contains("qq_openapi.circuit.failure_ratio"),
            "{error}"
        );
        assert!(CircuitConfig::default().validate("msdk").is_ok());
    }
}
