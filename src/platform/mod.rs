//! The platforms behind one interface ([`PlatformClient`]): each signs, sends
//! and reads the envelope of its own API, maps its own codes, and is built from
//! its own configuration section. The [`PlatformRegistry`] holds the configured
//! ones by [`Platform`], each with its answer budget and its own retry policy,
//! so that per-platform policies wrap every platform the same way.

pub mod envelope;
pub mod minigame;
pub mod msdk;
pub mod openapi;
pub mod signing;

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use crate::{
    config::{CircuitConfig, Config, RateLimitsConfig},
    errors::{GatewayError, TransportFailure, platform_name},
    metrics,
    plan::{Route, UpstreamRequest},
    policy::{CircuitBreaker, FleetSize, RateLimits, RetryPolicy, counts_against_platform},
    proto::Platform,
    state::Store,
    upstream::{self, OutgoingBody, Upstream, UpstreamAnswer, UpstreamCall, UpstreamHttp},
};

/// What one attempt got back, for the metrics.
fn attempt_outcome(result: &Result<Map<String, Json>, GatewayError>) -> metrics::AttemptOutcome {
    use metrics::AttemptOutcome;
    let error = match result {
        Ok(_) => return AttemptOutcome::OK,
        Err(error) => error,
    };
    let none = AttemptOutcome {
        http_status: "none",
        platform_code_class: "none",
        cause: "none",
    };
    // A transport failure names its cause (a cut answer is `closed_early`,
    // not malformed); a malformed answer without one is valid HTTP whose body
    // is not the documented JSON.
    if let Some((cause, _host)) = error.transport_cause() {
        return AttemptOutcome {
            cause: cause.as_str(),
            ..none
        };
    }
    match error {
        // The platform answered, with a code other than its success.
        GatewayError::Upstream(_) => AttemptOutcome {
            platform_code_class: error.reason().info_reason(),
            ..AttemptOutcome::OK
        },
        GatewayError::HttpStatus { status, .. } => AttemptOutcome {
            http_status: metrics::http_status_label(*status),
            ..none
        },
        GatewayError::Malformed { .. } => AttemptOutcome {
            cause: upstream::Cause::MalformedAnswer.as_str(),
            ..none
        },
        _ => AttemptOutcome {
            cause: "other",
            ..none
        },
    }
}

/// One platform's client: a declared route's request in, the platform's
/// successful answer (its JSON object) or its error out.
///
/// `async_trait` because the registry holds clients as `dyn PlatformClient`:
/// the boxed future is the one allocation a call through it costs.
#[async_trait]
pub trait PlatformClient: Send + Sync {
    async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError>;
}

/// A configured platform: its client, the longest it may take to answer, and
/// the policies that wrap its calls.
pub struct ConfiguredPlatform {
    client: Box<dyn PlatformClient>,
    budget: Duration,
    retry: RetryPolicy,
    /// Token buckets towards the platform; `None` until [`Self::protect`].
    rate: Option<RateLimits>,
    /// Fails calls fast while the platform fails; `None` until
    /// [`Self::protect`].
    breaker: Option<CircuitBreaker>,
}

impl ConfiguredPlatform {
    pub fn new(client: Box<dyn PlatformClient>, budget: Duration) -> Self {
        ConfiguredPlatform {
            client,
            budget,
            retry: RetryPolicy::default(),
            rate: None,
            breaker: None,
        }
    }

