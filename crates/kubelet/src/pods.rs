//! The pod loop: one shared watch of the pods bound to this agent's nodes feeding a kube-rs
//! Controller that syncs each pod through its node's pod worker (one sync per pod at a time,
//! a bounded number at once), writes the status, and finishes graceful deletion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};

use crate::runtime::PodSandboxFilter;
use crate::{Error, KubeletNode, status_manager};

/// A pod is looked at again at least this often, even if nothing announced a change.
const RESYNC: Duration = Duration::from_secs(300);
/// How often runtime leftovers of pods gone from the API are cleaned up.
const HOUSEKEEPING: Duration = Duration::from_secs(10);

pub struct Context {
    client: kube::Client,
    nodes: Arc<HashMap<String, Arc<KubeletNode>>>,
}

/// The field selector of the one pod watch: this node's pods, or every bound pod when one
/// process runs many nodes (pods of other nodes are ignored).
fn field_selector(nodes: &HashMap<String, Arc<KubeletNode>>) -> String {
    match nodes.keys().collect::<Vec<_>>().as_slice() {
        [only] => format!("spec.nodeName={only}"),
        _ => "spec.nodeName!=".to_owned(),
    }
}

pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(node) =
        pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).and_then(|n| ctx.nodes.get(n))
    else {
        return Ok(Action::await_change());
    };
    if !node.is_registered() {
        return Err(Error::NotRegistered(node.identity.name.clone()));
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let result = node.worker.sync(&pod).await?;
    status_manager::write(&api, &pod, result.status).await?;
    if result.ready_to_delete {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
            ..Default::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api.delete(name, &params).await {
            Ok(_) => {}
            // Already gone, or a new pod of the same name: ours is gone either way.
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        node.worker.remove_pod(&uid).await?;
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(result.requeue_after.unwrap_or(RESYNC).min(RESYNC)))
}

pub fn error_policy(pod: Arc<Pod>, error: &Error, _ctx: Arc<Context>) -> Action {
    match error {
        Error::NotRegistered(_) => Action::requeue(Duration::from_secs(1)),
        Error::Api(kube::Error::Api(status)) if status.code == 409 => {
            Action::requeue(Duration::from_millis(500))
        }
        _ => {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            tracing::warn!(pod = name, "syncing pod: {error}");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

/// Runs until dropped.
pub async fn run(
    client: kube::Client,
    nodes: Arc<HashMap<String, Arc<KubeletNode>>>,
    concurrency: u16,
) {
    let pods: Api<Pod> = Api::all(client.clone());
    let watch = watcher::Config::default().fields(&field_selector(&nodes));
    // Containers that end on their own (runtime events) wake their pod's sync.
    let events = futures::stream::select_all(
        nodes.values().map(|node| node.worker.runtime.container_events()),
    )
    .map(|event| ObjectRef::<Pod>::new(&event.pod.name).within(&event.pod.namespace));
    let (store, writer) = reflector::store();
    // 50,000 pods' managedFields would double the cache; the kubelet never reads them (and an
    // update without them keeps the stored ones).
    let pods = reflector(
        writer,
        watcher(pods, watch).default_backoff().modify(|pod: &mut Pod| {
            pod.metadata.managed_fields = None;
        }),
    )
    .applied_objects();
    let controller = Controller::for_stream(pods, store)
        .with_config(controller::Config::default().concurrency(concurrency.max(1)))
        .reconcile_on(events);
    let store = controller.store();
    let housekeeping = tokio::spawn(housekeeping(store, nodes.clone()));
    let _stop = AbortOnDrop(housekeeping.abort_handle());
    controller
        .run(reconcile, error_policy, Arc::new(Context { client, nodes }))
        .for_each(|_| async {})
        .await;
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes what the runtime still holds for pods the API no longer has (force-deleted pods),
/// like upstream's HandlePodCleanups.
async fn housekeeping(store: Store<Pod>, nodes: Arc<HashMap<String, Arc<KubeletNode>>>) {
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let mut ticks = tokio::time::interval(HOUSEKEEPING);
    loop {
        ticks.tick().await;
        let known: HashSet<String> =
            store.state().iter().filter_map(|p| p.metadata.uid.clone()).collect();
        for node in nodes.values() {
            let runtime = &node.worker.runtime;
            let Ok(sandboxes) = runtime.list_pod_sandboxes(&PodSandboxFilter::default()).await
            else {
                continue;
            };
            let orphans: HashSet<String> = sandboxes
                .into_iter()
                .map(|s| s.metadata.uid)
                .filter(|u| !known.contains(u))
                .collect();
            for uid in orphans {
                if let Err(e) = node.worker.remove_pod(&uid).await {
                    tracing::warn!(node = %node.identity.name, uid, "removing a deleted pod: {e}");
                }
            }
        }
    }
}
