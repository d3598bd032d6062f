//! The garbage collector: deletes objects whose owners are gone, and carries out foreground
//! (`foregroundDeletion`) and orphaning (`orphan`) deletion of owners, across every served kind.

mod graph;
pub mod metadata;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Error;
pub use graph::{Graph, Place};
use metadata::{Change, Informer, Metadata};

/// The finalizer of an owner deleted in the foreground (dependents first).
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an owner whose dependents are kept, without their reference to it.
pub const ORPHAN: &str = "orphan";

/// One kind the collector tracks.
pub struct Kind {
    pub api: Arc<ApiResource>,
    pub namespaced: bool,
    pub informer: Arc<Informer<Metadata>>,
}

/// State shared by the collector's per-kind controllers.
pub struct Collector {
    client: kube::Client,
    kinds: Vec<Kind>,
    graph: Mutex<Graph>,
    /// Per kind: reconciles the graph asks for (a change to an owner reaches its dependents).
    queues: Vec<mpsc::UnboundedSender<ObjectRef<Metadata>>>,
}

pub struct Context {
    kind: usize,
    collector: Arc<Collector>,
}

/// Every kind objects can be owned or collected in: served, listable, watchable, deletable.
/// Events are left out: they are numerous and nothing owns them.
pub fn collected_resources() -> impl Iterator<Item = (&'static capstan_api::Resource, ApiResource)>
{
    capstan_api::RESOURCES
        .iter()
        .filter(|r| {
            r.storage_plural.is_none()
                && r.kind != "Event"
                && ["list", "watch", "delete"].iter().all(|v| r.has_verb(v))
        })
        .map(|r| (r, metadata::api_resource(r)))
}

/// How an owner reference stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Gone (or replaced by an object of another uid).
    Dangling,
    /// Being deleted in the foreground.
    Waiting,
}

