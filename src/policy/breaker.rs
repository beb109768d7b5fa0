//! A circuit breaker per platform, after Envoy's outlier detection: while
//! most recent calls fail with transport errors, timeouts or HTTP 5xx, new
//! calls fail at once (`UPSTREAM_CIRCUIT_OPEN`, with the time of the next
//! probe) instead of each waiting for its deadline against a platform that is
//! down; after `open_ms` a few probe calls go through, and the circuit closes
//! when they all succeed, or opens again for twice as long (up to
//! `max_open_ms`) when one fails.
//!
//! Written here rather than taken from a crate: the state is a handful of
//! counters under one lock taken twice per call, and what the crates offer
//! (`failsafe`: consecutive failures or an EWMA, no probe budget; tower
//! layers: a service per platform, not a policy the platform registry wraps
//! around its one path) fits this model less well than these 150 lines.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{config::CircuitConfig, errors::GatewayError, metrics, proto::Platform};

/// The window is counted in this many slices, so that old outcomes leave it
/// a slice at a time.
const SLICES: usize = 10;

/// What the breaker let through: a call of the closed circuit, or a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Closed,
    Probe,
}

pub struct CircuitBreaker {
    platform: Platform,
    config: CircuitConfig,
    slice: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Closed {
        /// (calls, failures) per slice, the current one at `current`.
        slices: [(u32, u32); SLICES],
        current: usize,
        /// When the current slice started.
        since: Instant,
        /// How long the next opening lasts.
        open_for: Duration,
    },
    Open {
        until: Instant,
        open_for: Duration,
    },
    HalfOpen {
        in_flight: u32,
        succeeded: u32,
        open_for: Duration,
    },
}

impl State {
    fn closed(open_for: Duration) -> State {
        State::Closed {
            slices: [(0, 0); SLICES],
            current: 0,
            since: Instant::now(),
            open_for,
        }
    }
}

