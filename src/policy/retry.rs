//! Retries of idempotent calls: only failures the disposition table calls
//! transient, with jittered exponential backoff, never past the call's deadline,
//! and within a retry budget (tower's `TpsBudget`), so that a sick platform is
//! not sent several times its normal traffic.

use std::{future::Future, time::Duration};

use rand::Rng;
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::errors::GatewayError;

/// Attempts of an idempotent call (the first one included).
const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(50);

pub struct RetryPolicy {
    /// Retries may add at most 20% to the calls of the last 10 s (plus 5 per
    /// second).
    budget: TpsBudget,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            budget: TpsBudget::new(Duration::from_secs(10), 5, 0.2),
        }
    }
}

impl RetryPolicy {
    /// Runs `attempt`, and again after a transient failure when `idempotent`,
    /// while attempts, the deadline and the budget allow.
    pub async fn run<T, F, Fut>(
        &self,
        idempotent: bool,
        deadline: Instant,
        endpoint: &str,
        mut attempt: F,
    ) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        self.budget.deposit();
        let mut attempts = 1;
        loop {
            let error = match attempt().await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if !idempotent || attempts >= MAX_ATTEMPTS || !error.is_transient() {
                return Err(error);
            }
            // A pooled connection the platform had closed says nothing about
            // the platform: the read goes again at once on a new one (as an
            // attempt, within the budget).
            let jittered = if error.is_stale_connection() {
                Duration::ZERO
            } else {
                let backoff = BACKOFF_BASE * 2u32.pow(attempts - 1);
                backoff.mul_f64(rand::rng().random_range(0.5..1.5))
            };
            if Instant::now() + jittered >= deadline || !self.budget.withdraw() {
                return Err(error);
            }
            if jittered.is_zero() {
                tracing::debug!(
                    endpoint,
                    "a pooled connection was closed; sending on a new one"
                );
            } else {
                tracing::info!(
                    endpoint,
                    attempt = attempts,
                    reason = error.reason().info_reason(),
                    "transient upstream failure; retrying a read"
                );
                tokio::time::sleep(jittered).await;
            }
            attempts += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn busy() -> GatewayError {
        GatewayError::HttpStatus {
            platform: crate::proto::Platform::Msdk,
            endpoint: "/relation/qqfriends_detail".into(),
            status: 503,
            retry_after: None,
        }
    }

    async fn attempts_of(idempotent: bool, error: fn() -> GatewayError) -> u32 {
        attempts_within(Duration::from_secs(5), idempotent, error).await
    }

    async fn attempts_within(
        budget: Duration,
        idempotent: bool,
        error: fn() -> GatewayError,
    ) -> u32 {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let deadline = Instant::now() + budget;
        let _ = policy
            .run(idempotent, deadline, "/x", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(error())
            })
            .await;
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_of_reads_are_retried_and_nothing_else_is() {
        assert_eq!(attempts_of(true, busy).await, MAX_ATTEMPTS);
        assert_eq!(attempts_of(false, busy).await, 1, "writes never");
        let permanent = || GatewayError::HttpStatus {
            platform: crate::proto::Platform::Msdk,
            endpoint: "/x".into(),
            status: 404,
            retry_after: None,
        };
        assert_eq!(attempts_of(true, permanent).await, 1, "not transient");
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_would_end_past_the_deadline() {
        let attempts = attempts_within(Duration::from_millis(20), true, busy).await;
        assert_eq!(attempts, 1);
    }
}