impl Collector {
    fn kind_of(&self, reference: &OwnerReference) -> Option<&Kind> {
        let (group, version) = match reference.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", reference.api_version.as_str()),
        };
        self.kinds.iter().find(|k| {
            k.api.group == group && k.api.version == version && k.api.kind == reference.kind
        })
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &*kind.api),
            None => Api::all_with(self.client.clone(), &*kind.api),
        }
    }

    /// The graph knows owners it has seen; one it has not seen is looked up live, so a
    /// dependent created just after its owner is never mistaken for an orphan.
    async fn owner(
        &self,
        reference: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<Owner, Error> {
        let known = self.graph.lock().unwrap_or_else(|e| e.into_inner()).known(&reference.uid);
        if let Some(waiting) = known {
            return Ok(if waiting { Owner::Waiting } else { Owner::Solid });
        }
        // An owner of a kind not served here cannot be judged: leave the dependent alone.
        let Some(kind) = self.kind_of(reference) else { return Ok(Owner::Solid) };
        let live = self.api(kind, namespace).get_metadata_opt(&reference.name).await?;
        Ok(match live {
            Some(owner) if owner.metadata.uid.as_deref() == Some(&reference.uid) => {
                if graph::waiting_for_dependents(&owner.metadata) {
                    Owner::Waiting
                } else {
                    Owner::Solid
                }
            }
            _ => Owner::Dangling,
        })
    }

    fn enqueue(&self, place: &Place) {
        if let (Some(kind), Some(queue)) = (self.kinds.get(place.kind), self.queues.get(place.kind))
        {
            let mut key = ObjectRef::new_with(&place.name, kind.api.clone());
            if let Some(ns) = &place.namespace {
                key = key.within(ns);
            }
            let _ = queue.send(key);
        }
    }

    fn lookup(&self, place: &Place) -> Option<Arc<Metadata>> {
        let kind = self.kinds.get(place.kind)?;
        let mut key = ObjectRef::new_with(&place.name, kind.api.clone());
        if let Some(ns) = &place.namespace {
            key = key.within(ns);
        }
        kind.informer.get(&key)
    }

    /// Applies a merge patch to an object's metadata, guarded by the resourceVersion it was
    /// computed from.
    async fn patch_metadata(
        &self,
        kind: usize,
        meta: &ObjectMeta,
        patch: serde_json::Value,
    ) -> Result<(), Error> {
        let kind = &self.kinds[kind];
        let mut patch = json!({"metadata": patch});
        patch["metadata"]["resourceVersion"] = json!(meta.resource_version);
        let api = self.api(kind, meta.namespace.as_deref());
        let name = meta.name.clone().unwrap_or_default();
        match api.patch_metadata(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, kind: usize, meta: &ObjectMeta, policy: &str) -> Result<(), Error> {
        let api = self.api(&self.kinds[kind], meta.namespace.as_deref());
        let name = meta.name.clone().unwrap_or_default();
        let params = DeleteParams {
            propagation_policy: Some(match policy {
                "Orphan" => kube::api::PropagationPolicy::Orphan,
                "Foreground" => kube::api::PropagationPolicy::Foreground,
                _ => kube::api::PropagationPolicy::Background,
            }),
            preconditions: Some(Preconditions { uid: meta.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        tracing::info!(kind = self.kinds[kind].api.kind, name, policy, "garbage collecting");
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by a new object of the same name: nothing to collect.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn without_finalizer(meta: &ObjectMeta, finalizer: &str) -> serde_json::Value {
    let left: Vec<&String> = meta.finalizers.iter().flatten().filter(|f| *f != finalizer).collect();
    json!({"finalizers": list_or_null(left)})
}

/// An emptied list is removed, as upstream serializes it.
fn list_or_null<T: serde::Serialize>(items: Vec<T>) -> serde_json::Value {
    if items.is_empty() { serde_json::Value::Null } else { json!(items) }
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// An owner being deleted with the `orphan` finalizer: its dependents drop their reference to it,
/// then the finalizer goes.
async fn orphan_dependents(ctx: &Context, meta: &ObjectMeta, uid: &str) -> Result<(), Error> {
    let c = &ctx.collector;
    let dependents = c.graph.lock().unwrap_or_else(|e| e.into_inner()).dependents_of(uid);
    for dependent in dependents {
        let Some(current) = c.lookup(&dependent.place) else { continue };
        let kept: Vec<&OwnerReference> =
            current.metadata.owner_references.iter().flatten().filter(|r| r.uid != uid).collect();
        c.patch_metadata(
            dependent.place.kind,
            &current.metadata,
            json!({"ownerReferences": list_or_null(kept)}),
        )
        .await?;
    }
    c.patch_metadata(ctx.kind, meta, without_finalizer(meta, ORPHAN)).await
}

/// An owner being deleted in the foreground: its dependents are collected first, and the
/// finalizer goes once none that block owner deletion is left.
async fn delete_dependents(ctx: &Context, meta: &ObjectMeta, uid: &str) -> Result<Action, Error> {
    let c = &ctx.collector;
    let dependents = c.graph.lock().unwrap_or_else(|e| e.into_inner()).dependents_of(uid);
    for dependent in &dependents {
        c.enqueue(&dependent.place);
    }
    if dependents.iter().any(|d| d.blocks_owner_deletion) {
        // The graph requeues this owner as each dependent goes.
        return Ok(Action::await_change());
    }
    c.patch_metadata(ctx.kind, meta, without_finalizer(meta, FOREGROUND)).await?;
    Ok(Action::await_change())
}

/// A dependent: collected when no owner is left standing; references to absent owners are
/// dropped while another owner stands.
async fn collect_if_orphaned(ctx: &Context, meta: &ObjectMeta, uid: &str) -> Result<(), Error> {
    let c = &ctx.collector;
    let references = meta.owner_references.clone().unwrap_or_default();
    let mut owners = Vec::with_capacity(references.len());
    for reference in &references {
        owners.push(c.owner(reference, meta.namespace.as_deref()).await?);
    }
    if owners.contains(&Owner::Solid) {
        if owners.iter().all(|o| *o == Owner::Solid) {
            return Ok(());
        }
        let kept: Vec<&OwnerReference> = references
            .iter()
            .zip(&owners)
            .filter(|(_, o)| **o == Owner::Solid)
            .map(|(r, _)| r)
            .collect();
        return c
            .patch_metadata(ctx.kind, meta, json!({"ownerReferences": list_or_null(kept)}))
            .await;
    }
    let has_dependents = c.graph.lock().unwrap_or_else(|e| e.into_inner()).has_dependents(uid);
    let policy = if owners.contains(&Owner::Waiting) && has_dependents {
        "Foreground"
    } else if has_finalizer(meta, ORPHAN) {
        "Orphan"
    } else if has_finalizer(meta, FOREGROUND) {
        "Foreground"
    } else {
        "Background"
    };
    c.delete(ctx.kind, meta, policy).await
}

pub async fn reconcile(object: Arc<Metadata>, ctx: Arc<Context>) -> Result<Action, Error> {
    let meta = &object.metadata;
    let Some(uid) = meta.uid.clone() else { return Ok(Action::await_change()) };
    if meta.deletion_timestamp.is_some() {
        if has_finalizer(meta, ORPHAN) {
            orphan_dependents(&ctx, meta, &uid).await?;
        } else if has_finalizer(meta, FOREGROUND) {
            return delete_dependents(&ctx, meta, &uid).await;
        }
        return Ok(Action::await_change());
    }
    if meta.owner_references.as_ref().is_some_and(|r| !r.is_empty()) {
        collect_if_orphaned(&ctx, meta, &uid).await?;
    }
    Ok(Action::await_change())
}

pub fn error_policy(_object: Arc<Metadata>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("garbage collector: {error}");
    Action::requeue(Duration::from_secs(2))
}

/// Records one change of objects of `kind` in the graph; returns the places it concerns.
fn record(graph: &mut Graph, kind: usize, change: &Change<Metadata>) -> Vec<Place> {
    let place = |object: &Metadata| Place {
        kind,
        namespace: object.metadata.namespace.clone(),
        name: object.metadata.name.clone().unwrap_or_default(),
    };
    match change {
        Change::Applied(o) => graph.applied(place(o), &o.metadata),
        Change::Deleted(o) => graph.deleted(&o.metadata),
        Change::Listed(objects) => {
            graph.listed(kind, objects.iter().map(|o| (place(o), &o.metadata)))
        }
    }
}

/// Keeps the graph current from every kind's changes, requeueing whom each change concerns.
async fn maintain_graph(
    collector: Arc<Collector>,
    changes: Vec<BoxStream<'static, Change<Metadata>>>,
) {
    let changes =
        changes.into_iter().enumerate().map(|(i, c)| c.map(move |change| (i, change)).boxed());
    let mut changes = stream::select_all(changes);
    while let Some((kind, change)) = changes.next().await {
        let affected = {
            let mut graph = collector.graph.lock().unwrap_or_else(|e| e.into_inner());
            record(&mut graph, kind, &change)
        };
        for place in &affected {
            collector.enqueue(place);
        }
    }
}

/// The graph from each kind's first list: it is complete before any owner acts on it (an
/// empty graph would let a foreground owner go before its dependents). Also returns whom it
/// concerns: every dependent and deleting object is looked at once at the start, as owners may
/// have gone while no collector ran.
async fn first_graph(changes: &mut [BoxStream<'static, Change<Metadata>>]) -> (Graph, Vec<Place>) {
    let mut graph = Graph::default();
    let mut affected = Vec::new();
    for (kind, changes) in changes.iter_mut().enumerate() {
        while let Some(change) = changes.next().await {
            affected.extend(record(&mut graph, kind, &change));
            if matches!(change, Change::Listed(_)) {
                break;
            }
        }
    }
    (graph, affected)
}

/// Runs until the task is dropped.
pub async fn run(client: kube::Client) {
    let mut kinds = Vec::new();
    let mut changes = Vec::new();
    let mut receivers = Vec::new();
    let mut queues = Vec::new();
    for (resource, api) in collected_resources() {
        let api = Arc::new(api);
        let (informer, kind_changes) = metadata::watch(&client, &api);
        kinds.push(Kind { api, namespaced: resource.namespaced, informer: Arc::new(informer) });
        changes.push(kind_changes);
        let (sender, receiver) = mpsc::unbounded_channel();
        queues.push(sender);
        receivers.push(receiver);
    }
    let (graph, affected) = first_graph(&mut changes).await;
    let collector = Arc::new(Collector { client, kinds, graph: Mutex::new(graph), queues });
    for place in &affected {
        collector.enqueue(place);
    }
    let graph_changes = maintain_graph(collector.clone(), changes);
    let controllers = receivers.into_iter().enumerate().map(|(i, receiver)| {
        let kind = &collector.kinds[i];
        let requests =
            stream::unfold(receiver, |mut r| async move { r.recv().await.map(|x| (x, r)) });
        // Only the graph asks for reconciles: most changes (a pod's status) concern no owner.
        Controller::for_shared_stream_with(
            stream::pending::<Arc<Metadata>>(),
            kind.informer.store(),
            kind.api.clone(),
        )
        .reconcile_on(requests)
        .run(reconcile, error_policy, Arc::new(Context { kind: i, collector: collector.clone() }))
        .for_each(|_| futures::future::ready(()))
    });
    tokio::join!(graph_changes, futures::future::join_all(controllers));
}

#[cfg(test)]
mod tests;