impl CircuitBreaker {
    pub fn new(platform: Platform, config: &CircuitConfig) -> CircuitBreaker {
        let open_for = Duration::from_millis(config.open_ms);
        CircuitBreaker {
            platform,
            config: config.clone(),
            slice: Duration::from_millis(config.window_ms) / SLICES as u32,
            state: Mutex::new(State::closed(open_for)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets a call through, or refuses it while the circuit is open (and
    /// while the probes it let through are out).
    pub fn admit(&self) -> Result<Admission, GatewayError> {
        if !self.config.enabled {
            return Ok(Admission::Closed);
        }
        let mut state = self.lock();
        let now = Instant::now();
        match &mut *state {
            State::Closed { .. } => Ok(Admission::Closed),
            State::Open { until, open_for } => {
                if now < *until {
                    return Err(self.open(*until - now));
                }
                let open_for = *open_for;
                *state = State::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                    open_for,
                };
                drop(state);
                self.changed("half_open");
                Ok(Admission::Probe)
            }
            State::HalfOpen { in_flight, .. } => {
                if *in_flight < self.config.probes {
                    *in_flight += 1;
                    Ok(Admission::Probe)
                } else {
                    // The probes are out; they end within a platform budget.
                    Err(self.open(Duration::from_secs(1)))
                }
            }
        }
    }

    /// The outcome of a call it let through: `failed` when the platform
    /// failed it (see [`counts_against_platform`]).
    pub fn record(&self, admission: Admission, failed: bool) {
        if !self.config.enabled {
            return;
        }
        let mut state = self.lock();
        let now = Instant::now();
        let transition = match (&mut *state, admission) {
            (
                State::Closed {
                    slices,
                    current,
                    since,
                    open_for,
                },
                Admission::Closed,
            ) => {
                // Move to the slice of `now`, emptying the ones passed.
                let passed = (now.duration_since(*since).as_nanos() / self.slice.as_nanos().max(1))
                    .min(SLICES as u128) as usize;
                for _ in 0..passed {
                    *current = (*current + 1) % SLICES;
                    slices[*current] = (0, 0);
                }
                if passed > 0 {
                    *since = now;
                }
                slices[*current].0 += 1;
                slices[*current].1 += u32::from(failed);
                let (calls, failures) = slices.iter().fold((0, 0), |(c, f), (calls, failures)| {
                    (c + calls, f + failures)
                });
                let tripped = calls >= self.config.min_calls
                    && f64::from(failures) >= self.config.failure_ratio * f64::from(calls);
                tripped.then(|| {
                    let open_for = *open_for;
                    (
                        State::Open {
                            until: now + open_for,
                            open_for,
                        },
                        "open",
                    )
                })
            }
            (
                State::HalfOpen {
                    in_flight,
                    succeeded,
                    open_for,
                },
                Admission::Probe,
            ) => {
                *in_flight = in_flight.saturating_sub(1);
                if failed {
                    let open_for =
                        (*open_for * 2).min(Duration::from_millis(self.config.max_open_ms));
                    Some((
                        State::Open {
                            until: now + open_for,
                            open_for,
                        },
                        "open",
                    ))
                } else {
                    *succeeded += 1;
                    (*succeeded >= self.config.probes).then(|| {
                        (
                            State::closed(Duration::from_millis(self.config.open_ms)),
                            "closed",
                        )
                    })
                }
            }
            // A call let through before the state changed: its outcome says
            // nothing about the state now.
            _ => None,
        };
        if let Some((next, name)) = transition {
            *state = next;
            drop(state);
            self.changed(name);
        }
    }

    fn open(&self, retry_after: Duration) -> GatewayError {
        GatewayError::CircuitOpen {
            platform: self.platform,
            retry_after: retry_after.max(Duration::from_millis(1)),
        }
    }

    /// One log line and the state gauge per change of state (not per call).
    fn changed(&self, state: &'static str) {
        let platform = crate::errors::platform_name(self.platform);
        metrics::global().circuit_state(platform, state);
        match state {
            "open" => tracing::warn!(
                platform,
                "most recent calls to the platform failed; failing calls fast until probes succeed"
            ),
            _ => tracing::info!(platform, state, "the platform's circuit changed state"),
        }
    }
}

/// Whether `error` is evidence that the platform is failing: no answer, a
/// timeout, a connection lost, an HTTP 5xx. The platform's own codes (it
/// answered), the caller's mistakes and gamegate's own refusals are not.
pub fn counts_against_platform(error: &GatewayError) -> bool {
    match error {
        GatewayError::Unreachable { .. }
        | GatewayError::Timeout { .. }
        | GatewayError::OutcomeUnknown { .. } => true,
        GatewayError::HttpStatus { status, .. } => *status >= 500,
        GatewayError::Malformed { transport, .. } => transport.is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ErrorReason;

    fn breaker(open_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(
            Platform::Msdk,
            &CircuitConfig {
                min_calls: 4,
                failure_ratio: 0.5,
                open_ms,
                max_open_ms: 4 * open_ms,
                probes: 2,
                ..CircuitConfig::default()
            },
        )
    }

    fn call(breaker: &CircuitBreaker, failed: bool) -> Result<(), GatewayError> {
        let admission = breaker.admit()?;
        breaker.record(admission, failed);
        Ok(())
    }

    #[test]
    fn it_opens_on_failures_fails_fast_then_probes_and_closes() {
        let breaker = breaker(100);
        for failed in [false, true, false] {
            call(&breaker, failed).unwrap();
        }
        call(&breaker, true).expect("the fourth call goes: 2 of 4 failed once it ends");
        let refused = call(&breaker, false).unwrap_err();
        assert_eq!(refused.reason(), ErrorReason::UpstreamCircuitOpen);
        let GatewayError::CircuitOpen { retry_after, .. } = refused else {
            panic!()
        };
        assert!(retry_after <= Duration::from_millis(100) && retry_after > Duration::ZERO);

        std::thread::sleep(Duration::from_millis(110));
        let first = breaker.admit().expect("a probe");
        let second = breaker.admit().expect("another probe");
        assert_eq!((first, second), (Admission::Probe, Admission::Probe));
        assert!(breaker.admit().is_err(), "no more than the probes");
        breaker.record(first, false);
        breaker.record(second, false);
        assert_eq!(breaker.admit().unwrap(), Admission::Closed, "closed again");
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_longer() {
        let breaker = breaker(50);
        for _ in 0..4 {
            call(&breaker, true).unwrap();
        }
        assert!(breaker.admit().is_err());
        std::thread::sleep(Duration::from_millis(60));
        let probe = breaker.admit().unwrap();
        breaker.record(probe, true);
        let GatewayError::CircuitOpen { retry_after, .. } = breaker.admit().unwrap_err() else {
            panic!()
        };
        assert!(retry_after > Duration::from_millis(60), "{retry_after:?}");
    }

    #[test]
    fn the_platforms_answers_and_few_calls_never_open_it() {
        let breaker = breaker(100);
        for _ in 0..3 {
            call(&breaker, true).unwrap();
        }
        assert!(breaker.admit().is_ok(), "fewer than min_calls");
        let disabled = CircuitBreaker::new(
            Platform::Msdk,
            &CircuitConfig {
                enabled: false,
                min_calls: 1,
                ..CircuitConfig::default()
            },
        );
        for _ in 0..10 {
            call(&disabled, true).unwrap();
        }
        assert!(!counts_against_platform(&GatewayError::HttpStatus {
            platform: Platform::Msdk,
            endpoint: "/x".into(),
            status: 404,
            retry_after: None,
        }));
    }
}
