//! TaintToleration: NoSchedule and NoExecute taints keep out pods that do not tolerate them;
//! untolerated PreferNoSchedule taints lower a node's score.

use super::{default_normalize, tolerates};
use crate::framework::{CycleState, Filter, NodeInfo, Plugin, PodInfo, Score, Status};

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

impl Filter for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        let untolerated = node.taints.iter().find(|taint| {
            matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                && !tolerations.iter().any(|t| tolerates(t, taint))
        });
        match untolerated {
            Some(taint) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or_default()
            )),
            None => Status::success(),
        }
    }
}

impl Score for TaintToleration {
    /// How many PreferNoSchedule taints the pod does not tolerate (fewer is better).
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tolerations = pod.spec().tolerations.as_deref().unwrap_or_default();
        let prefer = |t: &&k8s_openapi::api::core::v1::Toleration| {
            t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        };
        node.taints
            .iter()
            .filter(|taint| {
                taint.effect == "PreferNoSchedule"
                    && !tolerations.iter().filter(prefer).any(|t| tolerates(t, taint))
            })
            .count() as i64
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::{Value, json};

    fn taint(key: &str, value: &str, effect: &str) -> Value {
        json!({"spec": {"taints": [{"key": key, "value": value, "effect": effect}]}})
    }

    #[test]
    fn untolerated_hard_taints_reject_with_upstreams_message() {
        let equal = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]});
        let exists_all = json!({"tolerations": [{"operator": "Exists"}]});
        let cases = [
            ("no taints", json!({}), json!({}), None),
            (
                "NoSchedule",
                taint("dedicated", "gpu", "NoSchedule"),
                json!({}),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "NoExecute",
                taint("dedicated", "gpu", "NoExecute"),
                json!({}),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "PreferNoSchedule only scores",
                taint("dedicated", "gpu", "PreferNoSchedule"),
                json!({}),
                None,
            ),
            ("tolerated by value", taint("dedicated", "gpu", "NoSchedule"), equal.clone(), None),
            (
                "other value",
                taint("dedicated", "cpu", "NoSchedule"),
                equal,
                Some("node(s) had untolerated taint {dedicated: cpu}"),
            ),
            ("Exists without key tolerates all", taint("a", "b", "NoExecute"), exists_all, None),
        ];
        for (what, n, p, reason) in cases {
            let status =
                TaintToleration.filter(&CycleState::default(), &pod("p", p), &node("n", n));
            assert_eq!(status.reasons().first().map(String::as_str), reason, "{what}");
        }
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let nodes =
            [node("clean", json!({})), node("tainted", taint("k", "v", "PreferNoSchedule"))];
        let p = pod("p", json!({}));
        let state = CycleState::default();
        let mut scores: Vec<i64> =
            nodes.iter().map(|n| TaintToleration.score(&state, &p, n)).collect();
        TaintToleration.normalize(&state, &p, &mut scores);
        assert_eq!(scores, vec![100, 0]);
    }
}
