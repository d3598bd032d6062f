//! Events expire: etcd-backed Kubernetes stores events under a lease of `--event-ttl`; here a
//! sweeper deletes events whose last activity is older than the TTL.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::ApiServer;

/// When an event last happened: its latest timestamp of any kind.
fn last_activity(event: &Value) -> Option<jiff::Timestamp> {
    let candidates = [
        &event["series"]["lastObservedTime"],
        &event["lastTimestamp"],
        &event["eventTime"],
        &event["metadata"]["creationTimestamp"],
    ];
    candidates.iter().filter_map(|v| v.as_str()?.parse::<jiff::Timestamp>().ok()).max()
}

/// Deletes expired events every `ttl / 10` (at most every minute) until the task is dropped.
pub async fn run(server: Arc<ApiServer>, ttl: Duration) {
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let events = capstan_api::registry::find("", "v1", "events").expect("events are served");
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        let Ok(ttl) = jiff::SignedDuration::try_from(ttl) else { return };
        let cutoff = jiff::Timestamp::now() - ttl;
        let all = match server.objects_under(events, &events.key_prefix()).await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!("cannot read events to expire: {}", e.message);
                continue;
            }
        };
        for event in all {
            if last_activity(&event.value()).is_some_and(|t| t < cutoff) {
                // Guarded by revision: an event updated meanwhile is kept for another round.
                match server.store.delete(&event.key, Some(event.revision)).await {
                    Ok(_)
                    | Err(
                        capstan_store::StoreError::NotFound(_)
                        | capstan_store::StoreError::Conflict { .. },
                    ) => {}
                    Err(e) => tracing::warn!(key = event.key, "cannot expire event: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_latest_timestamp_counts() {
        let event = json!({
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": "2026-01-02T00:00:00Z",
            "series": {"lastObservedTime": "2026-01-03T00:00:00.123456Z"},
        });
        assert_eq!(last_activity(&event).unwrap().to_string(), "2026-01-03T00:00:00.123456Z");
        assert!(last_activity(&json!({})).is_none());
    }
}
