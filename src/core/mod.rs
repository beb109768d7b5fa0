//! The one generic path every gateway RPC takes, whatever protocol brought it:
//! validate and map the request by its declared route, check the caller may use
//! the app it names, call the platform within `min(caller deadline, platform
//! budget)` (fanning a long list out), fall back to the last good answer when
//! the platform's is degraded, and decode the answer into the RPC's output type.
//!
//! Protocol adapters (`api/`) authenticate the caller and read its deadline
//! from their own headers, then call [`Core::execute`]; everything after that
//! is written once, here.

mod degraded;
mod fan_out;

use std::time::Duration;

use prost_reflect::DynamicMessage;
use tokio::time::Instant;

use self::degraded::LastGoodAnswers;
use crate::{
    auth::RegisteredCaller,
    errors::GatewayError,
    plan::{self, Route},
    platform::PlatformRegistry,
    proto::ErrorReason,
    telemetry::{Admit, LogLimiter},
};

/// When a call must be answered: the caller's own timeout, counted from the
/// moment the call arrived.
#[derive(Debug, Clone, Copy)]
pub struct CallDeadline {
    pub received_at: Instant,
    /// `None`: the caller set none; the platform's budget alone bounds the call.
    pub caller_timeout: Option<Duration>,
}

impl CallDeadline {
    /// How long the call may take against a platform answering within `budget`.
    /// A little is kept back from the caller's own timeout, so that the caller
    /// receives gamegate's DEADLINE_EXCEEDED with its details rather than a
    /// bare cancellation.
    pub fn effective(&self, budget: Duration) -> Duration {
        match self.caller_timeout {
            Some(timeout) => budget.min(timeout.saturating_sub(deadline_margin(timeout))),
            None => budget,
        }
    }
}

/// A twentieth of the caller's timeout, at most 20 ms.
fn deadline_margin(timeout: Duration) -> Duration {
    (timeout / 20).min(Duration::from_millis(20))
}

pub struct Core {
    platforms: PlatformRegistry,
    last_good_answers: LastGoodAnswers,
    /// Without configured callers: whether an issued session key is answered
    /// (`[qq_minigame] return_session_keys`).
    session_keys_without_callers: bool,
}

impl Core {
    pub fn new(platforms: PlatformRegistry) -> Self {
        Core {
            platforms,
            last_good_answers: LastGoodAnswers::default(),
            session_keys_without_callers: false,
        }
    }

    /// Answers issued session keys when no callers are configured.
    pub fn returning_session_keys_without_callers(mut self, returning: bool) -> Self {
        self.session_keys_without_callers = returning;
        self
    }

    /// Whether `caller` receives the session keys a login issues: its own
    /// `receive_session_keys`, or without callers the platform's setting.
    fn receives_session_keys(&self, caller: Option<&RegisteredCaller>) -> bool {
        caller.map_or(self.session_keys_without_callers, |c| {
            c.receive_session_keys
        })
    }

    /// Serves one call of `route` by `caller` (`None`: callers are not
    /// configured), within `deadline`. A write's failure after its request
    /// may have reached the platform is an unknown outcome
    /// ([`GatewayError::of_write`]), whichever layer found it.
    pub async fn execute(
        &self,
        route: &Route,
        caller: Option<&RegisteredCaller>,
        message: &DynamicMessage,
        deadline: CallDeadline,
    ) -> Result<DynamicMessage, GatewayError> {
        let outcome = self.serve(route, caller, message, deadline).await;
        match outcome {
            Err(error) if !route.idempotent => Err(error.of_write(&route.path)),
            outcome => outcome,
        }
    }

