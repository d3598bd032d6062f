//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node.

use crate::framework::{CycleState, Filter, NodeInfo, Plugin, PodInfo, Status};

pub const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.spec().node_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) if name != node.name => Status::unresolvable(REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let cases = [
            ("no name", json!({}), true),
            ("this node", json!({"nodeName": "n"}), true),
            ("another node", json!({"nodeName": "m"}), false),
        ];
        for (what, spec, fits) in cases {
            let status =
                NodeName.filter(&CycleState::default(), &pod("p", spec), &node("n", json!({})));
            assert_eq!(status.is_success(), fits, "{what}");
        }
    }
}
