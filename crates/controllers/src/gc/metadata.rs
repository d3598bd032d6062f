//! The collector's metadata informers: one metadata-only watch per kind, a store of the objects
//! the collector may act on, and a stream of every change (deletions and relists included) for
//! the ownership graph.
//!
//! The store keeps only objects with owners or being deleted: reconciling any other object does
//! nothing, and the graph knows every object by uid and place (as a possible owner) anyway.
//! Most objects in a cluster are of the other sort, and a store entry costs most of a kilobyte.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::{Api, ApiResource, ObjectMeta, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{Lookup, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What happened to the objects of one kind.
#[derive(Debug, Clone)]
pub enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
    /// A list (the first, or after the watch broke) found these, every object of the kind:
    /// objects not among them were deleted meanwhile.
    Listed(Vec<Arc<K>>),
}

/// Whether the collector may act on an object: it has owners, or it is being deleted.
pub fn actionable(meta: &ObjectMeta) -> bool {
    meta.owner_references.as_ref().is_some_and(|r| !r.is_empty())
        || meta.deletion_timestamp.is_some()
}

/// One watch of one resource type and its store of actionable objects.
pub struct Informer<K: Lookup + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    watch: AbortHandle,
}

impl<K> Drop for Informer<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl<K> Informer<K>
where
    K: kube::Resource + Lookup + Clone + Debug + Send + Sync + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// Starts consuming `events` into a new store; every change, from the first list on, comes
    /// out of the returned stream (subscribed before the watch starts, so none is missed).
    pub fn start(
        events: BoxStream<'static, watcher::Result<Event<K>>>,
        dyntype: <K as Lookup>::DynamicType,
    ) -> (Self, BoxStream<'static, Change<K>>) {
        let mut writer = Writer::new(dyntype.clone());
        let store = writer.as_reader();
        let (sender, changes) = mpsc::unbounded_channel();
        let reader = store.clone();
        let watch = tokio::spawn(async move {
            let mut events = events.default_backoff().boxed();
            // The objects of a list in progress, actionable or not.
            let mut listing: Vec<Arc<K>> = Vec::new();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::debug!("informer watch: {e}");
                        continue;
                    }
                };
                let change = match event {
                    Event::Init => {
                        listing.clear();
                        writer.apply_watcher_event(&Event::Init);
                        None
                    }
                    Event::InitApply(object) => {
                        if actionable(object.meta()) {
                            writer.apply_watcher_event(&Event::InitApply(object.clone()));
                        }
                        listing.push(Arc::new(object));
                        None
                    }
                    Event::InitDone => {
                        writer.apply_watcher_event(&Event::InitDone);
                        Some(Change::Listed(std::mem::take(&mut listing)))
                    }
                    Event::Apply(object) if actionable(object.meta()) => {
                        let key = object.to_object_ref(dyntype.clone());
                        writer.apply_watcher_event(&Event::Apply(object));
                        reader.get(&key).map(Change::Applied)
                    }
                    // No longer actionable (its owners went, say): out of the store.
                    Event::Apply(object) => {
                        writer.apply_watcher_event(&Event::Delete(object.clone()));
                        Some(Change::Applied(Arc::new(object)))
                    }
                    Event::Delete(object) => {
                        writer.apply_watcher_event(&Event::Delete(object.clone()));
                        Some(Change::Deleted(Arc::new(object)))
                    }
                };
                if let Some(change) = change
                    && sender.send(change).is_err()
                {
                    return;
                }
            }
        })
        .abort_handle();
        let changes = futures::stream::unfold(changes, |mut changes| async move {
            changes.recv().await.map(|change| (change, changes))
        });
        (Informer { store, watch }, changes.boxed())
    }

    /// The shared, read-only cache of actionable objects.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    pub fn get(&self, key: &kube::runtime::reflector::ObjectRef<K>) -> Option<Arc<K>> {
        self.store.get(key)
    }
}

/// The object metadata of a kind, as the garbage collector tracks every kind.
pub type Metadata = PartialObjectMeta<AnyKind>;

/// Any kind the collector tracks, named by a shared `ApiResource`: every reference to an
/// object (a store key, a queued reconcile) carries its kind, and a `DynamicObject` reference
/// would carry a copy of the resource's five strings for each of the cluster's objects.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct AnyKind {
    metadata: ObjectMeta,
}

impl kube::Resource for AnyKind {
    type DynamicType = Arc<ApiResource>;
    type Scope = kube::core::DynamicResourceScope;

    fn kind(resource: &Self::DynamicType) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }
    fn group(resource: &Self::DynamicType) -> Cow<'_, str> {
        resource.group.as_str().into()
    }
    fn version(resource: &Self::DynamicType) -> Cow<'_, str> {
        resource.version.as_str().into()
    }
    fn api_version(resource: &Self::DynamicType) -> Cow<'_, str> {
        resource.api_version.as_str().into()
    }
    fn plural(resource: &Self::DynamicType) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Watches the metadata of every object of one kind, cluster-wide.
pub fn watch(
    client: &kube::Client,
    resource: &Arc<ApiResource>,
) -> (Informer<Metadata>, BoxStream<'static, Change<Metadata>>) {
    // PartialObjectMetadata lists and watches: the server sends metadata alone.
    let api: Api<Metadata> = Api::all_with(client.clone(), resource);
    // The collector reads names, uids, owners, finalizers and deletion state, never labels,
    // annotations or managedFields (often most of the size): it keeps an entry for every
    // object in the cluster, so what it drops here is dropped many times over.
    let events =
        watcher::watcher(api, watcher::Config::default()).modify(|object: &mut Metadata| {
            object.types = None;
            let metadata = &mut object.metadata;
            metadata.managed_fields = None;
            metadata.labels = None;
            metadata.annotations = None;
            metadata.generate_name = None;
            metadata.creation_timestamp = None;
        });
    Informer::start(events.boxed(), resource.clone())
}

/// kube's description of a served resource.
pub fn api_resource(resource: &capstan_api::Resource) -> ApiResource {
    ApiResource {
        group: resource.group.into(),
        version: resource.version.into(),
        api_version: resource.api_version(),
        kind: resource.kind.into(),
        plural: resource.plural.into(),
    }
}
