//! Rate limits towards one platform: token buckets (governor's GCRA) for the
//! whole platform, per app, and per app and upstream path, from
//! `[<platform>.rate_limits]`, checked before a call is sent. A call every
//! bucket has room for goes; any other is refused at once with the time the
//! first refusing bucket lets a call through (never queued: the caller's
//! deadline is the caller's to spend).
//!
//! Across a fleet each replica takes its share: both the rate and the burst
//! are divided by the live replicas the store counts ([`FleetSize`]), so the
//! fleet together stays within the configured rate (approximately: a replica
//! that receives more than its share of the traffic is refused earlier than
//! the fleet's total requires). No store command is spent per call.
//!
//! When the platform answers one of its frequency-limit codes (HTTP 429,
//! 45009, 45011, MSDK -503), the app is held back for the time the platform
//! implied (its `Retry-After`, else a second): calls sent meanwhile would be
//! refused by the platform and count against the app.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::{InMemoryState, NotKeyed},
};

use crate::{
    config::{RateLimitsConfig, RateSpec},
    errors::GatewayError,
    proto::Platform,
};

/// The live replicas the store counts (read as at least 1); the store
/// (`state`) keeps it current.
pub type FleetSize = Arc<std::sync::atomic::AtomicUsize>;

fn replicas(fleet: &FleetSize) -> usize {
    fleet.load(Ordering::Relaxed).max(1)
}

/// The longest an app is held back after the platform asked it to slow down,
/// whatever its `Retry-After` says.
const MAX_HOLD_BACK: Duration = Duration::from_secs(300);

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// One platform's buckets.
pub struct RateLimits {
    platform: Platform,
    whole: Option<Bucket>,
    /// By app id as configured.
    apps: HashMap<String, AppLimits>,
    fleet: FleetSize,
    clock: DefaultClock,
    /// What `held_until_ms` counts from.
    epoch: Instant,
}

struct AppLimits {
    bucket: Option<Bucket>,
    /// By upstream path.
    paths: HashMap<String, Bucket>,
    /// Milliseconds since `epoch` until which the platform asked this app to
    /// wait; 0 when it did not.
    held_until_ms: AtomicU64,
    /// `app:<id>`: the limit's name when the hold refuses a call.
    name: String,
}

/// One bucket, rebuilt for its share when the fleet's size changes.
struct Bucket {
    /// `platform`, `app:<id>` or `path:<id>:<path>`: what QuotaFailure and
    /// the log name. App ids and paths are no secrets.
    name: String,
    spec: RateSpec,
    share: ArcSwap<Share>,
}

struct Share {
    replicas: usize,
    limiter: Limiter,
}

impl Share {
    fn new(spec: RateSpec, replicas: usize) -> Share {
        let replicas_f = replicas as f64;
        // At least one call a period per replica: a share rounded down to
        // nothing would refuse every call.
        let rate = (spec.rate_per_s / replicas_f).max(1e-3);
        let burst = ((f64::from(spec.burst) / replicas_f).ceil() as u32).max(1);
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(NonZeroU32::new(burst).expect("at least one"));
        Share {
            replicas,
            limiter: RateLimiter::direct(quota),
        }
    }
}

impl Bucket {
    fn new(name: String, spec: RateSpec, replicas: usize) -> Bucket {
        Bucket {
            name,
            spec,
            share: ArcSwap::from_pointee(Share::new(spec, replicas)),
        }
    }

    /// Takes one call's room, or says how long until there is some.
    fn take(&self, replicas: usize, clock: &DefaultClock) -> Result<(), Duration> {
        let mut share = self.share.load();
        if share.replicas != replicas {
            // Racing rebuilds are harmless: one wins, each starts full.
            self.share.store(Arc::new(Share::new(self.spec, replicas)));
            share = self.share.load();
        }
        share
            .limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(clock.now()))
    }
}

