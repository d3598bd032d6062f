//! Watches: chunked JSON event streams from the watch cache (or the store's own watch for
//! resources the cache does not keep), with initial events, bookmarks, selector-aware
//! ADDED/DELETED transitions, Table rows, and 410 for history that is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use capstan_api::Resource;
use capstan_store::Revision;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::read::{Filter, table};
use super::{Form, Params, Request};
use crate::ApiServer;
use crate::cache::{CacheEvent, CachedObject, EventType, ResourceCache};
use crate::status::{ApiError, ApiResult};

/// Upstream closes watches after a random 30–60 minutes; clients re-watch.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// Where a watch starts.
enum Start {
    /// Synthetic ADDED events for the current state, then changes.
    Snapshot { initial_events_end: bool },
    /// Changes after this revision.
    After(Revision),
}

pub async fn watch(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let t = &request.target;
    let resource = t.resource;
    let params = &request.params;
    let form = request.form()?;
    let filter = Filter::new(resource, t.namespace.clone(), params)?;
    let bookmarks = params.flag("allowWatchBookmarks");
    let send_initial = params.get("sendInitialEvents").map(|v| v == "true");
    let rv = params.get("resourceVersion");
    let start = match (send_initial, rv) {
        (Some(true), _) => {
            if params.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    vec![(
                        "resourceVersionMatch".into(),
                        "FieldValueForbidden".into(),
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                            .into(),
                    )],
                ));
            }
            if !bookmarks {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    vec![(
                        "allowWatchBookmarks".into(),
                        "FieldValueForbidden".into(),
                        "sendInitialEvents requires setting allowWatchBookmarks to true".into(),
                    )],
                ));
            }
            Start::Snapshot { initial_events_end: true }
        }
        (_, None | Some("0")) => Start::Snapshot { initial_events_end: false },
        (_, Some(text)) => Start::After(
            text.parse::<Revision>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {text:?}")))?,
        ),
    };
    if matches!(start, Start::Snapshot { .. }) && rv.is_none() {
        server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
    }
    if let Start::After(after) = start
        && !server.cache.wait_for(after).await
    {
        return Err(ApiError::timeout(format!(
            "Too large resource version: {after}, current: {}",
            server.cache.revision()
        )));
    }
    let timeout = params
        .int("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s as u64));

    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    let mut stream = EventWriter {
        resource,
        form,
        params: params.clone(),
        filter,
        omit_managed_fields: request.omit_managed_fields,
        sender,
        headers_sent: false,
        last: 0,
    };
    let prefix = stream.filter.prefix(resource);
    let body = futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let Ok(cache) = server.cache_for(resource).cloned() else {
        return match watch_store(server, stream, start, prefix, bookmarks, timeout).await? {
            Some(after) => Ok(gone(server, after)),
            None => Ok(streaming(body)),
        };
    };
    match start {
        Start::Snapshot { initial_events_end } => {
            let revision = server.cache.revision();
            let (objects, subscription) = cache.snapshot_and_subscribe(&prefix);
            stream.last = objects.iter().map(|o| o.revision).max().unwrap_or(0);
            tokio::spawn(async move {
                for object in &objects {
                    if stream.filter.matches(resource, object)
                        && !stream.send(EventType::Added, object).await
                    {
                        return;
                    }
                }
                if initial_events_end {
                    stream.last = stream.last.max(revision);
                    if !stream.bookmark(true).await {
                        return;
                    }
                }
                stream.follow(&cache, subscription.live, Vec::new(), bookmarks, timeout).await;
            });
        }
        Start::After(after) => match cache.subscribe_after(after) {
            Some(subscription) => {
                stream.last = after;
                tokio::spawn(async move {
                    stream
                        .follow(&cache, subscription.live, subscription.replay, bookmarks, timeout)
                        .await;
                });
            }
            None => return Ok(gone(server, after)),
        },
    }
    Ok(streaming(body))
}

/// A watch of a resource the cache does not keep (events), from the store's own watch: the
/// current objects first when asked for, then every change. Returns the revision asked for
/// when the store's history no longer reaches back to it.
async fn watch_store(
    server: &Arc<ApiServer>,
    mut stream: EventWriter,
    start: Start,
    prefix: String,
    bookmarks: bool,
    timeout: Duration,
) -> ApiResult<Option<Revision>> {
    let store = server.store.clone();
    let failed = |e: capstan_store::StoreError| ApiError::internal(e.to_string());
    let (objects, after) = match start {
        Start::Snapshot { .. } => {
            let mut objects = Vec::new();
            let revision = crate::cache::list_all(&*store, &prefix, |kv| {
                objects.extend(CachedObject::decode(kv).map(Arc::new));
            })
            .await
            .map_err(failed)?;
            (objects, revision)
        }
        Start::After(after) => (Vec::new(), after),
    };
    let events = match store.watch(&prefix, after).await {
        Ok(events) => events,
        Err(capstan_store::StoreError::Compacted { .. }) => return Ok(Some(after)),
        Err(e) => return Err(failed(e)),
    };
    stream.last = after;
    let initial_events_end = matches!(start, Start::Snapshot { initial_events_end: true });
    tokio::spawn(async move {
        for object in &objects {
            if stream.filter.matches(stream.resource, object)
                && !stream.send(EventType::Added, object).await
            {
                return;
            }
        }
        if initial_events_end && !stream.bookmark(true).await {
            return;
        }
        let changes = events.filter_map(|event| async move {
            let event = event.ok()?;
            let kind = match event.kind {
                capstan_store::EventKind::Delete => EventType::Deleted,
                _ if event.kv.create_revision == event.kv.mod_revision => EventType::Added,
                _ => EventType::Modified,
            };
            let object = Arc::new(CachedObject::decode(&event.kv)?);
            let revision = event.kv.mod_revision;
            // Without the version before, a filtered watch tells only what matches now.
            Some(CacheEvent { kind, object, prev: None, revision, applied: Instant::now() })
        });
        stream.follow_changes(changes, bookmarks, timeout).await;
    });
    Ok(None)
}

