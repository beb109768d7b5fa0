//! What operators see: logs today (`GAMEGATE_LOG` filter, default `info`);
//! metrics and traces join here.

use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter (`tracing` directives).
pub const LOG_FILTER_VARIABLE: &str = "GAMEGATE_LOG";

/// Installs the process's log subscriber.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env(LOG_FILTER_VARIABLE).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
}
