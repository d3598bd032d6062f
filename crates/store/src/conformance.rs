//! The store conformance suite: one body of behaviour every backend must show, run against each
//! backend by `conformance_tests!` from that backend's integration test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Compactor, EventKind, KeyValue, ListRequest, Revision, Store, StoreError, WatchEvent,
    WatchStream,
};

/// Generates one `#[tokio::test]` per conformance case. `$setup` is an async fn returning
/// `(Arc<dyn Store>, guard)`; the guard (e.g. a temp dir or an etcd process) lives for the test.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            create_then_get_returns_value_and_revisions,
            create_of_existing_key_fails_with_already_exists,
            stale_update_conflicts_and_returns_current_value,
            update_of_missing_key_is_not_found,
            delete_semantics,
            revisions_strictly_increase_and_failed_writes_take_none,
            concurrent_compare_and_swap_has_exactly_one_winner,
            concurrent_creates_of_one_key_have_exactly_one_winner,
            list_by_prefix_excludes_neighbouring_keys,
            list_paging_is_stable_at_a_revision,
            list_at_old_revision_sees_old_values,
            reads_outside_kept_history_fail_clearly,
            watch_delivers_every_write_in_order_without_gaps,
            watch_resumes_from_any_revision_in_history,
            watch_from_compacted_revision_fails_with_compacted,
            watch_delete_event_carries_last_value,
            watch_sees_only_its_prefix,
            watch_from_a_future_revision_waits_for_it,
            slow_watcher_loses_nothing,
            compaction_keeps_current_values_and_live_history,
            large_values_round_trip_and_oversized_are_refused,
            many_keys_list_completely,
            background_compactor_drops_history_one_interval_old,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $setup().await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(30);

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

async fn collect_events(stream: &mut WatchStream, count: usize) -> Vec<WatchEvent> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        events.push(next_event(stream).await);
    }
    events
}

async fn list_all(store: &dyn Store, prefix: &str, revision: Option<Revision>) -> Vec<KeyValue> {
    let request = ListRequest { prefix: prefix.into(), revision, ..Default::default() };
    store.list(request).await.expect("list").kvs
}

pub async fn create_then_get_returns_value_and_revisions(store: Arc<dyn Store>) {
    let created = store.create("/registry/a/one", value("v1")).await.unwrap();
    assert_eq!(created.key, "/registry/a/one");
    assert_eq!(created.value, value("v1"));
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(store.get("/registry/a/one").await.unwrap(), Some(created.clone()));
    assert_eq!(store.get("/registry/a/missing").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), created.mod_revision);

    let updated = store.update("/registry/a/one", value("v2"), created.mod_revision).await.unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(store.get("/registry/a/one").await.unwrap(), Some(updated));
}

pub async fn create_of_existing_key_fails_with_already_exists(store: Arc<dyn Store>) {
    let first = store.create("/registry/a/k", value("first")).await.unwrap();
    let err = store.create("/registry/a/k", value("second")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(ref k) if k == "/registry/a/k"), "{err:?}");
    assert_eq!(store.get("/registry/a/k").await.unwrap(), Some(first));
}

