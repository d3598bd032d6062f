//! NodePorts: a pod's host ports must be free on the node (same protocol and port conflict
//! unless both bind different specific addresses).

use crate::framework::{CycleState, Filter, NodeInfo, Plugin, PodInfo, Status};

pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for NodePorts {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict =
            pod.ports.iter().any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict { Status::unschedulable(REASON) } else { Status::success() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, with_pods};
    use serde_json::{Value, json};

    fn port(port: i32, protocol: &str, ip: &str) -> Value {
        json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": port, "protocol": protocol, "hostIP": ip}]}]})
    }

    #[test]
    fn host_ports_conflict_like_upstream() {
        let cases = [
            ("free port", port(8080, "TCP", ""), port(8081, "TCP", ""), true),
            ("same port", port(8080, "TCP", ""), port(8080, "TCP", ""), false),
            ("other protocol", port(8080, "TCP", ""), port(8080, "UDP", ""), true),
            (
                "different specific addresses",
                port(8080, "TCP", "10.0.0.1"),
                port(8080, "TCP", "10.0.0.2"),
                true,
            ),
            (
                "any address against a specific one",
                port(8080, "TCP", "0.0.0.0"),
                port(8080, "TCP", "10.0.0.2"),
                false,
            ),
            ("no host port", json!({}), port(8080, "TCP", ""), true),
        ];
        for (what, existing, incoming, fits) in cases {
            let n = with_pods(node("n", json!({})), vec![pod("old", existing)]);
            let status = NodePorts.filter(&CycleState::default(), &pod("new", incoming), &n);
            assert_eq!(status.is_success(), fits, "{what}");
        }
    }
}
