//! The ReplicaSet and ReplicationController controller (one implementation, two kinds): keeps
//! exactly `replicas` active pods matching the selector, adopting and releasing pods through
//! controller ownerReferences, and reports their readiness in status.

mod kinds;
mod status;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;

pub use kinds::ReplicaKind;
pub use status::{REPLICA_FAILURE, ReplicaStatus};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::events::{EventRecorder, reference};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer};
use crate::ownership::claim;
use crate::pods::{self, Ranked, controller_of, controller_ref, deletion_order};

/// Most pods created or deleted in one sync (upstream's burstReplicas).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch; each later batch doubles (upstream's SlowStartInitialBatchSize).
const SLOW_START_INITIAL_BATCH: usize = 1;

pub struct Context<K: ReplicaKind> {
    pub client: kube::Client,
    pub pods: Informer<CachedPod>,
    pub owners: Informer<K>,
    pub expectations: Arc<Expectations>,
    pub events: EventRecorder,
}

/// `kind/namespace/name`: the expectations key of a controller object.
pub fn key_of<K: ReplicaKind>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", K::kind(&()))
}

fn forbidden_by_terminating_namespace(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 403
        && s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

pub async fn reconcile<K: ReplicaKind>(
    owner: Arc<K>,
    ctx: Arc<Context<K>>,
) -> Result<Action, Error> {
    let namespace = owner.namespace().unwrap_or_default();
    let name = owner.name_any();
    let key = key_of::<K>(&namespace, &name);
    let Some(selector) = owner.selector() else {
        tracing::debug!(key, "empty or invalid selector: managing no pods");
        return Ok(Action::await_change());
    };
    let needs_sync = ctx.expectations.satisfied(&key);
    let deleting = owner.meta().deletion_timestamp.is_some();
    let uid = owner.uid().unwrap_or_default();
    let mut candidates = ctx.pods.indexed(&format!("owner:{uid}"));
    candidates.extend(ctx.pods.indexed(&format!("orphan:{namespace}")));
    let pod_api: Api<CachedPod> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = claim(&pod_api, &controller_ref(&*owner), deleting, &selector, candidates).await?;
    let active: Vec<&CachedPod> =
        owned.iter().map(|p| &**p).filter(|p| pods::is_active(p)).collect();

    let mut failure = None;
    let mut deleted = Vec::new();
    if needs_sync && !deleting {
        failure = manage_replicas(&*owner, &active, &key, &ctx, &mut deleted).await.err();
    }
    // Status reports what remains: pods deleted just now no longer count as available, so a
    // Deployment reading it never scales down more than maxUnavailable allows.
    let active: Vec<&CachedPod> =
        active.into_iter().filter(|p| !deleted.contains(&p.uid().unwrap_or_default())).collect();
    let previous = owner.status();
    let template_labels =
        owner.template().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone());
    let now = Timestamp::now();
    let status = ReplicaStatus::calculate(
        &active,
        &template_labels.unwrap_or_default(),
        owner.min_ready_seconds(),
        owner.meta().generation.unwrap_or(0),
        &previous,
        failure.as_ref().filter(|f| f.creating).map(|f| f.message.clone()),
        now,
    );
    if status != previous {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        let params = PatchParams::default();
        match api.patch_status(&name, &params, &Patch::Merge(status.patch())).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(failure) = failure {
        return Err(failure.error);
    }
    // Pods ready but not yet available become available without any event: look again then.
    if owner.min_ready_seconds() > 0 && status.ready_replicas != status.available_replicas {
        return Ok(Action::requeue(Duration::from_secs(owner.min_ready_seconds() as u64)));
    }
    Ok(Action::await_change())
}

/// Why a sync could not create or delete every pod it wanted to.
struct ManageFailure {
    creating: bool,
    message: String,
    error: Error,
}

/// Creates missing pods in slow-start batches, or deletes surplus ones in upstream's order.
async fn manage_replicas<K: ReplicaKind>(
    owner: &K,
    active: &[&CachedPod],
    key: &str,
    ctx: &Context<K>,
    deleted: &mut Vec<String>,
) -> Result<(), ManageFailure> {
    let namespace = owner.namespace().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let want = owner.replicas().max(0) as usize;
    let regarding = reference(owner);
    if active.len() < want {
        let Some(template) = owner.template() else { return Ok(()) };
        let count = (want - active.len()).min(BURST_REPLICAS);
        ctx.expectations.expect_creations(key, count);
        let pod = pods::from_template(template, &owner.name_any(), controller_ref(owner));
        let mut created = 0;
        let mut batch = SLOW_START_INITIAL_BATCH;
        let mut first_error = None;
        while created < count && first_error.is_none() {
            let size = batch.min(count - created);
            let params = PostParams::default();
            let results = future::join_all((0..size).map(|_| pod_api.create(&params, &pod))).await;
            for result in results {
                match result {
                    Ok(pod) => {
                        created += 1;
                        let note = format!("Created pod: {}", pod.name_any());
                        ctx.events.normal(regarding.clone(), "SuccessfulCreate", "Create", note);
                    }
                    Err(e) if forbidden_by_terminating_namespace(&e) => {
                        first_error.get_or_insert(None);
                    }
                    Err(e) => {
                        let note = format!("Error creating: {}", error_text(&e));
                        ctx.events.warning(regarding.clone(), "FailedCreate", "Create", note);
                        first_error.get_or_insert(Some(e));
                    }
                }
            }
            batch *= 2;
        }
        // Creations never issued or refused will never be observed.
        for _ in created..count {
            ctx.expectations.creation_observed(key);
        }
        return match first_error.flatten() {
            None => Ok(()),
            Some(e) => {
                Err(ManageFailure { creating: true, message: error_text(&e), error: e.into() })
            }
        };
    }
    if active.len() > want {
        let count = (active.len() - want).min(BURST_REPLICAS);
        let co_located = co_located_counts(owner, ctx);
        let mut ranked: Vec<Ranked> = active
            .iter()
            .map(|pod| Ranked {
                pod,
                co_located: node_of(pod).and_then(|n| co_located.get(n)).copied().unwrap_or(0),
            })
            .collect();
        ranked.sort_by(deletion_order);
        let doomed: Vec<&CachedPod> = ranked.iter().take(count).map(|r| r.pod).collect();
        ctx.expectations.expect_deletions(key, doomed.iter().filter_map(|p| p.uid()));
        let results = future::join_all(doomed.iter().map(|pod| {
            let params = DeleteParams {
                preconditions: Some(Preconditions { uid: pod.uid(), resource_version: None }),
                ..DeleteParams::default()
            };
            let api = pod_api.clone();
            async move { (api.delete(&pod.name_any(), &params).await, *pod) }
        }))
        .await;
        let mut first_error = None;
        for (result, pod) in results {
            match result {
                Ok(_) => {
                    deleted.push(pod.uid().unwrap_or_default());
                    let note = format!("Deleted pod: {}", pod.name_any());
                    ctx.events.normal(regarding.clone(), "SuccessfulDelete", "Delete", note);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    deleted.push(pod.uid().unwrap_or_default());
                    ctx.expectations.deletion_observed(key, &pod.uid().unwrap_or_default());
                }
                Err(e) => {
                    ctx.expectations.deletion_observed(key, &pod.uid().unwrap_or_default());
                    let note = format!("Error deleting: {}", error_text(&e));
                    ctx.events.warning(regarding.clone(), "FailedDelete", "Delete", note);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(ManageFailure {
                creating: false,
                message: error_text(&e),
                error: e.into(),
            });
        }
    }
    Ok(())
}

fn error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn node_of(pod: &CachedPod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// Active pods per node among the owner's related pods: its own, and those of the other
/// objects its own controller (a Deployment) controls.
fn co_located_counts<K: ReplicaKind>(owner: &K, ctx: &Context<K>) -> HashMap<String, usize> {
    let siblings: Vec<String> = match controller_of(owner.meta()) {
        Some(parent) => ctx
            .owners
            .indexed(&format!("owner:{}", parent.uid))
            .iter()
            .filter_map(|o| o.uid())
            .collect(),
        None => owner.uid().into_iter().collect(),
    };
    let mut counts = HashMap::new();
    for uid in siblings {
        for pod in ctx.pods.indexed(&format!("owner:{uid}")) {
            if let Some(node) = node_of(&pod).filter(|_| pods::is_active(&pod)) {
                *counts.entry(node.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

pub fn error_policy<K: ReplicaKind>(owner: Arc<K>, error: &Error, _ctx: Arc<Context<K>>) -> Action {
    tracing::warn!("{} {}: {error}", K::CONTROLLER, owner.name_any());
    Action::requeue(Duration::from_secs(5))
}

/// Marks expectations observed for a pod change, and says which owners it concerns: its
/// controller of kind `K`, or for an orphan every `K` in its namespace whose selector matches.
fn observe_pod_change<K: ReplicaKind>(
    change: &Change<CachedPod>,
    owners: &Informer<K>,
    expectations: &Expectations,
) -> Vec<ObjectRef<K>> {
    let kind = K::kind(&());
    let owner_key = |pod: &CachedPod| {
        controller_of(&pod.metadata)
            .filter(|r| r.kind == kind)
            .map(|r| key_of::<K>(&pod.namespace().unwrap_or_default(), &r.name))
    };
    match change {
        Change::Added(pod) => {
            if let Some(key) = owner_key(pod) {
                expectations.creation_observed(&key);
                if pod.metadata.deletion_timestamp.is_some() {
                    expectations.deletion_observed(&key, &pod.uid().unwrap_or_default());
                }
            }
        }
        Change::Updated { old, new } => {
            if new.metadata.deletion_timestamp.is_some()
                && old.metadata.deletion_timestamp.is_none()
                && let Some(key) = owner_key(new)
            {
                expectations.deletion_observed(&key, &new.uid().unwrap_or_default());
            }
        }
        Change::Deleted(pod) => {
            if let Some(key) = owner_key(pod) {
                expectations.deletion_observed(&key, &pod.uid().unwrap_or_default());
            }
        }
    }
    let mut refs = Vec::new();
    for pod in change.objects() {
        let namespace = pod.namespace().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(r) if r.kind == kind => refs.push(ObjectRef::new(&r.name).within(&namespace)),
            Some(_) => {}
            None => refs.extend(
                owners
                    .indexed(&format!("ns:{namespace}"))
                    .iter()
                    .filter(|o| o.selector().is_some_and(|s| s.matches(&*pod)))
                    .map(|o| ObjectRef::from_obj(&**o)),
            ),
        }
    }
    refs
}

/// Runs the controller for `K` until the task is dropped.
pub async fn run<K: ReplicaKind>(
    client: kube::Client,
    pods: Informer<CachedPod>,
    owners: Informer<K>,
    events: EventRecorder,
    concurrency: u16,
) {
    pods.wait_until_ready().await;
    owners.wait_until_ready().await;
    let expectations = Arc::new(Expectations::default());
    let pod_triggers = pods.subscribe().flat_map({
        let owners = owners.clone();
        let expectations = expectations.clone();
        move |change| futures::stream::iter(observe_pod_change(&change, &owners, &expectations))
    });
    let owner_changes = owners.subscribe().flat_map({
        let expectations = expectations.clone();
        move |change| {
            if let Change::Deleted(gone) = &change {
                let namespace = gone.namespace().unwrap_or_default();
                expectations.forget(&key_of::<K>(&namespace, &gone.name_any()));
            }
            futures::stream::iter(change.objects())
        }
    });
    // Everything cached at start is synced once; changes after subscribing follow.
    let owner_changes = futures::stream::iter(owners.store().state()).chain(owner_changes);
    let ctx = Arc::new(Context { client, pods, owners: owners.clone(), expectations, events });
    let counters = crate::metrics::counters(K::CONTROLLER);
    // Few syncs at once (upstream's 5 workers): triggers for an object that waits are merged,
    // so a burst of pod changes costs one status write, not one each.
    Controller::for_shared_stream(owner_changes, owners.store())
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_on(pod_triggers)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| {
            counters.reconciled();
            future::ready(())
        })
        .await;
}