impl RateLimits {
    /// The buckets `config` declares for `platform`'s `apps`; `None` when it
    /// declares none (nothing to check per call).
    pub fn new<'a>(
        platform: Platform,
        config: &RateLimitsConfig,
        apps: impl IntoIterator<Item = &'a String>,
        fleet: FleetSize,
    ) -> RateLimits {
        let replicas = replicas(&fleet);
        let apps = apps
            .into_iter()
            .map(|app_id| {
                let limits = AppLimits {
                    bucket: config
                        .per_app
                        .map(|spec| Bucket::new(format!("app:{app_id}"), spec, replicas)),
                    paths: config
                        .per_path
                        .iter()
                        .map(|(path, spec)| {
                            (
                                path.clone(),
                                Bucket::new(format!("path:{app_id}:{path}"), *spec, replicas),
                            )
                        })
                        .collect(),
                    held_until_ms: AtomicU64::new(0),
                    name: format!("app:{app_id}"),
                };
                (app_id.clone(), limits)
            })
            .collect();
        RateLimits {
            platform,
            whole: config
                .platform
                .map(|spec| Bucket::new("platform".into(), spec, replicas)),
            apps,
            fleet,
            clock: DefaultClock::default(),
            epoch: Instant::now(),
        }
    }

    fn app(&self, app_id: &str) -> Option<&AppLimits> {
        self.apps.get(app_id).or_else(|| {
            self.apps
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(app_id))
                .map(|(_, limits)| limits)
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Lets one call of `app_id` to `path` through, or refuses it with
    /// `GATEWAY_RATE_LIMITED`.
    pub fn admit(&self, app_id: &str, path: &str) -> Result<(), GatewayError> {
        let app = self.app(app_id);
        if let Some(app) = app {
            let held_until = app.held_until_ms.load(Ordering::Relaxed);
            let now = self.now_ms();
            if held_until > now {
                return Err(self.refused(&app.name, Duration::from_millis(held_until - now), true));
            }
        }
        let replicas = replicas(&self.fleet);
        let buckets = [
            app.and_then(|app| app.paths.get(path)),
            app.and_then(|app| app.bucket.as_ref()),
            self.whole.as_ref(),
        ];
        for bucket in buckets.into_iter().flatten() {
            if let Err(wait) = bucket.take(replicas, &self.clock) {
                return Err(self.refused(&bucket.name, wait, false));
            }
        }
        Ok(())
    }

    /// The platform asked `app_id` to slow down: hold its calls back for
    /// `delay` (at most [`MAX_HOLD_BACK`]).
    pub fn hold_back(&self, app_id: &str, delay: Duration) {
        if let Some(app) = self.app(app_id) {
            let until = self.now_ms() + delay.min(MAX_HOLD_BACK).as_millis() as u64;
            app.held_until_ms.fetch_max(until, Ordering::Relaxed);
            tracing::warn!(
                platform = crate::errors::platform_name(self.platform),
                limit = %app.name,
                hold_ms = delay.min(MAX_HOLD_BACK).as_millis() as u64,
                "the platform asked this app to slow down; holding its calls back"
            );
        }
    }

    fn refused(&self, limit: &str, wait: Duration, platform_asked: bool) -> GatewayError {
        GatewayError::RateLimited {
            platform: self.platform,
            limit: limit.to_string(),
            // A caller told "retry in 0 ms" retries at once and is refused
            // again: at least a millisecond.
            retry_after: wait.max(Duration::from_millis(1)),
            platform_asked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ErrorReason;

    fn alone() -> FleetSize {
        Arc::new(std::sync::atomic::AtomicUsize::new(1))
    }

    fn limits(config: RateLimitsConfig, fleet: FleetSize) -> RateLimits {
        let apps = ["app1".to_string(), "app2".to_string()];
        RateLimits::new(Platform::Msdk, &config, apps.iter(), fleet)
    }

    fn spec(rate_per_s: f64, burst: u32) -> RateSpec {
        RateSpec { rate_per_s, burst }
    }

    fn admitted(limits: &RateLimits, app: &str, path: &str, calls: usize) -> usize {
        (0..calls)
            .filter(|_| limits.admit(app, path).is_ok())
            .count()
    }

    #[test]
    fn each_app_has_its_own_bucket_and_a_refusal_says_when_to_come_back() {
        let limits = limits(
            RateLimitsConfig {
                per_app: Some(spec(1.0, 5)),
                ..RateLimitsConfig::default()
            },
            alone(),
        );
        assert_eq!(admitted(&limits, "app1", "/a", 8), 5, "the burst");
        assert_eq!(admitted(&limits, "app2", "/a", 8), 5, "another app's own");
        let refused = limits.admit("app1", "/a").unwrap_err();
        assert_eq!(refused.reason(), ErrorReason::GatewayRateLimited);
        let GatewayError::RateLimited {
            limit, retry_after, ..
        } = &refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!(limit, "app:app1");
        assert!(
            *retry_after > Duration::from_millis(500) && *retry_after <= Duration::from_secs(1),
            "{retry_after:?}"
        );
        // App ids match as the platform clients match them: ignoring case.
        assert!(limits.admit("APP1", "/a").is_err());
    }

    #[test]
    fn the_platform_and_path_buckets_apply_to_every_call_they_name() {
        let limits = limits(
            RateLimitsConfig {
                platform: Some(spec(1.0, 6)),
                per_path: [("/slow".to_string(), spec(1.0, 2))].into(),
                ..RateLimitsConfig::default()
            },
            alone(),
        );
        assert_eq!(admitted(&limits, "app1", "/slow", 5), 2, "the path's burst");
        assert_eq!(admitted(&limits, "app2", "/slow", 5), 2, "per app");
        assert_eq!(
            admitted(&limits, "app1", "/fast", 5),
            2,
            "the platform's rest"
        );
        let refused = limits.admit("app2", "/fast").unwrap_err();
        assert!(matches!(&refused, GatewayError::RateLimited { limit, .. } if limit == "platform"));
        // An app gamegate does not know has only the platform's bucket.
        assert!(limits.admit("nobody", "/slow").is_err());
    }

    #[test]
    fn a_replica_takes_its_share_of_the_fleets_rate() {
        let fleet = alone();
        let limits = limits(
            RateLimitsConfig {
                per_app: Some(spec(10.0, 12)),
                ..RateLimitsConfig::default()
            },
            fleet.clone(),
        );
        fleet.store(3, Ordering::Relaxed);
        assert_eq!(
            admitted(&limits, "app1", "/a", 10),
            4,
            "a third of the burst"
        );
        fleet.store(1, Ordering::Relaxed);
        assert_eq!(admitted(&limits, "app1", "/a", 20), 12, "all of it, alone");
    }

    #[test]
    fn an_app_the_platform_asked_to_slow_down_is_held_back() {
        let limits = limits(RateLimitsConfig::default(), alone());
        assert!(limits.admit("app1", "/a").is_ok(), "no bucket: no limit");
        limits.hold_back("app1", Duration::from_millis(300));
        let refused = limits.admit("app1", "/a").unwrap_err();
        let GatewayError::RateLimited {
            platform_asked,
            retry_after,
            ..
        } = refused
        else {
            panic!()
        };
        assert!(platform_asked);
        assert!(retry_after <= Duration::from_millis(300) && retry_after > Duration::ZERO);
        assert!(limits.admit("app2", "/a").is_ok(), "only that app");
        std::thread::sleep(Duration::from_millis(320));
        assert!(limits.admit("app1", "/a").is_ok(), "until the time passed");
    }
}
