//! The platform clients, one per upstream platform, and the dispatch from a
//! route to its platform, with deadline budgets and bounded retries of reads.

pub mod http;
pub mod minigame;
pub mod msdk;
pub mod msdktea;
pub mod openapi;
pub mod signing;

use std::{collections::HashMap, time::Duration};

use rand::Rng;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::{
    errors::{GatewayError, platform_name},
    mapping::UpstreamRequest,
    proto::Platform,
    routes::Route,
};

pub use self::{
    http::UpstreamHttp, minigame::MiniGameClient, msdk::MsdkClient, openapi::OpenApiClient,
};

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

/// A configured platform client and the longest it may take to answer.
pub struct Configured<C> {
    pub client: C,
    pub budget: Duration,
}

/// Every configured platform.
pub struct Platforms {
    pub minigame: Option<Configured<MiniGameClient>>,
    pub openapi: Option<Configured<OpenApiClient>>,
    pub msdk: Option<Configured<MsdkClient>>,
    /// Retries may add at most 20% to the calls of the last 10 s (plus 5 per
    /// second), so a sick platform is not sent several times its normal traffic.
    retry_budget: TpsBudget,
}

/// Attempts of an idempotent call (the first one included).
const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(50);

impl Platforms {
    pub fn new(
        minigame: Option<Configured<MiniGameClient>>,
        openapi: Option<Configured<OpenApiClient>>,
        msdk: Option<Configured<MsdkClient>>,
    ) -> Self {
        Platforms {
            minigame,
            openapi,
            msdk,
            retry_budget: TpsBudget::new(Duration::from_secs(10), 5, 0.2),
        }
    }

    /// The platform's own answer budget.
    pub fn budget(&self, platform: Platform) -> Result<Duration, GatewayError> {
        let budget = match platform {
            Platform::QqMinigame => self.minigame.as_ref().map(|p| p.budget),
            Platform::QqOpenapi => self.openapi.as_ref().map(|p| p.budget),
            Platform::Msdk => self.msdk.as_ref().map(|p| p.budget),
            Platform::Unspecified => None,
        };
        budget.ok_or(GatewayError::PlatformNotConfigured(platform_name(platform)))
    }

    /// Calls the route's platform; reads that failed transiently are retried
    /// with jittered exponential backoff, within the deadline and retry budget.
    pub async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        self.retry_budget.deposit();
        let mut attempt = 1;
        loop {
            let result = self.call_once(route, request, deadline).await;
            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if !route.idempotent || attempt >= MAX_ATTEMPTS || !error.is_transient() {
                return Err(error);
            }
            let backoff = BACKOFF_BASE * 2u32.pow(attempt - 1);
            let jittered = backoff.mul_f64(rand::rng().random_range(0.5..1.5));
            if Instant::now() + jittered >= deadline || !self.retry_budget.withdraw() {
                return Err(error);
            }
            tracing::info!(
                endpoint = %route.path,
                attempt,
                reason = error.reason().info_reason(),
                "transient upstream failure; retrying a read"
            );
            tokio::time::sleep(jittered).await;
            attempt += 1;
        }
    }

    async fn call_once(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        let not_configured = || GatewayError::PlatformNotConfigured(platform_name(route.platform));
        match route.platform {
            Platform::QqMinigame => {
                let platform = self.minigame.as_ref().ok_or_else(not_configured)?;
                platform.client.call(route, request, deadline).await
            }
            Platform::QqOpenapi => {
                let platform = self.openapi.as_ref().ok_or_else(not_configured)?;
                platform.client.call(route, request, deadline).await
            }
            Platform::Msdk => {
                let platform = self.msdk.as_ref().ok_or_else(not_configured)?;
                platform.client.call(route, request, deadline).await
            }
            Platform::Unspecified => Err(not_configured()),
        }
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
}
