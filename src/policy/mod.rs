//! How hard gamegate tries, and how much it lets one caller or platform cost:
//! today the retries of reads (backoff, attempts, a retry budget). Each policy
//! is a mechanism with no knowledge of platforms; the platform registry gives
//! each platform its own instance, so one sick platform never spends another's
//! budget. Rate limits, circuit breakers and memory budgets belong here too.

mod retry;

pub use self::retry::RetryPolicy;
