//! Events expire: etcd-backed Kubernetes stores events under a lease of `--event-ttl`; here a
//! sweeper deletes events whose last activity is older than the TTL.
//!
//! The sweep reads the store a page at a time and parses only an event's timestamps: a cluster
//! holds about as many events as objects, and holding them all at once (or parsing them whole)
//! would cost tens of megabytes each minute.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::ApiServer;

/// An event's timestamps, the rest of it skipped unparsed.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Timestamps {
    metadata: Created,
    last_timestamp: Option<String>,
    event_time: Option<String>,
    series: Option<Series>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Created {
    creation_timestamp: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Series {
    last_observed_time: Option<String>,
}

/// When an event (stored JSON) last happened: its latest timestamp of any kind.
fn last_activity(event: &[u8]) -> Option<jiff::Timestamp> {
    let times: Timestamps = serde_json::from_slice(event).ok()?;
    let candidates = [
        times.series.and_then(|s| s.last_observed_time),
        times.last_timestamp,
        times.event_time,
        times.metadata.creation_timestamp,
    ];
    candidates.iter().flatten().filter_map(|t| t.parse::<jiff::Timestamp>().ok()).max()
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
        let mut expired = Vec::new();
        let prefix = events.key_prefix();
        let listed = crate::cache::list_all(&*server.store, &prefix, |kv| {
            if last_activity(&kv.value).is_some_and(|t| t < cutoff) {
                expired.push((kv.key.clone(), kv.mod_revision));
            }
        });
        if let Err(e) = listed.await {
            tracing::warn!("cannot read events to expire: {e}");
            continue;
        }
        for (key, revision) in expired {
            // Guarded by revision: an event updated meanwhile is kept for another round.
            match server.store.delete(&key, Some(revision)).await {
                Ok(_)
                | Err(
                    capstan_store::StoreError::NotFound(_)
                    | capstan_store::StoreError::Conflict { .. },
                ) => {}
                Err(e) => tracing::warn!(key, "cannot expire event: {e}"),
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
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z", "name": "e"},
            "lastTimestamp": "2026-01-02T00:00:00Z",
            "series": {"lastObservedTime": "2026-01-03T00:00:00.123456Z", "count": 2},
            "involvedObject": {"kind": "Pod", "name": "p"},
        });
        let latest = last_activity(event.to_string().as_bytes()).unwrap();
        assert_eq!(latest.to_string(), "2026-01-03T00:00:00.123456Z");
        let created_only = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": null, "eventTime": null});
        let created = last_activity(created_only.to_string().as_bytes()).unwrap();
        assert_eq!(created.to_string(), "2026-01-01T00:00:00Z");
        assert!(last_activity(b"{}").is_none());
        assert!(last_activity(b"not json").is_none());
    }
}
