//! [`LogLimiter`]: repeated log lines of one kind, limited to a burst and then
//! a steady rate, each written line saying how many of its kind were left out
//! since the previous one. A caller who sends 2,000 wrong tokens a second gets
//! a handful of lines, not 2,000; a flood of one kind does not hide another,
//! because every kind has its own allowance.
//!
//! ```
//! use std::time::Duration;
//! use gamegate::telemetry::{Admit, LogLimiter};
//!
//! // A burst of 5 lines per kind, then one a second.
//! static SHED: LogLimiter<&'static str> = LogLimiter::new(5, Duration::from_secs(1));
//!
//! fn shed(kind: &'static str) {
//!     if let Admit::Log { suppressed } = SHED.admit(kind) {
//!         tracing::warn!(kind, suppressed, "load shed");
//!     }
//! }
//! # shed("concurrency");
//! ```
//!
//! [`Admit::suppressed`] is an `Option` for a tracing field that is present
//! only when something was left out (`suppressed = admit.suppressed()`).
//!
//! Keys come from a fixed set (an enum such as `ErrorReason`, a `&'static
//! str`), never from what a caller sends: each key keeps a slot. Memory is
//! bounded all the same: past [`LogLimiter::MAX_KEYS`] keys, new ones share one
//! overflow slot. Counts are reported with the next line of their kind that is
//! written; a flood that stops is reported when its kind next fails.
//!
//! The limit is GCRA (the generic cell rate algorithm, a token bucket without a
//! refill timer) in a dozen lines, hand-written rather than taken from
//! `governor`: what a log line needs is the count of what was refused, which
//! governor does not keep (it answers yes or no), so a per-key counter and its
//! map would be written around it anyway, and governor brings eight crates for
//! the arithmetic that is left. The clock is tokio's, so that tests can pause
//! it.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

/// Whether to write a line, and how many of its kind were left out before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Admit {
    /// Write it; `suppressed` lines of its kind were left out since the last
    /// one written.
    Log { suppressed: u64 },
    /// Leave it out (it is counted).
    Suppress,
}

impl Admit {
    /// The line's `suppressed` field: `None` (no field) when nothing was left
    /// out or the line is not written.
    pub fn suppressed(self) -> Option<u64> {
        match self {
            Admit::Log { suppressed } if suppressed > 0 => Some(suppressed),
            _ => None,
        }
    }
}

/// A per-key allowance of log lines: `burst` at once, then one per `interval`.
#[derive(Debug)]
pub struct LogLimiter<K> {
    burst: u32,
    interval: Duration,
    slots: Mutex<Vec<Slot<K>>>,
}

#[derive(Debug)]
struct Slot<K> {
    /// `None`: the shared slot of the keys past [`LogLimiter::MAX_KEYS`].
    key: Option<K>,
    /// GCRA's theoretical arrival time: a line is allowed while this is at
    /// most `(burst - 1) * interval` ahead of now.
    allowed_at: Instant,
    suppressed: u64,
}

impl<K: Copy + Eq> LogLimiter<K> {
    /// Keys with slots of their own; any further key shares one more slot.
    pub const MAX_KEYS: usize = 64;

    /// `burst` lines of a kind at once (at least 1), then one per `interval`.
    pub const fn new(burst: u32, interval: Duration) -> Self {
        assert!(burst >= 1, "a log limiter lets at least one line through");
        LogLimiter {
            burst,
            interval,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Whether a line of kind `key` may be written now.
    pub fn admit(&self, key: K) -> Admit {
        let now = Instant::now();
        // A panic elsewhere while holding the lock leaves counts, not broken state.
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let found = |slots: &[Slot<K>], key| slots.iter().position(|slot| slot.key == key);
        // Slots are never removed, so the overflow slot exists only once all
        // MAX_KEYS keyed ones do.
        let index = match found(&slots, Some(key)) {
            Some(index) => index,
            None => {
                let slot_key = (slots.len() < Self::MAX_KEYS).then_some(key);
                found(&slots, slot_key).unwrap_or_else(|| {
                    slots.push(Slot {
                        key: slot_key,
                        allowed_at: now,
                        suppressed: 0,
                    });
                    slots.len() - 1
                })
            }
        };
        let slot = &mut slots[index];
        let allowed_at = slot.allowed_at.max(now);
        let slack = self.interval.saturating_mul(self.burst - 1);
        if allowed_at.saturating_duration_since(now) <= slack {
            slot.allowed_at = allowed_at + self.interval;
            Admit::Log {
                suppressed: std::mem::take(&mut slot.suppressed),
            }
        } else {
            slot.suppressed += 1;
            Admit::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(limiter: &LogLimiter<u32>, key: u32, times: usize) -> Vec<Admit> {
        (0..times)
            .map(|_| limiter.admit(key))
            .filter(|admit| *admit != Admit::Suppress)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_line_per_interval_each_counting_what_was_left_out() {
        let limiter = LogLimiter::new(3, Duration::from_secs(1));
        assert_eq!(
            written(&limiter, 7, 2_000),
            vec![Admit::Log { suppressed: 0 }; 3],
            "a burst of three, then nothing within the same instant"
        );
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(limiter.admit(7), Admit::Suppress, "not yet a second");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            limiter.admit(7),
            Admit::Log { suppressed: 1_998 },
            "one second later, one line with the count"
        );
        assert_eq!(limiter.admit(7), Admit::Suppress);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            written(&limiter, 7, 10),
            vec![
                Admit::Log { suppressed: 1 },
                Admit::Log { suppressed: 0 },
                Admit::Log { suppressed: 0 },
            ],
            "a quiet spell refills the burst, not more"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_flood_does_not_hide_another_kind() {
        let limiter = LogLimiter::new(2, Duration::from_secs(1));
        assert_eq!(written(&limiter, 1, 1_000).len(), 2);
        assert_eq!(written(&limiter, 2, 1), vec![Admit::Log { suppressed: 0 }]);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_past_the_limit_share_one_slot() {
        let limiter = LogLimiter::new(1, Duration::from_secs(60));
        for key in 0..10_000 {
            let _ = limiter.admit(key);
        }
        assert_eq!(
            limiter.slots.lock().unwrap().len(),
            LogLimiter::<u32>::MAX_KEYS + 1
        );
        assert_eq!(
            limiter.admit(5),
            Admit::Suppress,
            "a key with its own slot keeps it"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            limiter.admit(123_456),
            Admit::Log {
                suppressed: 10_000 - LogLimiter::<u32>::MAX_KEYS as u64 - 1
            },
            "the overflow slot counts for all its keys"
        );
    }

    #[test]
    fn the_suppressed_field_is_absent_when_nothing_was_left_out() {
        assert_eq!(Admit::Log { suppressed: 0 }.suppressed(), None);
        assert_eq!(Admit::Log { suppressed: 4 }.suppressed(), Some(4));
        assert_eq!(Admit::Suppress.suppressed(), None);
    }
}
