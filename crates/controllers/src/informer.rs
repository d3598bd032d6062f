//! Shared informers: one watch and one reflector store per resource type in the process, with
//! secondary indexes and a fan-out of change notifications to every controller that cares.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;

use crate::fanout::Fanout;

/// What happened to an object, as its subscribers see it.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// First seen (created, or present at a relist and unknown before).
    Added(Arc<K>),
    Updated {
        old: Arc<K>,
        new: Arc<K>,
    },
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The objects a change concerns (both versions of an update: labels or owners may differ).
    pub fn objects(&self) -> Vec<Arc<K>> {
        match self {
            Change::Added(o) | Change::Deleted(o) => vec![o.clone()],
            Change::Updated { old, new } => vec![old.clone(), new.clone()],
        }
    }
}

/// The key an object is indexed under: its namespace and name only (a reference from
/// `ObjectRef::from_obj` also carries its uid and resourceVersion, which the index, holding
/// several references per object, would keep for every object in the cluster).
fn key_of<K: kube::Resource<DynamicType = ()>>(object: &K) -> ObjectRef<K> {
    let mut key = ObjectRef::from_obj(object);
    key.extra = Default::default();
    key
}

/// A change seen in the watch, told once the store holds it.
enum Noted<K: kube::Resource> {
    /// Created or updated (`old`: the version before); the new version is read from the store.
    Applied {
        old: Option<Arc<K>>,
        key: ObjectRef<K>,
    },
    Deleted(Arc<K>),
}

/// Index keys for an object, e.g. its namespace or its controller's uid.
pub type IndexFn<K> = fn(&K) -> Vec<String>;

/// Index key → the objects filed under it (one shared reference per object, whatever the
/// number of keys it is filed under).
type Index<K> = HashMap<String, HashSet<Arc<ObjectRef<K>>>>;

/// One shared cache of `K`: a kube reflector `Store` plus indexes, kept by one watch.
pub struct Informer<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store: Store<K>,
    index: Arc<RwLock<Index<K>>>,
    changes: Fanout<Change<K>>,
}

impl<K> Clone for Informer<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), index: self.index.clone(), changes: self.changes.clone() }
    }
}