/// The 410 Gone a watch from a revision whose history is gone ends with at once.
fn gone(server: &ApiServer, after: Revision) -> Response {
    let status =
        ApiError::gone(format!("too old resource version: {after} ({})", server.cache.revision()));
    let line = event_line("ERROR", &serde_json::to_vec(&status.to_status()).unwrap_or_default());
    streaming(futures::stream::iter([Ok::<_, std::io::Error>(line)]))
}

fn streaming<S>(body: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// One watcher's state: how to filter and encode, and how far it has got.
struct EventWriter {
    resource: &'static Resource,
    form: Form,
    params: Params,
    filter: Filter,
    /// Objects are sent without `metadata.managedFields` (in-process watchers).
    omit_managed_fields: bool,
    sender: mpsc::Sender<Bytes>,
    /// Table watches send column definitions with the first row only.
    headers_sent: bool,
    /// The revision everything up to which this watcher has seen (for bookmarks).
    last: Revision,
}

impl EventWriter {
    async fn send(&mut self, kind: EventType, object: &Arc<CachedObject>) -> bool {
        let line = match self.form {
            Form::Object => {
                event_line(kind.as_str(), &object.served(self.resource, self.omit_managed_fields))
            }
            Form::PartialObjectMetadata => {
                event_line(kind.as_str(), &object.partial_metadata(self.omit_managed_fields))
            }
            Form::Table => {
                let mut t =
                    table(self.resource, std::slice::from_ref(object), &self.params, None, None);
                if self.headers_sent {
                    t["columnDefinitions"] = Value::Null;
                }
                self.headers_sent = true;
                event_line(kind.as_str(), &serde_json::to_vec(&t).unwrap_or_default())
            }
        };
        self.sender.send(line).await.is_ok()
    }

    async fn bookmark(&mut self, initial_events_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": self.last.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata});
        let line = event_line("BOOKMARK", &serde_json::to_vec(&object).unwrap_or_default());
        self.sender.send(line).await.is_ok()
    }

    /// Delivers one cache event, translated for this watcher's filter.
    async fn deliver(&mut self, event: &CacheEvent) -> bool {
        if event.revision <= self.last {
            return true;
        }
        self.last = event.revision;
        let now = self.filter.matches(self.resource, &event.object);
        let before = event.prev.as_ref().is_some_and(|p| self.filter.matches(self.resource, p));
        let kind = match (event.kind, before, now) {
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Deleted, _, false) => return true,
            (EventType::Modified, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (_, true, false) => EventType::Deleted,
            (_, false, false) => return true,
            (EventType::Added, true, true) => EventType::Added,
        };
        self.send(kind, &event.object).await
    }

    /// Delivers `changes` until the watch times out, the client goes or the changes end.
    async fn follow_changes(
        mut self,
        changes: impl futures::Stream<Item = CacheEvent>,
        bookmarks: bool,
        timeout: Duration,
    ) {
        let mut changes = std::pin::pin!(changes);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval(BOOKMARK_EVERY);
        ticks.tick().await;
        loop {
            tokio::select! {
                event = changes.next() => match event {
                    Some(event) => {
                        if !self.deliver(&event).await {
                            return;
                        }
                    }
                    None => return,
                },
                _ = ticks.tick(), if bookmarks => {
                    if !self.bookmark(false).await {
                        return;
                    }
                }
                () = &mut deadline => return,
                () = self.sender.closed() => return,
            }
        }
    }

    async fn follow(
        mut self,
        cache: &ResourceCache,
        mut live: mpsc::Receiver<Arc<CacheEvent>>,
        replay: Vec<Arc<CacheEvent>>,
        bookmarks: bool,
        timeout: Duration,
    ) {
        for event in replay {
            if !self.deliver(&event).await {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval(BOOKMARK_EVERY);
        ticks.tick().await;
        loop {
            tokio::select! {
                event = live.recv() => match event {
                    Some(event) => {
                        if !self.deliver(&event).await {
                            return;
                        }
                    }
                    // Dropped for falling behind the live feed: carry on from the cache's
                    // history while it still reaches back far enough. When the cache was
                    // rebuilt it does not: the watch ends, and the client re-watches from its
                    // last resourceVersion (or relists on 410).
                    None => {
                        let Some(subscription) = cache.subscribe_after(self.last) else {
                            return;
                        };
                        live = subscription.live;
                        for event in subscription.replay {
                            if !self.deliver(&event).await {
                                return;
                            }
                        }
                    }
                },
                _ = ticks.tick(), if bookmarks => {
                    if !self.bookmark(false).await {
                        return;
                    }
                }
                () = &mut deadline => return,
                () = self.sender.closed() => return,
            }
        }
    }
}
