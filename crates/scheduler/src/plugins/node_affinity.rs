//! NodeAffinity: `nodeSelector` and required node affinity must match the node; preferred
//! node affinity terms add their weights to its score.

use k8s_openapi::api::core::v1::NodeSelectorTerm;

use super::default_normalize;
use crate::framework::selectors::NodeTerm;
use crate::framework::{
    CycleState, Filter, NodeInfo, Plugin, PodInfo, PreFilter, Score, Snapshot, Status,
};

pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";
const STATE_KEY: &str = "PreFilterNodeAffinity";

pub struct NodeAffinity;

/// The pod's node constraints, parsed once per cycle.
struct Required {
    /// Any one term must match (ORed); `None` when the pod has no required affinity.
    terms: Option<Vec<NodeTerm>>,
    preferred: Vec<(i32, NodeTerm)>,
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

fn parse(pod: &PodInfo) -> Result<Required, String> {
    let affinity = pod.spec().affinity.as_ref().and_then(|a| a.node_affinity.as_ref());
    let parse_terms = |terms: &[NodeSelectorTerm]| {
        terms.iter().map(NodeTerm::parse).collect::<Result<Vec<_>, _>>()
    };
    let terms = affinity
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|selector| parse_terms(&selector.node_selector_terms))
        .transpose()?;
    let preferred = affinity
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
        .into_iter()
        .flatten()
        .map(|p| Ok((p.weight, NodeTerm::parse(&p.preference)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Required { terms, preferred })
}

impl PreFilter for NodeAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _snapshot: &Snapshot) -> Status {
        match parse(pod) {
            Ok(required) => {
                state.write(STATE_KEY, required);
                Status::success()
            }
            Err(error) => Status::unresolvable(format!("invalid node affinity: {error}")),
        }
    }
}

impl Filter for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let selector_matches = pod
            .spec()
            .node_selector
            .iter()
            .flatten()
            .all(|(key, value)| node.labels.get(key) == Some(value));
        let affinity_matches =
            match state.read::<Required>(STATE_KEY).and_then(|r| r.terms.as_ref()) {
                Some(terms) => terms.iter().any(|t| t.matches(&node.name, &node.labels)),
                None => true,
            };
        if selector_matches && affinity_matches {
            Status::success()
        } else {
            Status::unresolvable(REASON)
        }
    }
}

impl Score for NodeAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(required) = state.read::<Required>(STATE_KEY) else { return 0 };
        required
            .preferred
            .iter()
            .filter(|(_, term)| term.matches(&node.name, &node.labels))
            .map(|(weight, _)| i64::from(*weight))
            .sum()
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::{Value, json};

    fn required(key: &str, operator: &str, values: &[&str]) -> Value {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": operator, "values": values}]}]}}}})
    }

    fn run(spec: Value, node_labels: Value) -> Status {
        let p = pod("p", spec);
        let mut state = CycleState::default();
        let status = NodeAffinity.pre_filter(&mut state, &p, &Snapshot::default());
        if !status.is_success() {
            return status;
        }
        NodeAffinity.filter(&state, &p, &node("n", json!({"metadata": {"labels": node_labels}})))
    }

    #[test]
    fn node_selector_and_required_affinity_must_match() {
        let cases = [
            ("nothing asked", json!({}), json!({}), true),
            (
                "selector matches",
                json!({"nodeSelector": {"disk": "ssd"}}),
                json!({"disk": "ssd"}),
                true,
            ),
            (
                "selector misses",
                json!({"nodeSelector": {"disk": "ssd"}}),
                json!({"disk": "hdd"}),
                false,
            ),
            ("affinity In", required("zone", "In", &["a", "b"]), json!({"zone": "b"}), true),
            ("affinity NotIn", required("zone", "NotIn", &["b"]), json!({"zone": "b"}), false),
            ("affinity Gt", required("cores", "Gt", &["4"]), json!({"cores": "8"}), true),
        ];
        for (what, spec, labels, fits) in cases {
            let status = run(spec, labels);
            assert_eq!(status.is_success(), fits, "{what}: {status:?}");
            if !fits {
                assert_eq!(status.reasons(), [REASON], "{what}");
            }
        }
    }

    #[test]
    fn malformed_terms_are_unresolvable_not_a_crash() {
        let status = run(required("zone", "Near", &["a"]), json!({}));
        assert_eq!(status.code(), crate::framework::Code::UnschedulableAndUnresolvable);
        assert!(status.message().contains("invalid node affinity"), "{status:?}");
    }

    #[test]
    fn preferred_terms_add_their_weights() {
        let spec = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}});
        let p = pod("p", spec);
        let mut state = CycleState::default();
        assert!(NodeAffinity.pre_filter(&mut state, &p, &Snapshot::default()).is_success());
        let nodes = [json!({"zone": "a", "disk": "ssd"}), json!({"zone": "a"}), json!({})];
        let mut scores: Vec<i64> = nodes
            .into_iter()
            .map(|labels| {
                NodeAffinity.score(&state, &p, &node("n", json!({"metadata": {"labels": labels}})))
            })
            .collect();
        assert_eq!(scores, vec![40, 30, 0]);
        NodeAffinity.normalize(&state, &p, &mut scores);
        assert_eq!(scores, vec![100, 75, 0]);
    }
}
