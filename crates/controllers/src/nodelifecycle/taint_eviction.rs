//! Taint-based eviction (upstream's NoExecute taint manager): a pod on a node with a NoExecute
//! taint it does not tolerate is deleted at once; one it tolerates for a while, when that
//! `tolerationSeconds` runs out from the taint's `timeAdded`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::events::{EventRecorder, reference};
use crate::informer::{Change, Informer};

pub struct Context {
    pub client: kube::Client,
    pub nodes: Store<Node>,
    pub events: EventRecorder,
}

pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect_matches =
        toleration.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let key_matches = match toleration.key.as_deref() {
        None | Some("") => toleration.operator.as_deref() == Some("Exists"),
        Some(key) => key == taint.key,
    };
    let value_matches = match toleration.operator.as_deref() {
        Some("Exists") => true,
        _ => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
    };
    effect_matches && key_matches && value_matches
}

/// When a pod must leave a node with these NoExecute taints: `Some(None)` now, `Some(Some(t))`
/// at `t`, `None` never.
pub fn eviction_time(pod: &CachedPod, taints: &[Taint]) -> Option<Option<Timestamp>> {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
    let mut earliest: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(None);
        }
        // The most lenient matching toleration applies; one without seconds tolerates forever.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let seconds =
            matching.iter().filter_map(|t| t.toleration_seconds).max().unwrap_or(0).max(0);
        let added = taint.time_added.as_ref().map_or_else(Timestamp::now, |t| t.0);
        let at = added + jiff::SignedDuration::from_secs(seconds);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest.map(Some)
}

pub async fn reconcile(pod: Arc<CachedPod>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(Action::await_change());
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(node) = ctx.nodes.get(&ObjectRef::new(&node_name)) else {
        return Ok(Action::await_change());
    };
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let when = match eviction_time(&pod, &taints) {
        None => return Ok(Action::await_change()),
        Some(when) => when,
    };
    if let Some(at) = when {
        let now = Timestamp::now();
        if at > now {
            let wait = u64::try_from(at.as_millisecond() - now.as_millisecond()).unwrap_or(0);
            return Ok(Action::requeue(Duration::from_millis(wait)));
        }
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(
                pod = name,
                namespace,
                node = node_name,
                "evicting pod from tainted node"
            );
            ctx.events.normal(
                reference(&*pod),
                "TaintManagerEviction",
                "Delete",
                format!("Marking for deletion Pod {namespace}/{name}"),
            );
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

pub fn error_policy(_pod: Arc<CachedPod>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("taint eviction: {error}");
    Action::requeue(Duration::from_secs(1))
}

fn no_execute(node: &Node) -> Vec<Taint> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    taints.into_iter().filter(|t| t.effect == "NoExecute").collect()
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    nodes: Informer<Node>,
    pods: Informer<CachedPod>,
    events: EventRecorder,
) {
    nodes.wait_until_ready().await;
    pods.wait_until_ready().await;
    let pod_store = pods.store();
    // Only a change of a node's NoExecute taints concerns the pods on it.
    let node_triggers = nodes.subscribe().flat_map(move |change| {
        let node = match &change {
            Change::Updated { old, new } if no_execute(old) != no_execute(new) => Some(new.clone()),
            Change::Added(new) if !no_execute(new).is_empty() => Some(new.clone()),
            _ => None,
        };
        let refs: Vec<ObjectRef<CachedPod>> = node
            .map(|node| {
                pod_store
                    .state()
                    .iter()
                    .filter(|p| {
                        p.spec.as_ref().and_then(|s| s.node_name.as_ref())
                            == node.metadata.name.as_ref()
                    })
                    .map(|p| ObjectRef::from_obj(&**p))
                    .collect()
            })
            .unwrap_or_default();
        futures::stream::iter(refs)
    });
    let ctx = Arc::new(Context { client, nodes: nodes.store(), events });
    Controller::for_shared_stream(pods.touched(), pods.store())
        .reconcile_on(node_triggers)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(tolerations: serde_json::Value) -> CachedPod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": tolerations}})).unwrap()
    }

    fn unreachable(added: &str) -> Taint {
        serde_json::from_value(json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": added})).unwrap()
    }

    #[test]
    fn untolerated_taints_evict_now_tolerated_ones_after_their_seconds() {
        let taints = [unreachable("2025-01-01T00:00:00Z")];
        assert_eq!(eviction_time(&pod(json!([])), &taints), Some(None));
        let limited = pod(
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
        );
        assert_eq!(
            eviction_time(&limited, &taints).flatten().map(|t| t.to_string()),
            Some("2025-01-01T00:05:00Z".to_owned())
        );
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(eviction_time(&forever, &taints), None);
    }

    #[test]
    fn noschedule_taints_never_evict() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "effect": "NoSchedule"})).unwrap();
        assert_eq!(eviction_time(&pod(json!([])), &[taint]), None);
    }
}
