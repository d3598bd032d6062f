//! Pod garbage collection, as upstream's periodic sweep: finished pods beyond the threshold
//! (oldest first), pods bound to nodes that no longer exist, terminating pods on out-of-service
//! nodes, and terminating pods that were never scheduled.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::informer::Informer;

/// Upstream's sweep period.
const PERIOD: Duration = Duration::from_secs(20);
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

fn node_of(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())
}

fn finished(pod: &CachedPod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn out_of_service(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE && t.effect == "NoExecute"))
}

/// Why each pod to delete goes: (pod, reason), in deletion order.
pub fn doomed(
    pods: &[Arc<CachedPod>],
    nodes: &Store<Node>,
    threshold: usize,
) -> Vec<(Arc<CachedPod>, &'static str)> {
    let mut doomed = Vec::new();
    let mut terminated: Vec<&Arc<CachedPod>> =
        pods.iter().filter(|p| finished(p) && p.metadata.deletion_timestamp.is_none()).collect();
    if threshold > 0 && terminated.len() > threshold {
        terminated
            .sort_by(|a, b| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp));
        let excess = terminated.len() - threshold;
        doomed.extend(terminated.into_iter().take(excess).map(|p| (p.clone(), "terminated")));
    }
    for pod in pods {
        let reason = match node_of(pod) {
            Some(node) => match nodes.get(&ObjectRef::new(node)) {
                None => Some("orphaned"),
                Some(n) if out_of_service(&n) && pod.metadata.deletion_timestamp.is_some() => {
                    Some("out-of-service")
                }
                Some(_) => None,
            },
            None if pod.metadata.deletion_timestamp.is_some() => Some("unscheduled-terminating"),
            None => None,
        };
        if let Some(reason) = reason
            && !doomed.iter().any(|(p, _)| Arc::ptr_eq(p, pod))
        {
            doomed.push((pod.clone(), reason));
        }
    }
    doomed
}

async fn sweep(
    client: &kube::Client,
    pods: &Informer<CachedPod>,
    nodes: &Informer<Node>,
    threshold: usize,
) -> Result<(), Error> {
    for (pod, reason) in doomed(&pods.store().state(), &nodes.store(), threshold) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        if reason == "orphaned" {
            // The cache may lag a node's creation: only a node the API also lacks is gone.
            let node = node_of(&pod).unwrap_or_default();
            if Api::<Node>::all(client.clone()).get_opt(node).await?.is_some() {
                continue;
            }
        }
        // Finished pods go gracefully; the others have no kubelet left to finish them.
        let params = if reason == "terminated" {
            DeleteParams::default()
        } else {
            DeleteParams::default().grace_period(0)
        };
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..params
        };
        tracing::info!(pod = name, namespace, reason, "pod garbage collection");
        match Api::<Pod>::namespaced(client.clone(), &namespace).delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    pods: Informer<CachedPod>,
    nodes: Informer<Node>,
    threshold: usize,
) {
    pods.wait_until_ready().await;
    nodes.wait_until_ready().await;
    let mut ticks = tokio::time::interval(PERIOD);
    loop {
        ticks.tick().await;
        if let Err(e) = sweep(&client, &pods, &nodes, threshold).await {
            tracing::warn!("pod garbage collection: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::by_namespace_and_controller;
    use serde_json::json;

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        created: &str,
        terminating: bool,
    ) -> Arc<CachedPod> {
        let mut meta = json!({"name": name, "namespace": "default", "creationTimestamp": created});
        if terminating {
            meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(json!({"metadata": meta, "spec": {"nodeName": node, "containers": []}, "status": {"phase": phase}})).unwrap())
    }

    #[test]
    fn the_sweep_picks_excess_finished_orphaned_and_stuck_pods() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": OUT_OF_SERVICE, "effect": "NoExecute"}]}})).unwrap();
        let nodes = Informer::fixed(vec![node], by_namespace_and_controller).store();
        let pods = vec![
            pod("old-done", Some("n1"), "Succeeded", "2025-01-01T00:00:00Z", false),
            pod("new-done", Some("n1"), "Failed", "2025-01-02T00:00:00Z", false),
            pod("lost", Some("gone"), "Running", "2025-01-01T00:00:00Z", false),
            pod("stuck", Some("n1"), "Running", "2025-01-01T00:00:00Z", true),
            pod("running", Some("n1"), "Running", "2025-01-01T00:00:00Z", false),
            pod("never-scheduled", None, "Pending", "2025-01-01T00:00:00Z", true),
        ];
        let names: Vec<(String, &str)> = doomed(&pods, &nodes, 1)
            .into_iter()
            .map(|(p, r)| (p.metadata.name.clone().unwrap(), r))
            .collect();
        assert_eq!(
            names,
            [
                ("old-done".to_owned(), "terminated"),
                ("lost".to_owned(), "orphaned"),
                ("stuck".to_owned(), "out-of-service"),
                ("never-scheduled".to_owned(), "unscheduled-terminating"),
            ]
        );
    }
}
