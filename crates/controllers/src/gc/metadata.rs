//! The collector's metadata informers: one metadata-only watch and store per kind, with a
//! stream of changes (deletions included) for the ownership graph and the per-kind controllers.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use kube::api::{Api, ApiResource, ObjectMeta, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{Lookup, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use tokio::task::AbortHandle;

use crate::fanout::Fanout;

/// What happened to one object.
#[derive(Debug, Clone)]
pub enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// One watch of one resource type, its store, and the stream of its changes.
pub struct Informer<K: Lookup + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    changes: Fanout<Change<K>>,
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
    K: Lookup + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// Starts consuming `events` into a new store.
    pub fn start(
        events: BoxStream<'static, watcher::Result<Event<K>>>,
        dyntype: K::DynamicType,
    ) -> Self {
        let mut writer = Writer::new(dyntype.clone());
        let store = writer.as_reader();
        let changes = Fanout::default();
        let sender = changes.clone();
        let reader = store.clone();
        let watch = tokio::spawn(async move {
            let mut events = events.default_backoff().boxed();
            let mut before: Vec<Arc<K>> = Vec::new();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::debug!("informer watch: {e}");
                        continue;
                    }
                };
                if matches!(event, Event::Init) {
                    before = reader.state();
                }
                writer.apply_watcher_event(&event);
                match event {
                    Event::Apply(object) => {
                        let key = object.to_object_ref(dyntype.clone());
                        if let Some(stored) = reader.get(&key) {
                            sender.send(Change::Applied(stored));
                        }
                    }
                    Event::Delete(object) => {
                        sender.send(Change::Deleted(Arc::new(object)));
                    }
                    Event::InitDone => {
                        // Objects gone while the watch was down were deleted meanwhile.
                        for old in std::mem::take(&mut before) {
                            if reader.get(&old.to_object_ref(dyntype.clone())).is_none() {
                                sender.send(Change::Deleted(old));
                            }
                        }
                        for object in reader.state() {
                            sender.send(Change::Applied(object));
                        }
                    }
                    Event::Init | Event::InitApply(_) => {}
                }
            }
        })
        .abort_handle();
        Informer { store, changes, watch }
    }

    /// The shared, read-only cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every change from now on, preceded by every object already cached.
    pub fn changes(&self) -> BoxStream<'static, Change<K>> {
        let rest = self.changes.subscribe();
        let current: Vec<Change<K>> = self.store.state().into_iter().map(Change::Applied).collect();
        stream::iter(current).chain(rest).boxed()
    }

    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    pub fn get(&self, key: &ObjectRef<K>) -> Option<Arc<K>> {
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
pub fn watch(client: &kube::Client, resource: &Arc<ApiResource>) -> Informer<Metadata> {
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