    /// With `platform`'s rate limits and circuit breaker from its section
    /// (`apps`: the configured app ids; `fleet`: the replicas that share the
    /// rates).
    pub fn protect<'a>(
        mut self,
        platform: Platform,
        rate_limits: &RateLimitsConfig,
        circuit: &CircuitConfig,
        apps: impl IntoIterator<Item = &'a String>,
        fleet: FleetSize,
    ) -> Self {
        self.rate = Some(RateLimits::new(platform, rate_limits, apps, fleet));
        self.breaker = Some(CircuitBreaker::new(platform, circuit));
        self
    }

    /// The platform's own answer budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Calls the platform; reads that failed transiently are retried within
    /// the deadline and this platform's retry budget.
    pub async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        // Refused here, nothing reaches the platform (nor its metrics).
        if let Some(rate) = &self.rate {
            rate.admit(&request.app_id, &route.path)?;
        }
        let admission = match &self.breaker {
            Some(breaker) => Some(breaker.admit()?),
            None => None,
        };
        let endpoint = metrics::global().endpoint(platform_name(route.platform), &route.path);
        endpoint.requested();
        let mut attempts = 0u32;
        let outcome = self
            .retry
            .run(route.idempotent, deadline, &route.path, || {
                let retry = attempts > 0;
                attempts += 1;
                let started = Instant::now();
                let attempt = self.client.call(route, request, deadline);
                let endpoint = &endpoint;
                async move {
                    let result = attempt.await;
                    endpoint.attempted(retry, started.elapsed(), attempt_outcome(&result));
                    result
                }
            })
            .await;
        if let (Some(breaker), Some(admission)) = (&self.breaker, admission) {
            let failed = outcome.as_ref().err().is_some_and(counts_against_platform);
            breaker.record(admission, failed);
        }
        if let (Some(rate), Err(error)) = (&self.rate, &outcome)
            && error.reason() == crate::proto::ErrorReason::UpstreamRateLimited
        {
            // The platform's frequency limit: hold the app back for as long
            // as the platform implied (its Retry-After, else the reason's).
            rate.hold_back(
                &request.app_id,
                error.retry_after().unwrap_or(Duration::from_secs(1)),
            );
        }
        outcome
    }
}

/// Every configured platform, by [`Platform`].
#[derive(Default)]
pub struct PlatformRegistry {
    platforms: HashMap<Platform, ConfiguredPlatform>,
}

impl PlatformRegistry {
    /// The platforms of the configuration, each from its own section; app
    /// state (access tokens) lives in `store`.
    pub fn from_config(
        config: &Config,
        http: &UpstreamHttp,
        store: &dyn Store,
    ) -> Result<Self, upstream::InvalidBaseUrl> {
        let mut registry = PlatformRegistry::default();
        let fleet = store.fleet();
        if let Some(section) = &config.qq_minigame {
            let built = minigame::build(section, http, store)?.protect(
                Platform::QqMinigame,
                &section.rate_limits,
                &section.circuit,
                section.apps.keys(),
                fleet.clone(),
            );
            registry.insert(Platform::QqMinigame, built);
        }
        if let Some(section) = &config.qq_openapi {
            let built = openapi::build(section, http)?.protect(
                Platform::QqOpenapi,
                &section.rate_limits,
                &section.circuit,
                section.apps.keys(),
                fleet.clone(),
            );
            registry.insert(Platform::QqOpenapi, built);
        }
        if let Some(section) = &config.msdk {
            let built = msdk::build(section, http)?.protect(
                Platform::Msdk,
                &section.rate_limits,
                &section.circuit,
                section.apps.keys(),
                fleet,
            );
            registry.insert(Platform::Msdk, built);
        }
        Ok(registry)
    }

    pub fn insert(&mut self, platform: Platform, configured: ConfiguredPlatform) {
        self.platforms.insert(platform, configured);
    }

    /// The platform a route calls, or `PLATFORM_NOT_CONFIGURED`.
    pub fn get(&self, platform: Platform) -> Result<&ConfiguredPlatform, GatewayError> {
        self.platforms
            .get(&platform)
            .ok_or(GatewayError::PlatformNotConfigured(platform_name(platform)))
    }
}

/// What gamegate holds for each app of one platform (secrets, token caches),
/// by app id.
pub struct Apps<T> {
    platform: Platform,
    by_id: HashMap<String, T>,
}

