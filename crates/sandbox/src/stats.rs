//! Request counters, so that tests can check what a client actually sent (e.g. that gamegate
//! caches its access token instead of calling getToken every time).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::lock;
use crate::minigame::GET_TOKEN;
use crate::query::QueryParams;

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct StatsSnapshot {
    /// getToken requests received per `appid` query value, whatever their outcome (refused,
    /// faulted or answered).
    get_token_calls: BTreeMap<String, u64>,
    /// Platform requests received per path, faulted ones included.
    requests: BTreeMap<String, u64>,
}

#[derive(Default)]
pub(crate) struct Stats {
    counters: Mutex<StatsSnapshot>,
}

impl Stats {
    pub(crate) fn record(&self, path: &str, query: Option<&str>) {
        let appid = (path == GET_TOKEN)
            .then(|| {
                QueryParams::parse(query)
                    .get("appid")
                    .map(|a| a.into_owned())
            })
            .flatten();
        let mut counters = lock(&self.counters);
        *counters.requests.entry(path.to_owned()).or_default() += 1;
        if let Some(appid) = appid {
            *counters.get_token_calls.entry(appid).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        lock(&self.counters).clone()
    }

    pub(crate) fn reset(&self) {
        *lock(&self.counters) = StatsSnapshot::default();
    }
}
