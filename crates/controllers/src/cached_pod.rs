//! The pod as the controllers' shared cache keeps it: only the fields controllers read, under
//! `Pod`'s own names, so reading one looks like reading a `Pod`. A k8s-openapi `Pod` costs
//! kilobytes even when its containers are trimmed (`Container` alone is over 2 KB inline);
//! the controller manager keeps every pod in the cluster, so this is most of its memory.
//!
//! Decoding skips whatever is not named here (volumes, commands, environment, probes,
//! container states, managedFields) without allocating it. Controllers write pods only with
//! patches and deletes through `Api<Pod>`, so a cached pod is never written back.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{ContainerPort, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct CachedPod {
    pub metadata: ObjectMeta,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    pub containers: Vec<Container>,
    pub tolerations: Option<Vec<Toleration>>,
}

/// A container's name and ports (named Service target ports resolve through them).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub ports: Option<Vec<ContainerPort>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
}

/// A condition's type, status and when it last changed (readiness and availability).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub last_transition_time: Option<Time>,
}

/// A container's restart count (surplus pods that restart more are deleted first).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    pub restart_count: i32,
}

impl kube::Resource for CachedPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The cached form of a full pod, for tests that build full pods (the cache decodes the same
/// JSON the API serves).
#[cfg(test)]
impl From<&k8s_openapi::api::core::v1::Pod> for CachedPod {
    fn from(pod: &k8s_openapi::api::core::v1::Pod) -> Self {
        serde_json::to_value(pod).and_then(serde_json::from_value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cached_pod_keeps_what_controllers_read_and_skips_the_rest() {
        let pod: CachedPod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "default", "uid": "u1",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web", "uid": "rs1", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {
                "nodeName": "n1",
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 300}],
                "containers": [{"name": "app", "image": "nginx", "command": ["nginx"],
                    "env": [{"name": "A", "value": "1"}],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}],
            },
            "status": {
                "phase": "Running", "podIP": "10.42.0.5",
                "conditions": [{"type": "Ready", "status": "True",
                    "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "r"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 3,
                    "image": "nginx", "imageID": "", "state": {"running": {}}}],
            },
        }))
        .unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(crate::pods::controller_of(&pod.metadata).map(|r| r.uid.as_str()), Some("rs1"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        let port = &spec.containers[0].ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("http"), 8080));
        let toleration = &spec.tolerations.as_ref().unwrap()[0];
        assert_eq!(toleration.toleration_seconds, Some(300));
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.0.5"));
        assert_eq!(status.container_statuses.as_ref().unwrap()[0].restart_count, 3);
        assert!(crate::pods::is_ready(&pod));
    }
}
