//! The pod as the controllers' shared cache keeps it: only the fields controllers read, under
//! `Pod`'s own names, so reading one looks like reading a `Pod`. A k8s-openapi `Pod` costs
//! kilobytes even when its containers are trimmed (`Container` alone is over 2 KB inline);
//! the controller manager keeps every pod in the cluster, so this is most of its memory.
//!
//! Labels are kept outside the metadata, in one string (`Pairs`): a label map costs a
//! 540-byte B-tree node per pod even for one label. Decoding skips whatever is not named here (volumes, commands, environment, probes,
//! container states, managedFields) without allocating it. Controllers write pods only with
//! patches and deletes through `Api<Pod>`, so a cached pod is never written back.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use capstan_api::pairs::Pairs;
use k8s_openapi::api::core::v1::{ContainerPort, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "Decoded")]
pub struct CachedPod {
    /// Its metadata, labels excepted (`labels` holds them; `metadata.labels` is always `None`).
    pub metadata: ObjectMeta,
    pub labels: Pairs,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

/// A pod as served, before its labels move out of its metadata.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Decoded {
    metadata: ObjectMeta,
    spec: Option<PodSpec>,
    status: Option<PodStatus>,
}

impl From<Decoded> for CachedPod {
    fn from(Decoded { mut metadata, spec, status }: Decoded) -> Self {
        let labels = metadata.labels.take().unwrap_or_default();
        let labels = Pairs::of(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self { metadata, labels, spec, status }
    }
}

impl crate::selector::Labeled for CachedPod {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    #[serde(deserialize_with = "exact_list")]
    pub containers: Vec<Container>,
    /// Shared between pods with equal lists (most pods have only the API server's defaults).
    #[serde(deserialize_with = "shared_tolerations")]
    pub tolerations: Option<Arc<[Toleration]>>,
}

thread_local! {
    static LAST_TOLERATIONS: RefCell<Vec<Arc<[Toleration]>>> = const { RefCell::new(Vec::new()) };
}

fn shared_tolerations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<[Toleration]>>, D::Error> {
    let tolerations = Option::<Vec<Toleration>>::deserialize(deserializer)?;
    Ok(tolerations.map(|t| capstan_api::shared::shared(&LAST_TOLERATIONS, &t)))
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
    /// The `Ready` condition alone: the only one controllers read (a pod has five or so).
    #[serde(deserialize_with = "ready_condition")]
    pub conditions: Option<Vec<PodCondition>>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
}

/// A list without the spare room a growing list leaves (one container is kept in room for
/// four otherwise).
fn exact_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    let mut list = Vec::<T>::deserialize(deserializer)?;
    list.shrink_to_fit();
    Ok(list)
}

fn ready_condition<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<PodCondition>>, D::Error> {
    let conditions = Option::<Vec<PodCondition>>::deserialize(deserializer)?;
    Ok(conditions.map(|all| {
        let mut ready: Vec<_> = all.into_iter().filter(|c| c.type_ == "Ready").collect();
        // Collecting in place keeps the whole list's buffer.
        ready.shrink_to_fit();
        ready
    }))
}

/// A condition's type, status and when it last changed (readiness and availability).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type", deserialize_with = "word")]
    pub type_: Cow<'static, str>,
    #[serde(deserialize_with = "word")]
    pub status: Cow<'static, str>,
    pub last_transition_time: Option<Time>,
}

/// A condition's type or status: the usual ones are not allocated for every pod.
fn word<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'static, str>, D::Error> {
    const WORDS: [&str; 4] = ["Ready", "True", "False", "Unknown"];
    let text = Cow::<str>::deserialize(deserializer)?;
    Ok(match WORDS.iter().find(|w| **w == text) {
        Some(word) => Cow::Borrowed(word),
        None => Cow::Owned(text.into_owned()),
    })
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
        assert_eq!(pod.labels.get("app"), Some("web"));
        assert_eq!(pod.metadata.labels, None, "labels are kept once, outside the metadata");
        assert_eq!(crate::pods::controller_of(&pod.metadata).map(|r| r.uid.as_str()), Some("rs1"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.containers.capacity(), 1, "no spare room is kept");
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

    #[test]
    fn pods_keep_only_their_ready_condition_and_share_equal_tolerations() {
        let pod = |name: &str| -> CachedPod {
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"containers": [], "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 300}]},
                "status": {"conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]},
            }))
            .unwrap()
        };
        let (a, b) = (pod("a"), pod("b"));
        let conditions = a.status.as_ref().unwrap().conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 1);
        assert_eq!((&*conditions[0].type_, &*conditions[0].status), ("Ready", "False"));
        assert!(!crate::pods::is_ready(&a));
        let tolerations = |p: &CachedPod| p.spec.as_ref().unwrap().tolerations.clone().unwrap();
        assert!(Arc::ptr_eq(&tolerations(&a), &tolerations(&b)));
        assert_eq!(tolerations(&a)[0].toleration_seconds, Some(300));
    }
}
