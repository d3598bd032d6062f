//! The mass-disruption guard: zone states from node readiness, and a per-zone rate limit on
//! tainting nodes for eviction, as upstream's node lifecycle controller does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;

use super::health;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// A node's zone: region and zone labels together.
pub fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map_or("", String::as_str);
    format!("{}:\0:{}", get("topology.kubernetes.io/region"), get("topology.kubernetes.io/zone"))
}

pub fn zone_state(ready: usize, not_ready: usize, settings: &Settings) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2
        && not_ready as f64 / (ready + not_ready) as f64 >= settings.unhealthy_zone_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Every zone's state and size.
pub fn zone_states(
    nodes: &[std::sync::Arc<Node>],
    settings: &Settings,
) -> HashMap<String, (ZoneState, usize)> {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    for node in nodes {
        let entry = counts.entry(zone_of(node)).or_default();
        if health::ready(node) == Some("True") {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(zone, (ready, not_ready))| {
            (zone, (zone_state(ready, not_ready, settings), ready + not_ready))
        })
        .collect()
}

/// Nodes per second a zone may have tainted for eviction; `None` when every zone is fully
/// disrupted (then the control plane, not the nodes, is presumed broken: no evictions at all).
pub fn eviction_rate(
    zone: &str,
    states: &HashMap<String, (ZoneState, usize)>,
    settings: &Settings,
) -> Option<f64> {
    if !states.is_empty() && states.values().all(|(s, _)| *s == ZoneState::FullDisruption) {
        return None;
    }
    Some(match states.get(zone) {
        Some((ZoneState::PartialDisruption, size))
            if *size > settings.large_cluster_size_threshold =>
        {
            settings.secondary_node_eviction_rate
        }
        Some((ZoneState::PartialDisruption, _)) => 0.0,
        _ => settings.node_eviction_rate,
    })
}

/// A token bucket per zone (burst 1).
#[derive(Default)]
pub struct EvictionLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl EvictionLimiter {
    /// Takes a token for `zone` at `rate`, or says how long until one is due.
    pub fn try_take(&self, zone: &str, rate: f64) -> Result<(), Duration> {
        if rate <= 0.0 {
            return Err(Duration::from_secs(10));
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(zone.to_owned()).or_insert((1.0, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(1.0);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_states_as_upstream() {
        let s = Settings::default();
        assert_eq!(zone_state(0, 3, &s), ZoneState::FullDisruption);
        assert_eq!(zone_state(1, 2, &s), ZoneState::Normal);
        assert_eq!(zone_state(2, 3, &s), ZoneState::PartialDisruption);
        assert_eq!(zone_state(5, 3, &s), ZoneState::Normal);
    }

    #[test]
    fn small_partially_disrupted_zones_stop_and_total_disruption_stops_everything() {
        let s = Settings::default();
        let states = HashMap::from([
            ("a".to_owned(), (ZoneState::PartialDisruption, 10)),
            ("b".to_owned(), (ZoneState::PartialDisruption, 100)),
            ("c".to_owned(), (ZoneState::Normal, 10)),
        ]);
        assert_eq!(eviction_rate("a", &states, &s), Some(0.0));
        assert_eq!(eviction_rate("b", &states, &s), Some(0.01));
        assert_eq!(eviction_rate("c", &states, &s), Some(0.1));
        let down = HashMap::from([("a".to_owned(), (ZoneState::FullDisruption, 3))]);
        assert_eq!(eviction_rate("a", &down, &s), None);
    }

    #[test]
    fn the_limiter_lets_one_through_then_spaces_them() {
        let limiter = EvictionLimiter::default();
        assert!(limiter.try_take("z", 0.1).is_ok());
        let wait = limiter.try_take("z", 0.1).unwrap_err();
        assert!(wait > Duration::from_secs(9));
        assert!(limiter.try_take("other", 0.1).is_ok());
    }
}