impl<K> Informer<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// An informer for `api`, and the future that keeps it fed (the watch runs while it is
    /// polled, so dropping it with the controllers stops the watch too).
    pub fn new(
        api: Api<K>,
        config: watcher::Config,
        index_fn: IndexFn<K>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let informer = Self { store, index: Arc::default(), changes: Fanout::default() };
        let feed = informer.clone().feed(api, config, writer, index_fn);
        (informer, feed)
    }

    async fn feed(
        self,
        api: Api<K>,
        config: watcher::Config,
        writer: reflector::store::Writer<K>,
        index_fn: IndexFn<K>,
    ) {
        // No controller reads managedFields; they are often most of an object's size.
        let events = watcher::watcher(api, config)
            .modify(|object: &mut K| object.meta_mut().managed_fields = None)
            .default_backoff();
        self.apply(events, writer, index_fn).await;
    }

    /// Applies watcher events to the store and indexes, then tells subscribers.
    async fn apply(
        self,
        events: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send,
        mut writer: reflector::store::Writer<K>,
        index_fn: IndexFn<K>,
    ) {
        let mut events = std::pin::pin!(events);
        // Objects known before a relist; what the relist does not mention again was deleted.
        let mut relisting: Option<HashMap<ObjectRef<K>, Arc<K>>> = None;
        // Changes seen during a relist: the reflector swaps its store in only at InitDone, so
        // they are told then (a reconcile woken earlier would read the store before the relist).
        let mut held: Vec<Noted<K>> = Vec::new();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::debug!("informer watch for {}: {error}", K::kind(&()));
                    continue;
                }
            };
            let mut notify = Vec::new();
            match &event {
                Event::Init => {
                    relisting =
                        Some(self.store.state().into_iter().map(|o| (key_of(&*o), o)).collect());
                }
                Event::InitApply(obj) | Event::Apply(obj) => {
                    let key = key_of(obj);
                    let old = match relisting.as_mut() {
                        Some(known) if matches!(event, Event::InitApply(_)) => known.remove(&key),
                        _ => self.store.get(&key),
                    };
                    self.reindex(old.as_deref(), Some(obj), &key, index_fn);
                    notify.push(Noted::Applied { old, key });
                }
                Event::Delete(obj) => {
                    let key = key_of(obj);
                    self.reindex(Some(obj), None, &key, index_fn);
                    notify.push(Noted::Deleted(Arc::new(obj.clone())));
                }
                Event::InitDone => {
                    for (key, gone) in relisting.take().unwrap_or_default() {
                        self.reindex(Some(&gone), None, &key, index_fn);
                        notify.push(Noted::Deleted(gone));
                    }
                }
            }
            writer.apply_watcher_event(&event);
            if relisting.is_some() {
                held.append(&mut notify);
                continue;
            }
            // The store is updated before anyone is told, so a woken reconcile sees the change;
            // the new version told is the store's own (one copy of each object is kept).
            for noted in held.drain(..).chain(notify) {
                let change = match noted {
                    Noted::Applied { old, key } => match (old, self.store.get(&key)) {
                        (_, None) => continue, // deleted again within a relist: told as such
                        (Some(old), Some(new)) => Change::Updated { old, new },
                        (None, Some(new)) => Change::Added(new),
                    },
                    Noted::Deleted(gone) => Change::Deleted(gone),
                };
                self.changes.send(change);
            }
        }
    }

    fn reindex(&self, old: Option<&K>, new: Option<&K>, key: &ObjectRef<K>, index_fn: IndexFn<K>) {
        let old_keys = old.map(index_fn).unwrap_or_default();
        let new_keys = new.map(index_fn).unwrap_or_default();
        if old_keys == new_keys && old.is_some() && new.is_some() {
            return;
        }
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        // The reference already filed under a key the object keeps, so it stays one allocation.
        let mut kept = None;
        for k in &old_keys {
            if new_keys.contains(k) {
                kept = kept.or_else(|| index.get(k).and_then(|set| set.get(key)).cloned());
            } else if let Some(set) = index.get_mut(k) {
                set.remove(key);
                if set.is_empty() {
                    index.remove(k);
                }
            }
        }
        let shared = kept.unwrap_or_else(|| Arc::new(key.clone()));
        for k in new_keys.into_iter().filter(|k| !old_keys.contains(k)) {
            index.entry(k).or_default().insert(shared.clone());
        }
    }

    /// An informer holding `objects`, with no watch behind it (for tests).
    #[cfg(test)]
    pub fn fixed(objects: Vec<K>, index_fn: IndexFn<K>) -> Self {
        let (store, mut writer) = reflector::store();
        let informer = Self { store, index: Arc::default(), changes: Fanout::default() };
        writer.apply_watcher_event(&Event::Init);
        for object in objects {
            informer.reindex(None, Some(&object), &key_of(&object), index_fn);
            writer.apply_watcher_event(&Event::InitApply(object));
        }
        writer.apply_watcher_event(&Event::InitDone);
        informer
    }

    /// The reflector store (for `Controller::for_shared_stream` and lookups by name).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Cached objects filed under `key` by the index function.
    pub fn indexed(&self, key: &str) -> Vec<Arc<K>> {
        let refs: Vec<Arc<ObjectRef<K>>> = {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            index.get(key).map(|set| set.iter().cloned().collect()).unwrap_or_default()
        };
        refs.iter().filter_map(|r| self.store.get(r)).collect()
    }

    /// Waits until the first list is in the store.
    pub async fn wait_until_ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// Every change from now on, however far behind the subscriber falls.
    pub fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        self.changes.subscribe()
    }

    /// Every cached object now, then the objects each later change concerns: a Controller's
    /// trigger stream.
    pub fn touched(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let changes = self.subscribe();
        let now = self.store.state();
        futures::stream::iter(now)
            .chain(changes.flat_map(|change| futures::stream::iter(change.objects())))
    }
}

/// Index keys shared by the workload kinds: `ns:<namespace>`, and `owner:<uid>` for an object
/// with a controller or `orphan:<namespace>` for one without.
pub fn by_namespace_and_controller<K: kube::Resource>(object: &K) -> Vec<String> {
    let meta = object.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let controller = meta
        .owner_references
        .as_ref()
        .and_then(|refs| refs.iter().find(|r| r.controller == Some(true)));
    vec![
        format!("ns:{namespace}"),
        match controller {
            Some(owner) => format!("owner:{}", owner.uid),
            None => format!("orphan:{namespace}"),
        },
    ]
}

