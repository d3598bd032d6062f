//! The watch cache: every stored object in memory, fed by one ordered store watch on
//! `/registry/`, so lists, gets and watches are served without touching the store and a read
//! can be made consistent by waiting for the cache to reach the store's current revision.
//!
//! Each object is kept once, as the JSON bytes served to clients (with its resourceVersion set),
//! plus the few parsed fields selectors need.
//!
//! Events are not kept (`UNCACHED`): as with upstream's default watch cache sizes, they are
//! served from the store. They are as many as the objects they tell about, written once and
//! rarely read, so keeping them would cost memory for every event in the cluster.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_store::{EventKind, KeyValue, ListRequest, Revision, Store, StoreError, WatchEvent};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use capstan_api::pairs::Pairs;

use crate::layout::Layout;

/// Events a watcher may fall behind before it is closed (it re-watches from where it was).
const WATCHER_BUFFER: usize = 4096;
/// How long a read waits for the cache to catch up with the revision it asks for.
pub const CATCH_UP: Duration = Duration::from_secs(3);
const LIST_PAGE: usize = 10_000;
/// Resources (by storage plural) served from the store instead of the cache.
pub const UNCACHED: &[&str] = &["events"];
/// History younger than this is kept beyond the configured size (up to `HISTORY_GROWTH` times
/// it: 102,400 events at the default 4096), so a watcher that falls behind in a burst resumes
/// instead of relisting (upstream's watch cache grows the same way, keeping 75 s of events).
const HISTORY_FRESH: Duration = Duration::from_secs(75);
const HISTORY_GROWTH: usize = 25;
/// ... and while the objects it holds (versions before included) stay under this size: a burst
/// of large objects keeps fewer events rather than growing without bound. It is sized so that
/// watchers closed during a burst of tens of thousands of pod creations resume instead of
/// relisting (at 16 MiB they relisted). The configured size (by default `WATCHER_BUFFER`, what
/// a watcher may fall behind by) is kept whatever its bytes.
const HISTORY_FRESH_BYTES: usize = 48 << 20;

/// One object as served.
#[derive(Debug)]
pub struct CachedObject {
    /// Its store key, `/registry/<plural>/[<namespace>/]<name>`: its name and namespace are
    /// read from it rather than kept again.
    pub key: Box<str>,
    /// The object's JSON, resourceVersion included.
    pub bytes: Bytes,
    pub revision: Revision,
    pub labels: Pairs,
    /// The resource `fields` were computed for (the one stored under this key's plural).
    pub fields_of: Option<&'static capstan_api::Resource>,
    /// Its selectable fields' values, "" ones left out.
    pub fields: FieldValues,
    /// Where its metadata and managed fields lie in `bytes`.
    pub layout: Option<Layout>,
}

/// An object's selectable field values in one string, each with its field's position in
/// `cached_field_labels` and where it ends (the labels are the same for every object).
#[derive(Debug, Default)]
pub struct FieldValues {
    text: Box<str>,
    ends: Box<[(u16, u32)]>,
}

impl FieldValues {
    fn of(values: &[(usize, String)]) -> Self {
        let text: String = values.iter().map(|(_, value)| value.as_str()).collect();
        let mut end = 0;
        let ends = values
            .iter()
            .map(|(position, value)| {
                end += value.len();
                // A resource has a few selectable fields; objects are far smaller than 4 GiB.
                (*position as u16, end as u32)
            })
            .collect();
        Self { text: text.into_boxed_str(), ends }
    }

    /// The value of the field at `position`; `None` when it is "".
    pub fn get(&self, position: usize) -> Option<&str> {
        let mut start = 0;
        for &(at, end) in &self.ends {
            if usize::from(at) == position {
                return self.text.get(start..end as usize);
            }
            start = end as usize;
        }
        None
    }
}

