//! NodeResourcesFit: the pod's requests must fit the node's allocatable minus what its pods
//! request (cpu, memory, ephemeral-storage, pod count, extended resources); scores nodes by
//! LeastAllocated (the most free cpu and memory after placing the pod).

use crate::framework::{
    CycleState, Filter, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, Score, Status,
};

pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

/// Every resource the pod is short of on the node, in upstream's words.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    let (want, used, free) = (&pod.requests, &node.requested, &node.allocatable);
    if node.pods.len() as i64 + 1 > free.pods {
        reasons.push("Too many pods".to_owned());
    }
    let short = |want: i64, used: i64, free: i64| want > 0 && want > free.saturating_sub(used);
    if short(want.milli_cpu, used.milli_cpu, free.milli_cpu) {
        reasons.push("Insufficient cpu".to_owned());
    }
    if short(want.memory, used.memory, free.memory) {
        reasons.push("Insufficient memory".to_owned());
    }
    if short(want.ephemeral_storage, used.ephemeral_storage, free.ephemeral_storage) {
        reasons.push("Insufficient ephemeral-storage".to_owned());
    }
    for (name, amount) in &want.scalar {
        let used = used.scalar.get(name).copied().unwrap_or(0);
        let free = free.scalar.get(name).copied().unwrap_or(0);
        if short(*amount, used, free) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl Filter for NodeResourcesFit {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::with_reasons(crate::framework::Code::Unschedulable, reasons)
        }
    }
}

/// Free share of one resource after placing the pod, 0..=100 (upstream's leastRequestedScore).
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl Score for NodeResourcesFit {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let cpu =
            least_requested(node.non_zero_requested.0 + pod.non_zero.0, node.allocatable.milli_cpu);
        let memory =
            least_requested(node.non_zero_requested.1 + pod.non_zero.1, node.allocatable.memory);
        (cpu + memory) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, requests, with_pods};
    use serde_json::json;

    #[test]
    fn requests_must_fit_what_is_left() {
        let gpu = json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "1"}}}]});
        let cases: Vec<(&str, Vec<_>, serde_json::Value, serde_json::Value, Vec<&str>)> = vec![
            ("fits an empty node", vec![], json!({}), requests("1", "1Gi"), vec![]),
            (
                "fits exactly",
                vec![pod("a", requests("3", "7Gi"))],
                json!({}),
                requests("1", "1Gi"),
                vec![],
            ),
            (
                "cpu short",
                vec![pod("a", requests("3500m", ""))],
                json!({}),
                requests("1", ""),
                vec!["Insufficient cpu"],
            ),
            (
                "cpu and memory short",
                vec![],
                json!({}),
                requests("5", "9Gi"),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "pod count",
                vec![pod("a", json!({}))],
                json!({"status": {"allocatable": {"pods": "1"}}}),
                json!({}),
                vec!["Too many pods"],
            ),
            (
                "extended resource missing",
                vec![],
                json!({}),
                gpu.clone(),
                vec!["Insufficient example.com/gpu"],
            ),
            (
                "extended resource present",
                vec![],
                json!({"status": {"allocatable": {"example.com/gpu": "2"}}}),
                gpu,
                vec![],
            ),
            (
                "no requests fit a full node",
                vec![pod("a", requests("4", "8Gi"))],
                json!({}),
                json!({}),
                vec![],
            ),
        ];
        for (what, existing, n, incoming, reasons) in cases {
            let n = with_pods(node("n", n), existing);
            let status = NodeResourcesFit.filter(&CycleState::default(), &pod("new", incoming), &n);
            assert_eq!(status.reasons(), reasons.as_slice(), "{what}");
        }
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes() {
        let state = CycleState::default();
        let incoming = pod("new", requests("1", "2Gi"));
        let empty = node("empty", json!({}));
        let half = with_pods(node("half", json!({})), vec![pod("a", requests("2", "4Gi"))]);
        // Empty: cpu (4-1)/4 = 75, memory (8-2)/8 = 75; half: 25 and 25.
        assert_eq!(NodeResourcesFit.score(&state, &incoming, &empty), 75);
        assert_eq!(NodeResourcesFit.score(&state, &incoming, &half), 25);
    }
}
