//! Gamegate's own bounds on what callers can make it hold, whatever protocol
//! they call with: calls in flight over all connections, and the largest
//! request each route accepts (its declared limits, under a configured cap).
//! Per-connection bounds (streams, idle and header timeouts) live with the
//! listener in `net`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{config::Limits, errors::GatewayError, plan::Route};

/// The calls in flight over every connection, at most `limit` at once. A call
/// past it is refused at once (never queued), so that a flood costs a bounded
/// amount of memory and a mesh can send the call to another replica.
#[derive(Clone)]
pub struct CallsInFlight {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Calls that held a place and ended, since the start.
    finished: Arc<AtomicU64>,
}

/// Held for as long as a call is in flight: dropping it frees the place.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    finished: Arc<AtomicU64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

impl CallsInFlight {
    pub fn new(limit: usize) -> Self {
        CallsInFlight {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            finished: Arc::default(),
        }
    }

    /// How many calls hold a place now.
    pub fn current(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    /// How many calls have ended (answered, failed or abandoned) since the
    /// start: a drain counts the ones that end while it waits.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// A place for one more call, or GATEWAY_OVERLOADED.
    pub fn enter(&self) -> Result<InFlight, GatewayError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map(|permit| InFlight {
                _permit: permit,
                finished: self.finished.clone(),
            })
            .map_err(|_| GatewayError::Overloaded { limit: self.limit })
    }
}

/// The largest request message `route` accepts: what its declared limits
/// allow, never more than the configured cap.
pub fn max_request_bytes(route: &Route, limits: &Limits) -> usize {
    route.request.max_wire_bytes.min(limits.max_request_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ErrorReason;

    #[test]
    fn calls_past_the_limit_are_refused_until_one_ends() {
        let calls = CallsInFlight::new(2);
        let first = calls.enter().expect("one");
        let _second = calls.enter().expect("two");
        let refused = calls.enter().err().expect("a third is refused");
        assert_eq!(refused.reason(), ErrorReason::GatewayOverloaded);
        drop(first);
        assert!(calls.enter().is_ok(), "a place is free again");
    }
}
