//! Degraded answers: MSDK marks an answer whose data was partly lost with
//! `is_lost = "1"`. Routes that declare `serve_cached_when_lost` get the last
//! good answer to the same request instead (credentials excluded from the key),
//! and a degraded answer is never remembered.

use std::{sync::Arc, time::Duration};

use serde_json::{Map, Value as Json};

use crate::plan::{Route, UpstreamRequest};

/// The member by which MSDK marks a degraded answer ("1": data partly lost).
pub const LOST_MARKER: &str = "is_lost";

pub fn is_lost(answer: &Map<String, Json>) -> bool {
    match answer.get(LOST_MARKER) {
        Some(Json::String(s)) => s.trim() == "1" || s.trim() == "true",
        Some(Json::Number(n)) => n.as_i64() == Some(1),
        Some(Json::Bool(b)) => *b,
        _ => false,
    }
}

/// The last good answers of the routes that serve them, by route, app and
/// request fingerprint; bounded in count and age.
pub struct LastGoodAnswers {
    answers: moka::sync::Cache<String, Arc<Map<String, Json>>>,
}

impl Default for LastGoodAnswers {
    fn default() -> Self {
        LastGoodAnswers {
            answers: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        }
    }
}

impl LastGoodAnswers {
    /// For routes that declare it: a degraded answer is replaced by the last
    /// good answer to the same request, if there is one; good answers are
    /// remembered. Says whether the answer came from the cache.
    pub fn serve(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        answer: Map<String, Json>,
    ) -> (Arc<Map<String, Json>>, bool) {
        let answer = Arc::new(answer);
        if !route.serve_cached_when_lost {
            return (answer, false);
        }
        let key = format!("{}|{}|{}", route.path, request.app_id, request.fingerprint);
        if !is_lost(&answer) {
            // Most answers repeat the last one: replacing an equal entry costs more
            // than comparing it.
            if self.answers.get(&key).as_deref() != Some(&*answer) {
                self.answers.insert(key, answer.clone());
            }
            return (answer, false);
        }
        match self.answers.get(&key) {
            Some(cached) => {
                tracing::info!(endpoint = %route.path, "degraded answer; serving the last good one");
                (cached, true)
            }
            None => (answer, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lost_markers_in_every_spelling() {
        let object = |value: Json| match value {
            Json::Object(map) => map,
            _ => unreachable!(),
        };
        for lost in [json!("1"), json!(1), json!(true), json!(" 1 ")] {
            assert!(is_lost(&object(json!({ "is_lost": lost }))));
        }
        for fine in [json!("0"), json!(0), json!(false), json!("")] {
            assert!(!is_lost(&object(json!({ "is_lost": fine }))));
        }
        assert!(!is_lost(&object(json!({}))));
    }
}