impl CachedObject {
    /// Parses a stored value and stamps its resourceVersion.
    pub fn decode(kv: &KeyValue) -> Option<Self> {
        let fields_of = storage_plural(&kv.key).and_then(|plural| {
            capstan_api::RESOURCES.iter().find(|r| r.storage_plural.is_none() && r.plural == plural)
        });
        // Only what selectors and the served forms read is parsed.
        let object = capstan_api::fields::decode_selectable(fields_of, &kv.value).ok()?;
        let metadata = object.get("metadata")?.as_object()?;
        // The stored bytes get the resourceVersion spliced in; only a value that (unusually)
        // carries one already is written out again.
        let spliced = match metadata.contains_key("resourceVersion") {
            false => Layout::of(&kv.value).map(|layout| layout.stamp(&kv.value, kv.mod_revision)),
            true => None,
        };
        metadata.get("name")?.as_str()?;
        let labels = metadata
            .get("labels")
            .and_then(Value::as_object)
            .map(Pairs::of_labels)
            .unwrap_or_default();
        let fields = fields_of
            .map(|resource| capstan_api::fields::non_empty_field_values(resource, &object))
            .unwrap_or_default();
        let fields = FieldValues::of(&fields);
        let (bytes, layout) = match spliced {
            Some((buffer, layout)) => (Bytes::from(buffer), Some(layout)),
            None => {
                let mut object: Value = serde_json::from_slice(&kv.value).ok()?;
                let revision = Value::String(kv.mod_revision.to_string());
                object["metadata"]["resourceVersion"] = revision;
                // Sized for the stored value plus the resourceVersion, so no doubled buffer is
                // kept.
                let mut buffer = Vec::with_capacity(kv.value.len() + 40);
                serde_json::to_writer(&mut buffer, &object).ok()?;
                buffer.shrink_to_fit();
                let layout = Layout::of(&buffer);
                (Bytes::from(buffer), layout)
            }
        };
        Some(Self {
            key: kv.key.as_str().into(),
            bytes,
            revision: kv.mod_revision,
            labels,
            fields_of,
            fields,
            layout,
        })
    }

    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// The namespace segment of its key, when it has one.
    pub fn namespace(&self) -> Option<&str> {
        let mut segments = self.key.strip_prefix("/registry/")?.split('/').skip(1);
        let (first, second) = (segments.next(), segments.next());
        second.and(first)
    }