/// Pods by namespace and controller, and by the node they are bound to.
pub fn pods_by_namespace_controller_and_node(pod: &crate::cached_pod::CachedPod) -> Vec<String> {
    let mut keys = by_namespace_and_controller(pod);
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        keys.push(node_index_key(node));
    }
    keys
}

/// The index key of the pods bound to `node`.
pub fn node_index_key(node: &str) -> String {
    format!("node:{node}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn configmap(data: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".into());
        cm.metadata.namespace = Some("ns".into());
        cm.data = Some([("k".to_owned(), data.to_owned())].into());
        cm
    }

    fn data(cm: &ConfigMap) -> String {
        cm.data.as_ref().and_then(|d| d.get("k")).cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn changes_seen_in_a_relist_are_told_once_the_store_holds_the_relist() {
        let (store, writer) = reflector::store();
        let informer = Informer { store, index: Arc::default(), changes: Fanout::default() };
        let mut told = informer.subscribe().boxed();
        let (events, feed) = futures::channel::mpsc::unbounded();
        let fed = tokio::spawn(informer.clone().apply(feed, writer, by_namespace_and_controller));
        for event in [Event::Init, Event::InitApply(configmap("v1")), Event::InitDone] {
            events.unbounded_send(Ok(event)).unwrap();
        }
        let Some(Change::Added(first)) = told.next().await else { panic!("first list untold") };
        assert_eq!(data(&first), "v1");

        // A relist (after 410 Gone) brings a newer version.
        events.unbounded_send(Ok(Event::Init)).unwrap();
        events.unbounded_send(Ok(Event::InitApply(configmap("v2")))).unwrap();
        tokio::task::yield_now().await;
        let pending = tokio::time::timeout(std::time::Duration::from_millis(50), told.next()).await;
        assert!(pending.is_err(), "a change was told before the relist was in the store");
        events.unbounded_send(Ok(Event::InitDone)).unwrap();
        let Some(Change::Updated { old, new }) = told.next().await else { panic!("relist untold") };
        assert_eq!((data(&old), data(&new)), ("v1".into(), "v2".into()));
        let cached = informer.store().get(&ObjectRef::new("c").within("ns")).unwrap();
        assert_eq!(data(&cached), "v2", "the store holds the relist when the change is told");
        assert!(Arc::ptr_eq(&cached, &new), "the told version is the store's own copy");

        // A watched update is told with the store's copy too.
        events.unbounded_send(Ok(Event::Apply(configmap("v3")))).unwrap();
        let Some(Change::Updated { old, new }) = told.next().await else { panic!("update untold") };
        assert!(Arc::ptr_eq(&old, &cached));
        let cached = informer.store().get(&ObjectRef::new("c").within("ns")).unwrap();
        assert!(Arc::ptr_eq(&cached, &new) && data(&new) == "v3");
        fed.abort();
    }

    #[test]
    fn an_object_is_filed_under_each_of_its_keys_as_one_reference() {
        fn by_data(cm: &ConfigMap) -> Vec<String> {
            vec!["ns:ns".into(), format!("data:{}", data(cm))]
        }
        let informer = Informer::fixed(vec![configmap("a")], by_data);
        let filed = |key: &str| {
            let index = informer.index.read().unwrap();
            index.get(key).map(|set| set.iter().next().unwrap().clone())
        };
        let (by_ns, by_a) = (filed("ns:ns").unwrap(), filed("data:a").unwrap());
        assert!(Arc::ptr_eq(&by_ns, &by_a));
        let key = key_of(&configmap("b"));
        informer.reindex(Some(&configmap("a")), Some(&configmap("b")), &key, by_data);
        assert!(filed("data:a").is_none(), "a key the object left is dropped");
        let by_b = filed("data:b").unwrap();
        assert!(Arc::ptr_eq(&by_b, &filed("ns:ns").unwrap()), "a new key shares the reference");
        assert_eq!(informer.indexed("data:b").len(), 1);
    }
}
