//! The built-in plugins, one file each, and the default profile that enables them.

pub mod default_binder;
pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::sync::Arc;

use crate::framework::{Framework, Plugin};

/// Upstream's default profile: plugins in order, with their score weights.
pub fn default_framework(
    client: kube::Client,
    percentage_of_nodes_to_score: Option<u32>,
) -> Framework {
    let plugins: Vec<(Arc<dyn Plugin>, i64)> = vec![
        (Arc::new(node_unschedulable::NodeUnschedulable), 0),
        (Arc::new(node_name::NodeName), 0),
        (Arc::new(taint_toleration::TaintToleration), 3),
        (Arc::new(node_affinity::NodeAffinity), 2),
        (Arc::new(node_ports::NodePorts), 0),
        (Arc::new(node_resources_fit::NodeResourcesFit), 1),
        (Arc::new(pod_topology_spread::PodTopologySpread), 2),
        (Arc::new(inter_pod_affinity::InterPodAffinity), 2),
        (Arc::new(default_preemption::DefaultPreemption), 0),
        (Arc::new(node_resources_balanced_allocation::NodeResourcesBalancedAllocation), 1),
        (Arc::new(image_locality::ImageLocality), 1),
        (Arc::new(default_binder::DefaultBinder::new(client)), 0),
    ];
    Framework::new(plugins, percentage_of_nodes_to_score)
}

/// Whether a toleration tolerates a taint (upstream's ToleratesTaint).
pub fn tolerates(
    toleration: &k8s_openapi::api::core::v1::Toleration,
    taint: &k8s_openapi::api::core::v1::Taint,
) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return operator == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match operator {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// Maps raw scores to 0..=100 by the largest (upstream's DefaultNormalizeScore); `reverse`
/// makes the largest raw score the worst.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for score in scores.iter_mut() {
        if max == 0 {
            *score = if reverse { crate::framework::MAX_NODE_SCORE } else { 0 };
            continue;
        }
        let normalized = *score * crate::framework::MAX_NODE_SCORE / max;
        *score = if reverse { crate::framework::MAX_NODE_SCORE - normalized } else { normalized };
    }
}

#[cfg(test)]
pub mod testing {
    //! Builders for plugin tests: pods and nodes from JSON, as they would come from the API.
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{Value, json};

    use crate::framework::{NodeInfo, PodInfo};

    /// A pod in namespace `default` named `name`, with `spec` merged over one container.
    pub fn pod(name: &str, spec: Value) -> PodInfo {
        pod_with(name, json!({}), spec)
    }

    pub fn pod_with(name: &str, metadata: Value, spec: Value) -> PodInfo {
        let mut object = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        });
        merge(&mut object["metadata"], metadata);
        merge(&mut object["spec"], spec);
        let pod: Pod = serde_json::from_value(object).expect("test pod parses");
        PodInfo::new(&pod)
    }

    /// A container requesting `cpu` and `memory` (empty strings: no request).
    pub fn requests(cpu: &str, memory: &str) -> Value {
        let mut requests = serde_json::Map::new();
        if !cpu.is_empty() {
            requests.insert("cpu".into(), json!(cpu));
        }
        if !memory.is_empty() {
            requests.insert("memory".into(), json!(memory));
        }
        json!({"containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}]})
    }

    /// A node named `name` with 4 cpu, 8Gi, 110 pods allocatable, and `extra` merged over it.
    pub fn node(name: &str, extra: Value) -> NodeInfo {
        let mut object = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
        });
        merge(&mut object, extra);
        let node: Node = serde_json::from_value(object).expect("test node parses");
        NodeInfo::from_node(&node)
    }

    pub fn with_pods(mut node: NodeInfo, pods: Vec<PodInfo>) -> NodeInfo {
        for pod in pods {
            node.add_pod(Arc::new(pod));
        }
        node
    }

    fn merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                for (key, value) in patch {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
            (target, patch) => *target = patch,
        }
    }
}