    async fn serve(
        &self,
        route: &Route,
        caller: Option<&RegisteredCaller>,
        message: &DynamicMessage,
        deadline: CallDeadline,
    ) -> Result<DynamicMessage, GatewayError> {
        let request = plan::build_request(route, message)?;
        if let Some(caller) = caller.filter(|c| !c.may_use(&request.app_id)) {
            return Err(GatewayError::AppNotAllowed {
                caller: caller.name.clone(),
                app_id: request.app_id.clone(),
            });
        }
        let platform = self.platforms.get(route.platform)?;
        let effective = deadline.effective(platform.budget());
        let until = deadline.received_at + effective;
        let answer =
            tokio::time::timeout_at(until, fan_out::call(platform, route, &request, until))
                .await
                .unwrap_or_else(|_| {
                    Err(GatewayError::Timeout {
                        platform: route.platform,
                        endpoint: route.path.clone(),
                        budget: effective,
                        transport: None,
                    })
                })
                .map_err(|error| match error {
                    // Whichever timer fired, the call had `effective` in all.
                    GatewayError::Timeout {
                        platform,
                        endpoint,
                        transport,
                        ..
                    } => GatewayError::Timeout {
                        platform,
                        endpoint,
                        budget: effective,
                        transport,
                    },
                    other => other,
                })?;
        let (answer, served_from_cache) = self.last_good_answers.serve(route, &request, answer);
        let mut message = plan::decode_response(&route.response, &answer).map_err(|detail| {
            GatewayError::Malformed {
                platform: route.platform,
                endpoint: route.path.clone(),
                detail,
                transport: None,
            }
        })?;
        if let (true, Some(field)) = (served_from_cache, &route.served_from_cache) {
            message.set_field(field, prost_reflect::Value::Bool(true));
        }
        // A session key the platform issued stays in gamegate's custody (the
        // platform client kept it) unless this caller may receive it.
        if let Some(issued) = &route.issued_session
            && !self.receives_session_keys(caller)
        {
            message.clear_field(&issued.field);
        }
        Ok(message)
    }
}

/// The failure lines of [`record`], per reason: a burst of five, then one a
/// second, each with the count of those left out before it. 2,000 wrong tokens
/// a second write a line a second, and do not hide another reason's failures.
/// Keyed by the reason, a fixed set, never by what the caller sent.
static FAILURE_LINES: LogLimiter<ErrorReason> = LogLimiter::new(5, Duration::from_secs(1));

/// Records the outcome of one call, whatever protocol carried it and whether
/// it reached [`Core::execute`] (an unauthenticated call does not).
pub fn record(route: &Route, outcome: &Result<DynamicMessage, GatewayError>) {
    // A call that was answered has its access line (`api::access`); only
    // failures are described here.
    match outcome {
        Ok(_) => {}
        Err(error) => {
            let reason = error.reason().info_reason();
            match error {
                // The caller's own mistakes, and a repeat of a write still
                // running: nothing an operator acts on.
                GatewayError::InvalidRequest { .. }
                | GatewayError::IdempotencyKeyInvalid { .. }
                | GatewayError::IdempotencyKeyReused { .. }
                | GatewayError::IdempotencyKeyInUse => {
                    tracing::debug!(rpc = %route.grpc_path, reason, %error, "rpc refused")
                }
                _ => {
                    let admit = FAILURE_LINES.admit(error.reason());
                    if admit != Admit::Suppress {
                        // A transport failure's class and the platform host
                        // (absent fields for every other failure).
                        let transport = error.transport_cause();
                        tracing::warn!(
                            rpc = %route.grpc_path,
                            endpoint = %route.path,
                            reason,
                            cause = transport.map(|(cause, _)| cause.as_str()),
                            host = transport.map(|(_, host)| host),
                            %error,
                            suppressed = admit.suppressed(),
                            "rpc failed"
                        )
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_deadline_keeps_a_margin_of_the_callers_and_never_exceeds_the_budget() {
        let at = |caller_timeout| CallDeadline {
            received_at: Instant::now(),
            caller_timeout,
        };
        let budget = Duration::from_millis(3100);
        assert_eq!(at(None).effective(budget), budget);
        assert_eq!(
            at(Some(Duration::from_millis(300))).effective(budget),
            Duration::from_millis(285)
        );
        assert_eq!(
            at(Some(Duration::from_secs(10))).effective(budget),
            budget,
            "the platform's budget bounds a generous caller"
        );
        assert_eq!(
            at(Some(Duration::from_secs(1))).effective(budget),
            Duration::from_millis(980)
        );
    }
}