pub async fn stale_update_conflicts_and_returns_current_value(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/a/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/a/k", value("v2"), v1.mod_revision).await.unwrap();
    let err = store.update("/registry/a/k", value("v3"), v1.mod_revision).await.unwrap_err();
    match err {
        StoreError::Conflict { key, expected, current } => {
            assert_eq!(key, "/registry/a/k");
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(*current, v2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.get("/registry/a/k").await.unwrap(), Some(v2));
}

pub async fn update_of_missing_key_is_not_found(store: Arc<dyn Store>) {
    let err = store.update("/registry/a/none", value("v"), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get("/registry/a/none").await.unwrap(), None);
}

pub async fn delete_semantics(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/a/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/a/k", value("v2"), v1.mod_revision).await.unwrap();

    let err = store.delete("/registry/a/k", Some(v1.mod_revision)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref current, .. } if **current == v2), "{err:?}");
    assert_eq!(store.get("/registry/a/k").await.unwrap(), Some(v2.clone()));

    let deleted = store.delete("/registry/a/k", Some(v2.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, value("v2"));
    assert_eq!(deleted.create_revision, v1.create_revision);
    assert!(deleted.mod_revision > v2.mod_revision);
    assert_eq!(store.current_revision().await.unwrap(), deleted.mod_revision);
    assert_eq!(store.get("/registry/a/k").await.unwrap(), None);
    assert!(list_all(&*store, "/registry/a/", None).await.is_empty());

    let err = store.delete("/registry/a/k", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.update("/registry/a/k", value("v3"), v2.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // A key created again starts a new life.
    let again = store.create("/registry/a/k", value("again")).await.unwrap();
    assert!(again.create_revision > deleted.mod_revision);
    let gone = store.delete("/registry/a/k", None).await.unwrap();
    assert_eq!(gone.value, value("again"));
}

pub async fn revisions_strictly_increase_and_failed_writes_take_none(store: Arc<dyn Store>) {
    let mut last = store.current_revision().await.unwrap();
    for i in 0..20 {
        let kv = store.create(&format!("/registry/r/{i}"), value("x")).await.unwrap();
        assert_eq!(kv.mod_revision, last + 1, "each write takes exactly the next revision");
        last = kv.mod_revision;
        store.create(&format!("/registry/r/{i}"), value("x")).await.unwrap_err();
        store.update(&format!("/registry/r/{i}"), value("y"), 0).await.unwrap_err();
        assert_eq!(store.current_revision().await.unwrap(), last);
    }
}

pub async fn concurrent_compare_and_swap_has_exactly_one_winner(store: Arc<dyn Store>) {
    for round in 0..5 {
        let key = format!("/registry/cas/{round}");
        let base = store.create(&key, value("base")).await.unwrap();
        let attempts = (0..32).map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store.update(&key, value(&format!("writer-{i}")), base.mod_revision).await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let mut winners = Vec::new();
        for result in results {
            match result.unwrap() {
                Ok(kv) => winners.push(kv),
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one compare-and-swap wins");
        assert_eq!(store.get(&key).await.unwrap(), Some(winners.remove(0)));
    }
}

pub async fn concurrent_creates_of_one_key_have_exactly_one_winner(store: Arc<dyn Store>) {
    let attempts = (0..32).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.create("/registry/one", value(&format!("{i}"))).await })
    });
    let results = futures::future::join_all(attempts).await;
    let wins = results.into_iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    assert_eq!(wins, 1);
}

pub async fn list_by_prefix_excludes_neighbouring_keys(store: Arc<dyn Store>) {
    for key in ["/registry/pods/a", "/registry/pods/b", "/registry/podsx/c", "/registry/pod"] {
        store.create(key, value(key)).await.unwrap();
    }
    let keys: Vec<_> =
        list_all(&*store, "/registry/pods/", None).await.into_iter().map(|kv| kv.key).collect();
    assert_eq!(keys, ["/registry/pods/a", "/registry/pods/b"]);
    assert_eq!(list_all(&*store, "/registry/", None).await.len(), 4);
}

pub async fn list_paging_is_stable_at_a_revision(store: Arc<dyn Store>) {
    let mut expected = BTreeMap::new();
    for i in 0..100 {
        let kv =
            store.create(&format!("/registry/p/{i:03}"), value(&format!("v{i}"))).await.unwrap();
        expected.insert(kv.key.clone(), kv);
    }
    let first = store
        .list(ListRequest { prefix: "/registry/p/".into(), limit: Some(7), ..Default::default() })
        .await
        .unwrap();
    let at = first.revision;
    assert!(first.more);
    let mut seen: Vec<KeyValue> = first.kvs;
    // Change the data between pages: the pages must still show revision `at`.
    for i in (0..100).step_by(3) {
        let key = format!("/registry/p/{i:03}");
        let kv = store.get(&key).await.unwrap().unwrap();
        if i % 2 == 0 {
            store.update(&key, value("changed"), kv.mod_revision).await.unwrap();
        } else {
            store.delete(&key, None).await.unwrap();
        }
    }
    store.create("/registry/p/050a", value("new")).await.unwrap();
    loop {
        let last = seen.last().unwrap().key.clone();
        let page = store
            .list(ListRequest {
                prefix: "/registry/p/".into(),
                start_key: Some(format!("{last}\0")),
                revision: Some(at),
                limit: Some(7),
            })
            .await
            .unwrap();
        assert_eq!(page.revision, at);
        assert!(page.kvs.len() <= 7);
        seen.extend(page.kvs);
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, expected.into_values().collect::<Vec<_>>());
}

pub async fn list_at_old_revision_sees_old_values(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/h/k", value("v1")).await.unwrap();
    let other = store.create("/registry/h/other", value("o")).await.unwrap();
    let v2 = store.update("/registry/h/k", value("v2"), v1.mod_revision).await.unwrap();
    store.delete("/registry/h/other", None).await.unwrap();
    let later = store.create("/registry/h/later", value("l")).await.unwrap();

    assert_eq!(list_all(&*store, "/registry/h/", Some(v1.mod_revision)).await, vec![v1.clone()]);
    assert_eq!(
        list_all(&*store, "/registry/h/", Some(other.mod_revision)).await,
        vec![v1, other.clone()]
    );
    assert_eq!(
        list_all(&*store, "/registry/h/", Some(v2.mod_revision)).await,
        vec![v2.clone(), other]
    );
    assert_eq!(list_all(&*store, "/registry/h/", None).await, vec![v2, later]);
}

pub async fn reads_outside_kept_history_fail_clearly(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/c/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/c/k", value("v2"), v1.mod_revision).await.unwrap();
    store.compact(v2.mod_revision).await.unwrap();
    let old = ListRequest {
        prefix: "/registry/c/".into(),
        revision: Some(v1.mod_revision),
        ..Default::default()
    };
    let err = store.list(old).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let future = ListRequest {
        prefix: "/registry/c/".into(),
        revision: Some(v2.mod_revision + 100),
        ..Default::default()
    };
    let err = store.list(future).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    let err = store.compact(v2.mod_revision + 100).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    // Compacting again to the same revision is harmless.
    store.compact(v2.mod_revision).await.unwrap();
    assert_eq!(list_all(&*store, "/registry/c/", Some(v2.mod_revision)).await, vec![v2]);
}

pub async fn watch_delivers_every_write_in_order_without_gaps(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/w/", start).await.unwrap();
    let writers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..25 {
                let key = format!("/registry/w/{w}-{i}");
                let created = store.create(&key, value("1")).await.unwrap();
                let updated = store.update(&key, value("2"), created.mod_revision).await.unwrap();
                revisions.push(created.mod_revision);
                revisions.push(updated.mod_revision);
            }
            revisions
        })
    });
    let mut written: Vec<Revision> =
        futures::future::join_all(writers).await.into_iter().flat_map(|r| r.unwrap()).collect();
    written.sort_unstable();
    let events = collect_events(&mut watch, written.len()).await;
    let seen: Vec<Revision> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(seen, written, "events arrive in revision order, each exactly once");
    for event in &events {
        assert_eq!(event.kind, EventKind::Put);
        let expected = if event.kv.create_revision == event.kv.mod_revision { "1" } else { "2" };
        assert_eq!(event.kv.value, value(expected));
    }
}

