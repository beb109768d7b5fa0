//! Lists longer than a platform takes in one call (MSDK's `fopenids`, 49 at a
//! time): split into calls of the declared size, run a few at a time under one
//! deadline, their answers merged in request order.

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use super::degraded::{LOST_MARKER, is_lost};
use crate::{
    errors::GatewayError,
    plan::{Route, UpstreamRequest},
    platform::ConfiguredPlatform,
};

/// Upstream calls of one fanned-out request that run at once.
const FAN_OUT_PARALLELISM: usize = 4;

/// One upstream call, or several in parallel when a list is longer than the
/// platform takes in one call.
pub async fn call(
    platform: &ConfiguredPlatform,
    route: &Route,
    request: &UpstreamRequest,
    deadline: Instant,
) -> Result<Map<String, Json>, GatewayError> {
    let oversized =
        route
            .batch
            .as_ref()
            .and_then(|(member, size)| match request.body.get(member) {
                Some(Json::Array(items)) if items.len() > *size => Some((member, items, *size)),
                _ => None,
            });
    let Some((member, items, size)) = oversized else {
        return platform.call(route, request, deadline).await;
    };
    let parts: Vec<UpstreamRequest> = items
        .chunks(size)
        .map(|chunk| {
            let mut part = request.clone();
            part.body
                .insert(member.clone(), Json::Array(chunk.to_vec()));
            part
        })
        .collect();
    tracing::debug!(endpoint = %route.path, calls = parts.len(), "fanning out a long list");
    let calls: Vec<_> = parts
        .iter()
        .map(|part| platform.call(route, part, deadline))
        .collect();
    let answers: Vec<Map<String, Json>> = futures::stream::iter(calls)
        .buffered(FAN_OUT_PARALLELISM)
        .try_collect()
        .await?;
    Ok(merge_answers(answers))
}

/// Merges the answers of a fanned-out call: lists are concatenated in request
/// order, other members come from the first answer, and the merge is degraded
/// if any part was.
fn merge_answers(answers: Vec<Map<String, Json>>) -> Map<String, Json> {
    let any_lost = answers.iter().any(is_lost);
    let mut parts = answers.into_iter();
    let mut merged = parts.next().unwrap_or_default();
    for part in parts {
        for (key, value) in part {
            match (merged.get_mut(&key), value) {
                (Some(Json::Array(list)), Json::Array(more)) => list.extend(more),
                (None, value) => {
                    merged.insert(key, value);
                }
                _ => {}
            }
        }
    }
    if any_lost {
        merged.insert(LOST_MARKER.into(), Json::String("1".into()));
    }
    merged
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merged_answers_concatenate_lists_in_order_and_keep_degradation() {
        let merged = merge_answers(vec![
            object(json!({"ret": 0, "lists": [1, 2], "is_lost": "0", "msdkExtInfo": "a"})),
            object(json!({"ret": 0, "lists": [3], "is_lost": "1", "msdkExtInfo": "a"})),
            object(json!({"ret": 0, "lists": [4, 5], "is_lost": "0", "extra": true})),
        ]);
        assert_eq!(
            Json::Object(merged),
            json!({"ret": 0, "lists": [1, 2, 3, 4, 5], "is_lost": "1", "msdkExtInfo": "a", "extra": true})
        );
    }
}
