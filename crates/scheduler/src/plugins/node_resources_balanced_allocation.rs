//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory use stay balanced after
//! placing the pod (score 100 × (1 − standard deviation of the used fractions)).

use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, Score};

pub struct NodeResourcesBalancedAllocation;

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

impl Score for NodeResourcesBalancedAllocation {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let fraction = |requested: i64, capacity: i64| {
            if capacity <= 0 { 1.0 } else { (requested as f64 / capacity as f64).min(1.0) }
        };
        let cpu = fraction(node.non_zero_requested.0 + pod.non_zero.0, node.allocatable.milli_cpu);
        let memory = fraction(node.non_zero_requested.1 + pod.non_zero.1, node.allocatable.memory);
        // The standard deviation of two values is half their distance.
        let deviation = (cpu - memory).abs() / 2.0;
        ((1.0 - deviation) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, requests, with_pods};
    use serde_json::json;

    #[test]
    fn balanced_use_scores_higher() {
        let cases = [
            // cpu 1/4 = .25, memory 2/8 = .25: balanced.
            ("balanced", vec![], requests("1", "2Gi"), 100),
            // cpu .75, memory (2Gi + the 200Mi default of the first pod) / 8Gi.
            ("cpu heavy", vec![pod("a", requests("2", ""))], requests("1", "2Gi"), 76),
            // cpu 1.0 (capped), memory ~0.
            ("all cpu", vec![], requests("4", "1"), 50),
        ];
        for (what, existing, incoming, expected) in cases {
            let n = with_pods(node("n", json!({})), existing);
            let score = NodeResourcesBalancedAllocation.score(
                &CycleState::default(),
                &pod("new", incoming),
                &n,
            );
            assert_eq!(score, expected, "{what}");
        }
    }
}