pub async fn watch_resumes_from_any_revision_in_history(store: Arc<dyn Store>) {
    let mut writes = Vec::new();
    for i in 0..30 {
        writes.push(store.create(&format!("/registry/res/{i:02}"), value("v")).await.unwrap());
    }
    for resume_at in [0, 1, 10, 29] {
        let after = writes[resume_at].mod_revision;
        let mut watch = store.watch("/registry/res/", after).await.unwrap();
        let expected: Vec<_> =
            writes.iter().filter(|kv| kv.mod_revision > after).cloned().collect();
        let events = collect_events(&mut watch, expected.len()).await;
        let kvs: Vec<_> = events.into_iter().map(|e| e.kv).collect();
        assert_eq!(kvs, expected, "resuming after revision {after}");
        // Then live events follow, with nothing replayed twice.
        let live =
            store.create(&format!("/registry/res/live-{resume_at}"), value("l")).await.unwrap();
        assert_eq!(next_event(&mut watch).await.kv, live);
        writes.push(live);
    }
}

pub async fn watch_from_compacted_revision_fails_with_compacted(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/wc/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/wc/k", value("v2"), v1.mod_revision).await.unwrap();
    let v3 = store.update("/registry/wc/k", value("v3"), v2.mod_revision).await.unwrap();
    store.compact(v2.mod_revision).await.unwrap();
    let compacted = match store.watch("/registry/wc/", v1.mod_revision).await {
        Err(e) => e,
        Ok(mut stream) => match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Err(e))) => e,
            other => panic!("expected a compacted error, got {other:?}"),
        },
    };
    assert!(matches!(compacted, StoreError::Compacted { .. }), "{compacted:?}");
    // From the compacted revision itself, history is still complete.
    let mut watch = store.watch("/registry/wc/", v2.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, v3);
}

pub async fn watch_delete_event_carries_last_value(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/d/", start).await.unwrap();
    let v1 = store.create("/registry/d/k", value("last")).await.unwrap();
    let deleted = store.delete("/registry/d/k", None).await.unwrap();
    let events = collect_events(&mut watch, 2).await;
    assert_eq!(events[0], WatchEvent { kind: EventKind::Put, kv: v1 });
    assert_eq!(events[1], WatchEvent { kind: EventKind::Delete, kv: deleted.clone() });
    assert_eq!(events[1].kv.value, value("last"));
}

