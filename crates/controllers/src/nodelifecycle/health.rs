//! Node health as the lifecycle controller judges it: heartbeats, the conditions of a node
//! whose kubelet went quiet, and the taints each Ready state calls for.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The conditions a kubelet reports, all set Unknown when it stops.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// "True", "False" or "Unknown"; `None` before the kubelet first reported.
pub fn ready(node: &Node) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status.as_str())
}

/// The latest sign of life: the node Lease's renewal, the Ready condition's heartbeat, or the
/// node's creation (a new node gets a full grace period).
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Timestamp {
    let renewed = lease.and_then(|l| l.spec.as_ref()?.renew_time.as_ref()).map(|t| t.0);
    let reported =
        condition(node, "Ready").and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [renewed, reported, created].into_iter().flatten().max().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The node's conditions once its kubelet is presumed gone: every kubelet condition Unknown.
/// `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions =
        node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let never = condition(node, "Ready").is_none();
    let (reason, message) = if never {
        ("NodeStatusNeverUpdated", "Kubelet never posted node status.")
    } else {
        ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(reason.into());
                c.message = Some(message.into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: (*type_).into(),
                    status: "Unknown".into(),
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    last_transition_time: Some(Time(now)),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// The taint key a Ready status calls for: not-ready for False, unreachable for Unknown.
pub fn taint_key(ready: Option<&str>) -> Option<&'static str> {
    match ready {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    }
}

fn managed(taint: &Taint) -> bool {
    taint.key == NOT_READY || taint.key == UNREACHABLE
}

/// The node's taints with the lifecycle ones made to match `key`: its NoSchedule taint always,
/// its NoExecute taint only when `no_execute` (eviction may be rate limited or suspended).
pub fn desired_taints(
    node: &Node,
    key: Option<&str>,
    no_execute: bool,
    now: Timestamp,
) -> Vec<Taint> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let wanted = |effect: &str| -> bool {
        key.is_some() && (effect == "NoSchedule" || (effect == "NoExecute" && no_execute))
    };
    let mut taints: Vec<Taint> = current
        .into_iter()
        .filter(|t| !managed(t) || (Some(t.key.as_str()) == key && wanted(&t.effect)))
        .collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            if wanted(effect) && !taints.iter().any(|t| t.key == key && t.effect == effect) {
                taints.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then_some(Time(now)),
                    value: None,
                });
            }
        }
    }
    taints
}

pub fn has_no_execute(node: &Node, key: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == key && t.effect == "NoExecute"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_quiet_kubelet_leaves_every_condition_unknown() {
        let n = node(json!({"metadata": {"name": "n"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2025-01-01T00:00:00Z"}]}}));
        let conditions = unknown_conditions(&n, Timestamp::now()).unwrap();
        assert_eq!(conditions.len(), 4);
        assert!(conditions.iter().all(|c| c.status == "Unknown"));
        assert_eq!(conditions[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(conditions[0].message.as_deref(), Some("Kubelet stopped posting node status."));
    }

    #[test]
    fn the_newest_of_lease_and_heartbeat_counts() {
        let n =
            node(json!({"metadata": {"name": "n", "creationTimestamp": "2025-01-01T00:00:00Z"}}));
        let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"renewTime": "2025-01-01T00:05:00.000000Z"}})).unwrap();
        assert_eq!(last_heartbeat(&n, Some(&lease)).to_string(), "2025-01-01T00:05:00Z");
        assert_eq!(last_heartbeat(&n, None).to_string(), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn taints_follow_the_ready_state_and_others_are_kept() {
        let n = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "effect": "NoSchedule"},
            {"key": NOT_READY, "effect": "NoExecute"}]}}));
        let now = Timestamp::now();
        let keys = |t: Vec<Taint>| {
            t.into_iter().map(|t| format!("{}:{}", t.key, t.effect)).collect::<Vec<_>>()
        };
        assert_eq!(
            keys(desired_taints(&n, taint_key(Some("Unknown")), true, now)),
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        assert_eq!(
            keys(desired_taints(&n, taint_key(Some("Unknown")), false, now)),
            ["dedicated:NoSchedule", "node.kubernetes.io/unreachable:NoSchedule"]
        );
        assert_eq!(
            keys(desired_taints(&n, taint_key(Some("True")), true, now)),
            ["dedicated:NoSchedule"]
        );
    }
}
