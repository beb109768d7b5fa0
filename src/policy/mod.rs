//! How hard gamegate tries, and how much it lets one caller or platform cost:
//! today the retries of reads (backoff, attempts, a retry budget). Each policy
//! is a mechanism with no knowledge of platforms; the platform registry gives
//! each platform its own instance, so one sick platform never spends another's
//! budget: rate limits towards the platform ([`RateLimits`]) and a circuit
//! breaker that fails calls fast while the platform fails ([`CircuitBreaker`]).

mod breaker;
mod rate;
mod retry;

pub use self::{
    breaker::{Admission, CircuitBreaker, counts_against_platform},
    rate::{FleetSize, RateLimits},
    retry::RetryPolicy,
};