    /// A selectable field's value when it was computed at decoding, without parsing again.
    pub fn field(&self, resource: &'static capstan_api::Resource, field: &str) -> Option<String> {
        let computed = self.fields_of.is_some_and(|r| std::ptr::eq(r, resource));
        if !computed {
            return None;
        }
        let position =
            capstan_api::fields::cached_field_labels(resource).position(|l| l == field)?;
        Some(self.fields.get(position).unwrap_or_default().to_owned())
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    /// The object as `resource` serves it; without `managedFields` when `omit_managed_fields`
    /// (cut from the bytes unless a conversion re-encodes the object anyway).
    pub fn served(&self, resource: &capstan_api::Resource, omit_managed_fields: bool) -> Bytes {
        if crate::conversion::needs_conversion(resource) {
            let mut value = crate::conversion::from_storage(resource, self.value());
            if omit_managed_fields
                && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
            {
                metadata.remove("managedFields");
            }
            return Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        }
        match self.layout.filter(|_| omit_managed_fields) {
            Some(layout) => match layout.without_managed_fields(&self.bytes) {
                Some(cut) => Bytes::from(cut),
                None => self.bytes.clone(),
            },
            None => self.bytes.clone(),
        }
    }

    /// Its `PartialObjectMetadata`, cut from the bytes (metadata is never converted).
    pub fn partial_metadata(&self, omit_managed_fields: bool) -> Bytes {
        const HEAD: &[u8] =
            br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#;
        let mut out = Vec::with_capacity(HEAD.len() + self.bytes.len() / 2);
        out.extend_from_slice(HEAD);
        match &self.layout {
            Some(layout) => layout.metadata_bytes(&self.bytes, omit_managed_fields, &mut out),
            None => out.extend_from_slice(b"{}"),
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

/// `json` (an object) with `"resourceVersion":"<revision>"` as the first field of its
/// top-level `metadata` object, or `None` when that object is not found.
pub(crate) fn stamped(json: &[u8], revision: Revision) -> Option<Vec<u8>> {
    Some(Layout::of(json)?.stamp(json, revision).0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    /// The object after the change; for a deletion, its last state at the deletion revision.
    pub object: Arc<CachedObject>,
    /// The object before the change, so a filtered watch can tell entering from leaving.
    pub prev: Option<Arc<CachedObject>>,
    pub revision: Revision,
    /// When the cache applied it (fresh history is kept longer).
    pub applied: Instant,
}

impl CacheEvent {
    /// The bytes it keeps alive: its object's and the version before's (which may be in the
    /// cache no more).
    fn size(&self) -> usize {
        self.object.bytes.len() + self.prev.as_ref().map_or(0, |p| p.bytes.len())
    }
}

/// The cache of one stored resource (one key prefix).
pub struct ResourceCache {
    state: RwLock<State>,
    /// Events kept so watchers can resume from a recent resourceVersion.
    history_size: usize,
}

/// A cached object filed under its own key (an ordered map would keep a copy of every key).
#[derive(Debug)]
struct Entry(Arc<CachedObject>);

impl std::borrow::Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0.key
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

type Objects = BTreeSet<Entry>;

struct State {
    objects: Objects,
    history: VecDeque<Arc<CacheEvent>>,
    /// The encoded size of the objects `history` holds, versions before included.
    history_bytes: usize,
    /// Every event after this revision is in `history`.
    history_start: Revision,
    watchers: Watchers,
}

/// The live feed of every watcher of one resource: a bounded queue each, whose memory grows
/// with what is queued rather than being set aside up front. A watcher whose queue is full is
/// too slow and is dropped: it drains what was queued, its watch ends, and the client re-watches
/// from its last resourceVersion, as upstream closes unresponsive watchers.
#[derive(Default)]
struct Watchers(std::sync::Mutex<Vec<mpsc::Sender<Arc<CacheEvent>>>>);

impl Watchers {
    fn subscribe(&self) -> mpsc::Receiver<Arc<CacheEvent>> {
        let (sender, receiver) = mpsc::channel(WATCHER_BUFFER);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
        receiver
    }

    fn send(&self, event: &Arc<CacheEvent>) {
        let mut watchers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        watchers.retain(|w| w.try_send(event.clone()).is_ok());
    }
}

/// What a watcher starts from: recent history to replay, then the live feed.
pub struct Subscription {
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: mpsc::Receiver<Arc<CacheEvent>>,
}

impl ResourceCache {
    fn new(revision: Revision, history_size: usize) -> Self {
        Self {
            history_size,
            state: RwLock::new(State {
                objects: Objects::new(),
                history: VecDeque::new(),
                history_bytes: 0,
                history_start: revision,
                watchers: Watchers::default(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).map(|entry| entry.0.clone())
    }

    /// Objects whose keys start with `prefix`, from `start` (inclusive) on, in key order.
    pub fn range(&self, prefix: &str, start: Option<&str>) -> Vec<Arc<CachedObject>> {
        let from = start.filter(|s| *s > prefix).unwrap_or(prefix);
        under(&self.read().objects, prefix, from)
    }

    /// Subscribes for events after `after`, or `None` if that history is gone (410 Gone).
    pub fn subscribe_after(&self, after: Revision) -> Option<Subscription> {
        let state = self.read();
        if after < state.history_start {
            return None;
        }
        let replay = state.history.iter().filter(|e| e.revision > after).cloned().collect();
        Some(Subscription { replay, live: state.watchers.subscribe() })
    }

    /// A snapshot of every object under `prefix` plus a subscription for what follows it.
    pub fn snapshot_and_subscribe(&self, prefix: &str) -> (Vec<Arc<CachedObject>>, Subscription) {
        let state = self.read();
        let objects = under(&state.objects, prefix, prefix);
        (objects, Subscription { replay: Vec::new(), live: state.watchers.subscribe() })
    }

    fn apply(&self, event: &WatchEvent) {
        let mut state = self.write();
        let revision = event.kv.mod_revision;
        let prev = state.objects.get(event.kv.key.as_str()).map(|entry| entry.0.clone());
        let Some(object) = CachedObject::decode(&event.kv).map(Arc::new) else {
            tracing::warn!(key = event.kv.key, "skipping a stored value that is not an object");
            return;
        };
        let kind = match event.kind {
            EventKind::Delete => {
                state.objects.remove(event.kv.key.as_str());
                EventType::Deleted
            }
            EventKind::Put => {
                state.objects.replace(Entry(object.clone()));
                if prev.is_some() { EventType::Modified } else { EventType::Added }
            }
        };
        let event = Arc::new(CacheEvent { kind, object, prev, revision, applied: Instant::now() });
        while state.history.len() >= self.history_size
            && let Some(oldest) = state.history.front()
            && (oldest.applied.elapsed() >= HISTORY_FRESH
                || state.history.len() >= self.history_size * HISTORY_GROWTH
                || state.history_bytes >= HISTORY_FRESH_BYTES)
        {
            let (size, revision) = (oldest.size(), oldest.revision);
            state.history_bytes -= size;
            state.history_start = revision;
            state.history.pop_front();
        }
        state.history_bytes += event.size();
        state.history.push_back(event.clone());
        state.watchers.send(&event);
    }

    /// Replaces everything after a relist; current watchers are closed (they re-watch).
    fn reset(&self, objects: Objects, revision: Revision) {
        *self.write() = State {
            objects,
            history: VecDeque::new(),
            history_bytes: 0,
            history_start: revision,
            watchers: Watchers::default(),
        };
    }
}

/// The objects whose keys start with `prefix`, from `from` on.
fn under(objects: &Objects, prefix: &str, from: &str) -> Vec<Arc<CachedObject>> {
    objects
        .range::<str, _>((Bound::Included(from), Bound::Unbounded))
        .take_while(|entry| entry.0.key.starts_with(prefix))
        .map(|entry| entry.0.clone())
        .collect()
}

/// The caches of every stored resource, kept current by one store watch.
pub struct WatchCache {
    store: Arc<dyn Store>,
    caches: HashMap<String, Arc<ResourceCache>>,
    revision: watch::Sender<Revision>,
}

/// Reads every key under `prefix` at one revision, a page at a time, handing each to `each`;
/// returns the revision read at.
pub(crate) async fn list_all(
    store: &dyn Store,
    prefix: &str,
    mut each: impl FnMut(&KeyValue),
) -> Result<Revision, StoreError> {
    let mut request =
        ListRequest { prefix: prefix.into(), limit: Some(LIST_PAGE), ..Default::default() };
    loop {
        let page = store.list(request.clone()).await?;
        page.kvs.iter().for_each(&mut each);
        match page.kvs.last() {
            Some(last) if page.more => {
                request.start_key = Some(format!("{}\0", last.key));
                request.revision = Some(page.revision);
            }
            _ => return Ok(page.revision),
        }
    }
}

/// `/registry/<plural>/…` → `<plural>`.
fn storage_plural(key: &str) -> Option<&str> {
    key.strip_prefix("/registry/")?.split('/').next()
}

impl WatchCache {
    /// Loads every object and starts following the store.
    pub async fn start(
        store: Arc<dyn Store>,
        history_size: usize,
    ) -> Result<Arc<Self>, StoreError> {
        let mut caches = HashMap::new();
        for resource in capstan_api::RESOURCES {
            let plural = resource.storage_plural.unwrap_or(resource.plural);
            if UNCACHED.contains(&plural) {
                continue;
            }
            caches
                .entry(plural.to_owned())
                .or_insert_with(|| Arc::new(ResourceCache::new(0, history_size)));
        }
        let (revision, _) = watch::channel(0);
        let cache = Arc::new(Self { store, caches, revision });
        let at = cache.relist().await?;
        tokio::spawn(cache.clone().follow(at));
        Ok(cache)
    }

    /// The cache of a resource, `None` for one served from the store (`UNCACHED`).
    pub fn resource(&self, storage_plural: &str) -> Option<&Arc<ResourceCache>> {
        self.caches.get(storage_plural)
    }

    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Waits until the cache has applied `revision`; false after `CATCH_UP`.
    pub async fn wait_for(&self, revision: Revision) -> bool {
        let mut rx = self.revision.subscribe();
        tokio::time::timeout(CATCH_UP, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the cache reflects every write the store has acknowledged.
    pub async fn sync(&self) -> Result<Revision, StoreError> {
        let current = self.store.current_revision().await?;
        if self.wait_for(current).await {
            Ok(current)
        } else {
            Err(StoreError::Unavailable(format!(
                "the watch cache did not reach revision {current} in {CATCH_UP:?}"
            )))
        }
    }

    async fn relist(&self) -> Result<Revision, StoreError> {
        let mut fresh: HashMap<&str, Objects> = HashMap::new();
        let revision = list_all(&*self.store, "/registry/", |kv| {
            let Some(plural) = storage_plural(&kv.key) else { return };
            let Some((name, _)) = self.caches.get_key_value(plural) else { return };
            if let Some(object) = CachedObject::decode(kv) {
                fresh.entry(name.as_str()).or_default().insert(Entry(Arc::new(object)));
            }
        })
        .await?;
        for (plural, cache) in &self.caches {
            cache.reset(fresh.remove(plural.as_str()).unwrap_or_default(), revision);
        }
        self.revision.send_replace(revision);
        Ok(revision)
    }

    /// Applies store events in order, forever; relists when the watch breaks.
    async fn follow(self: Arc<Self>, mut at: Revision) {
        loop {
            match self.store.watch("/registry/", at).await {
                Ok(mut events) => {
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(event) => {
                                at = event.kv.mod_revision;
                                if let Some(cache) =
                                    storage_plural(&event.kv.key).and_then(|p| self.caches.get(p))
                                {
                                    cache.apply(&event);
                                }
                                self.revision.send_replace(at);
                            }
                            Err(e) => {
                                tracing::warn!("store watch ended: {e}");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot watch the store: {e}"),
            }
            // Whatever broke, start again from a fresh list (history may be gone).
            loop {
                match self.relist().await {
                    Ok(revision) => {
                        at = revision;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("cannot relist the store: {e}; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &ResourceCache, revision: Revision) {
        let value = format!(r#"{{"metadata":{{"name":"cm-{revision}"}}}}"#);
        cache.apply(&WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: format!("/registry/configmaps/default/cm-{revision}"),
                value: Bytes::from(value),
                create_revision: revision,
                mod_revision: revision,
            },
        });
    }

    #[test]
    fn names_and_namespaces_are_read_from_the_key() {
        let decode = |key: &str, json: &'static str| {
            let kv = KeyValue {
                key: key.into(),
                value: Bytes::from(json),
                create_revision: 1,
                mod_revision: 1,
            };
            CachedObject::decode(&kv).unwrap()
        };
        let namespaced = decode("/registry/configmaps/default/cm", r#"{"metadata":{"name":"cm"}}"#);
        assert_eq!((namespaced.name(), namespaced.namespace()), ("cm", Some("default")));
        let cluster_wide = decode("/registry/nodes/n1", r#"{"metadata":{"name":"n1"}}"#);
        assert_eq!((cluster_wide.name(), cluster_wide.namespace()), ("n1", None));
    }

    #[test]
    fn selectable_field_values_are_kept_by_position() {
        let kv = KeyValue {
            key: "/registry/pods/default/p".into(),
            value: Bytes::from(
                r#"{"metadata":{"name":"p"},"spec":{"nodeName":"n1"},"status":{"phase":"Running"}}"#,
            ),
            create_revision: 1,
            mod_revision: 1,
        };
        let pod = CachedObject::decode(&kv).unwrap();
        let pods = capstan_api::registry::find("", "v1", "pods").unwrap();
        assert_eq!(pod.field(pods, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(pod.field(pods, "status.phase").as_deref(), Some("Running"));
        assert_eq!(pod.field(pods, "status.podIP").as_deref(), Some(""), "empty, not unknown");
        assert_eq!(pod.field(pods, "spec.containers"), None, "not a selectable field");
    }

    #[test]
    fn objects_are_found_by_key_and_listed_in_key_order() {
        let cache = ResourceCache::new(0, 16);
        for revision in [3, 1, 2] {
            put(&cache, revision);
        }
        let found = cache.get("/registry/configmaps/default/cm-2");
        assert_eq!(found.map(|o| o.revision), Some(2));
        assert!(cache.get("/registry/configmaps/default/cm-4").is_none());
        let prefix = "/registry/configmaps/default/";
        let from_two = cache.range(prefix, Some("/registry/configmaps/default/cm-2"));
        let names: Vec<_> = from_two.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["cm-2", "cm-3"]);
        assert_eq!(cache.range("/registry/configmaps/other/", None).len(), 0);
    }

    #[test]
    fn the_resource_version_is_spliced_into_the_top_level_metadata_only() {
        let stored = [
            r#"{"kind":"metadata","spec":{"metadata":{"x":"{\"}"}},"metadata":{"name":"a"}}"#,
            r#"{"data":{"k":"\\"},"metadata":{"name":"c"}}"#,
            r#"{"items":[{"metadata":{}}],"metadata" : { "name":"b","labels":{"l":"}"}}}"#,
        ];
        for json in stored {
            let kv = KeyValue {
                key: "/registry/configmaps/default/a".into(),
                value: Bytes::from(json),
                create_revision: 7,
                mod_revision: 7,
            };
            let cached = CachedObject::decode(&kv).unwrap();
            let mut expected: Value = serde_json::from_str(json).unwrap();
            expected["metadata"]["resourceVersion"] = Value::String("7".into());
            assert_eq!(cached.value(), expected, "{json}");
        }
        let empty = stamped(br#"{"metadata":{ }}"#, 7).unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), r#"{"metadata":{"resourceVersion":"7" }}"#);
        let no_metadata = br#"{"spec":{"metadata":{}}}"#;
        assert_eq!(stamped(no_metadata, 7), None);
        let carrying_one = KeyValue {
            key: "/registry/configmaps/default/a".into(),
            value: Bytes::from(r#"{"metadata":{"name":"a","resourceVersion":"3"}}"#),
            create_revision: 7,
            mod_revision: 7,
        };
        let cached = CachedObject::decode(&carrying_one).unwrap();
        assert_eq!(cached.value()["metadata"]["resourceVersion"], "7");
    }

    #[tokio::test]
    async fn a_watcher_that_falls_too_far_behind_is_closed_after_what_was_queued() {
        let cache = ResourceCache::new(0, 16);
        let (_, mut slow) = cache.snapshot_and_subscribe("/registry/configmaps/");
        let (_, mut keeping_up) = cache.snapshot_and_subscribe("/registry/configmaps/");
        let total = WATCHER_BUFFER as Revision + 10;
        for revision in 1..=total {
            put(&cache, revision);
            let event = keeping_up.live.recv().await.expect("a reading watcher stays subscribed");
            assert_eq!(event.revision, revision);
        }
        let mut queued = 0;
        while let Some(event) = slow.live.recv().await {
            queued += 1;
            assert_eq!(event.revision, queued, "queued events arrive in order");
        }
        assert_eq!(queued, WATCHER_BUFFER as Revision, "the slow watcher's feed ends");
        put(&cache, total + 1);
        assert_eq!(keeping_up.live.recv().await.map(|e| e.revision), Some(total + 1));
    }
}
