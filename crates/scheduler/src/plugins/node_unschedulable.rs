//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use super::tolerates;
use crate::framework::{CycleState, Filter, NodeInfo, Plugin, PodInfo, Status};

pub const REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let tolerated = pod
            .spec()
            .tolerations
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|t| tolerates(t, &taint));
        if tolerated { Status::success() } else { Status::unresolvable(REASON) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let tolerating = json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]});
        let cases = [
            ("schedulable node", json!({}), json!({}), true),
            ("cordoned node", json!({"spec": {"unschedulable": true}}), json!({}), false),
            (
                "cordoned node, tolerated",
                json!({"spec": {"unschedulable": true}}),
                tolerating,
                true,
            ),
        ];
        for (what, n, p, fits) in cases {
            let status =
                NodeUnschedulable.filter(&CycleState::default(), &pod("p", p), &node("n", n));
            assert_eq!(status.is_success(), fits, "{what}");
        }
    }
}