impl<T> Apps<T> {
    pub fn new(platform: Platform, apps: impl IntoIterator<Item = (String, T)>) -> Self {
        Apps {
            platform,
            by_id: apps.into_iter().collect(),
        }
    }

    /// The app a request names, or `APP_UNKNOWN`. App ids configured through
    /// environment variables arrive lowercased (`G_100703379` becomes
    /// `g_100703379`), so an exact match is tried first, then one ignoring case.
    pub fn get(&self, app_id: &str) -> Result<&T, GatewayError> {
        self.by_id
            .get(app_id)
            .or_else(|| {
                self.by_id
                    .iter()
                    .find(|(id, _)| id.eq_ignore_ascii_case(app_id))
                    .map(|(_, app)| app)
            })
            .ok_or_else(|| GatewayError::AppUnknown {
                platform: platform_name(self.platform),
                app_id: app_id.to_string(),
            })
    }
}

/// The call of a declared route: its path, method and idempotence, no extra
/// headers.
fn route_call<'a>(
    route: &'a Route,
    target: &'a str,
    body: Option<OutgoingBody>,
    deadline: Instant,
) -> UpstreamCall<'a> {
    UpstreamCall {
        method: route.method,
        target,
        body,
        headers: &[],
        idempotent: route.idempotent,
        deadline,
    }
}

/// Sends `call` to `platform`'s `endpoint`, in the attempt's client span; a
/// transport failure becomes the gateway error that names them (never the
/// target: it holds secrets).
async fn send(
    upstream: &Upstream,
    platform: Platform,
    endpoint: &str,
    call: UpstreamCall<'_>,
) -> Result<UpstreamAnswer, GatewayError> {
    use tracing::Instrument;
    let budget = call.deadline.saturating_duration_since(Instant::now());
    let attempt =
        crate::telemetry::trace::UpstreamAttempt::start(platform, call.method.as_str(), endpoint);
    match upstream.send(call).instrument(attempt.span()).await {
        Ok(answer) => {
            attempt.answered(answer.status);
            Ok(answer)
        }
        Err(error) => {
            let status = error.status();
            let error = transport_error(platform, endpoint, budget, error);
            attempt.failed(status, error.reason().info_reason());
            Err(error)
        }
    }
}

/// A transport failure as the gateway reports it: the cause and the host of
/// the failure stay with the error (an `Unreachable` keeps the upstream error
/// itself); an HTTP error status has neither.
pub fn transport_error(
    platform: Platform,
    endpoint: &str,
    budget: Duration,
    error: upstream::Error,
) -> GatewayError {
    let endpoint = endpoint.to_string();
    if let Some(status) = error.status() {
        return GatewayError::HttpStatus {
            platform,
            endpoint,
            status,
            retry_after: error.retry_after(),
        };
    }
    if error.answer_malformed() {
        return GatewayError::Malformed {
            platform,
            endpoint,
            detail: error.to_string(),
            transport: TransportFailure::of(&error),
        };
    }
    if error.is_timeout() {
        return GatewayError::Timeout {
            platform,
            endpoint,
            budget,
            transport: TransportFailure::of(&error),
        };
    }
    GatewayError::Unreachable {
        platform,
        endpoint,
        source: error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_from_the_environment_match_whatever_their_case() {
        let apps = Apps::new(
            Platform::Msdk,
            [("g_100703379".to_string(), 1), ("100703379".to_string(), 2)],
        );
        assert_eq!(apps.get("G_100703379").ok(), Some(&1));
        assert_eq!(apps.get("100703379").ok(), Some(&2));
        assert!(matches!(
            apps.get("999"),
            Err(GatewayError::AppUnknown { .. })
        ));
    }

    #[test]
    fn an_unconfigured_platform_is_reported_as_such() {
        let registry = PlatformRegistry::default();
        assert!(matches!(
            registry.get(Platform::Msdk),
            Err(GatewayError::PlatformNotConfigured("msdk"))
        ));
    }
}