pub async fn watch_sees_only_its_prefix(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/pods/", start).await.unwrap();
    store.create("/registry/podsx/a", value("no")).await.unwrap();
    store.create("/registry/pod", value("no")).await.unwrap();
    let mine = store.create("/registry/pods/a", value("yes")).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, mine);
}

pub async fn watch_from_a_future_revision_waits_for_it(store: Arc<dyn Store>) {
    let now = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/f/", now + 1).await.unwrap();
    store.create("/registry/f/skipped", value("at now+1")).await.unwrap();
    let seen = store.create("/registry/f/seen", value("at now+2")).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, seen);
}

pub async fn slow_watcher_loses_nothing(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/slow/", start).await.unwrap();
    // Sequential writes are separate batches: far more than any in-memory feed keeps.
    let mut written = Vec::new();
    for i in 0..3000 {
        let kv = store.create(&format!("/registry/slow/{i}"), value("v")).await.unwrap();
        written.push(kv.mod_revision);
    }
    let events = collect_events(&mut watch, written.len()).await;
    let seen: Vec<_> = events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(seen, written);
}

pub async fn compaction_keeps_current_values_and_live_history(store: Arc<dyn Store>) {
    let a1 = store.create("/registry/cp/a", value("a1")).await.unwrap();
    let a2 = store.update("/registry/cp/a", value("a2"), a1.mod_revision).await.unwrap();
    let b = store.create("/registry/cp/b", value("b")).await.unwrap();
    store.delete("/registry/cp/b", None).await.unwrap();
    let c = store.create("/registry/cp/c", value("c")).await.unwrap();
    let at = store.current_revision().await.unwrap();
    let a3 = store.update("/registry/cp/a", value("a3"), a2.mod_revision).await.unwrap();
    store.compact(at).await.unwrap();

    assert_eq!(store.get("/registry/cp/a").await.unwrap(), Some(a3.clone()));
    assert_eq!(store.get("/registry/cp/b").await.unwrap(), None);
    assert_eq!(list_all(&*store, "/registry/cp/", Some(at)).await, vec![a2, c.clone()]);
    assert_eq!(list_all(&*store, "/registry/cp/", None).await, vec![a3.clone(), c]);
    let mut watch = store.watch("/registry/cp/", at).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, a3);
    assert!(b.mod_revision < at);
}

pub async fn large_values_round_trip_and_oversized_are_refused(store: Arc<dyn Store>) {
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    let kv = store.create("/registry/big/ok", big.clone()).await.unwrap();
    assert_eq!(store.get("/registry/big/ok").await.unwrap().unwrap().value, big);
    let before = store.current_revision().await.unwrap();

    let too_big = Bytes::from(vec![b'y'; crate::MAX_VALUE_BYTES + 1]);
    let err = store.create("/registry/big/no", too_big.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    let err = store.update("/registry/big/ok", too_big, kv.mod_revision).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(store.get("/registry/big/no").await.unwrap(), None);
    assert_eq!(store.get("/registry/big/ok").await.unwrap().unwrap().value, big);
    assert_eq!(store.current_revision().await.unwrap(), before);
}

pub async fn many_keys_list_completely(store: Arc<dyn Store>) {
    let writers = (0..16).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..250 {
                store.create(&format!("/registry/many/{w:02}-{i:04}"), value("v")).await.unwrap();
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let all = list_all(&*store, "/registry/many/", None).await;
    assert_eq!(all.len(), 4000);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "keys come in order");
    let mut paged = 0;
    let mut start_key = None;
    loop {
        let page = store
            .list(ListRequest {
                prefix: "/registry/many/".into(),
                start_key: start_key.take(),
                limit: Some(500),
                ..Default::default()
            })
            .await
            .unwrap();
        paged += page.kvs.len();
        if !page.more {
            break;
        }
        start_key = Some(format!("{}\0", page.kvs.last().unwrap().key));
    }
    assert_eq!(paged, 4000);
}

pub async fn background_compactor_drops_history_one_interval_old(store: Arc<dyn Store>) {
    let v1 = store.create("/registry/bg/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/bg/k", value("v2"), v1.mod_revision).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let compactor = Compactor::new(store.clone(), Duration::from_millis(50));
    let task = tokio::spawn(compactor.run(async {
        let _ = stopped.await;
    }));
    let old = ListRequest {
        prefix: "/registry/bg/".into(),
        revision: Some(v1.mod_revision),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !matches!(store.list(old.clone()).await, Err(StoreError::Compacted { .. })) {
        assert!(tokio::time::Instant::now() < deadline, "history was never compacted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(store.get("/registry/bg/k").await.unwrap(), Some(v2.clone()));
    assert_eq!(list_all(&*store, "/registry/bg/", Some(v2.mod_revision)).await, vec![v2]);
}
