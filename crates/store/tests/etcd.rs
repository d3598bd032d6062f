//! The etcd backend against a real etcd: the shared conformance suite plus what only a remote
//! store has (exact compaction reports, etcd going away and coming back, snapshots).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use capstan_store::{
    EtcdOptions, EtcdStore, EventKind, ListRequest, MAX_VALUE_BYTES, Store, StoreError,
};
use capstan_testkit::EtcdServer;
use futures::StreamExt;

/// Generous bound that only catches hangs; how fast things fail is for `capstan bench`.
const HANG: Duration = Duration::from_secs(60);

fn options(etcd: &EtcdServer) -> EtcdOptions {
    EtcdOptions {
        request_timeout: Duration::from_secs(1),
        retry_deadline: Duration::from_secs(2),
        ..EtcdOptions::new([etcd.endpoint()])
    }
}

async fn etcd_store() -> (Arc<dyn Store>, EtcdServer) {
    let etcd = EtcdServer::start().expect("etcd starts");
    let store = EtcdStore::connect(EtcdOptions::new([etcd.endpoint()])).await.expect("connect");
    (Arc::new(store), etcd)
}

capstan_store::conformance_tests!(etcd_store);

async fn started() -> (EtcdStore, EtcdServer) {
    let etcd = EtcdServer::start().expect("etcd starts");
    let store = EtcdStore::connect(options(&etcd)).await.expect("connect");
    (store, etcd)
}

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Runs `future`, failing the test instead of hanging.
async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, future).await.expect("no hang")
}

#[tokio::test]
async fn writes_follow_compare_and_swap_and_report_their_revisions() {
    let (store, _etcd) = started().await;
    let created = store.create("/registry/pods/a", value("v1")).await.unwrap();
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(store.current_revision().await.unwrap(), created.mod_revision);
    let err = store.create("/registry/pods/a", value("again")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    let updated =
        store.update("/registry/pods/a", value("v2"), created.mod_revision).await.unwrap();
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(updated.mod_revision, created.mod_revision + 1);
    match store.update("/registry/pods/a", value("v3"), created.mod_revision).await {
        Err(StoreError::Conflict { expected, current, .. }) => {
            assert_eq!(expected, created.mod_revision);
            assert_eq!(*current, updated);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Expected revision 0 is what a missing key has in etcd: it must not create the key.
    let err = store.update("/registry/pods/missing", value("v"), 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let deleted = store.delete("/registry/pods/a", Some(updated.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, value("v2"));
    assert_eq!(deleted.create_revision, created.create_revision);
    assert_eq!(deleted.mod_revision, updated.mod_revision + 1);
    let err = store.delete("/registry/pods/a", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn list_pages_through_a_prefix_at_one_revision() {
    let (store, _etcd) = started().await;
    for name in ["a", "b", "c", "d", "e"] {
        store.create(&format!("/registry/pods/{name}"), value(name)).await.unwrap();
    }
    store.create("/registry/podsx/z", value("neighbour")).await.unwrap();
    let request = |start_key: Option<&str>, revision| ListRequest {
        prefix: "/registry/pods/".into(),
        start_key: start_key.map(Into::into),
        revision,
        limit: Some(2),
    };
    let first = store.list(request(None, None)).await.unwrap();
    let keys = |page: &capstan_store::ListResponse| -> Vec<String> {
        page.kvs.iter().map(|kv| kv.key.clone()).collect()
    };
    assert_eq!(keys(&first), ["/registry/pods/a", "/registry/pods/b"]);
    assert!(first.more);
    assert_eq!(first.revision, store.current_revision().await.unwrap());

    store.delete("/registry/pods/c", None).await.unwrap();
    let second =
        store.list(request(Some("/registry/pods/b\0"), Some(first.revision))).await.unwrap();
    assert_eq!(keys(&second), ["/registry/pods/c", "/registry/pods/d"]);
    assert_eq!(second.revision, first.revision);
    let last = store.list(request(Some("/registry/pods/d\0"), Some(first.revision))).await.unwrap();
    assert_eq!(keys(&last), ["/registry/pods/e"]);
    assert!(!last.more);

    // A start key before the prefix is clamped to it; one past the prefix finds nothing.
    let clamped = store.list(request(Some("/registry/a"), None)).await.unwrap();
    assert_eq!(keys(&clamped), ["/registry/pods/a", "/registry/pods/b"]);
    let past = store.list(request(Some("/registry/q"), None)).await.unwrap();
    assert!(past.kvs.is_empty() && !past.more);

    let everything = ListRequest::default();
    assert_eq!(store.list(everything).await.unwrap().kvs.len(), 5);
}

#[tokio::test]
async fn watch_reports_puts_and_deletes_with_the_last_value() {
    let (store, _etcd) = started().await;
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/pods/", start).await.unwrap();
    let created = store.create("/registry/pods/a", value("v1")).await.unwrap();
    store.create("/registry/services/a", value("elsewhere")).await.unwrap();
    let updated =
        store.update("/registry/pods/a", value("v2"), created.mod_revision).await.unwrap();
    let deleted = store.delete("/registry/pods/a", None).await.unwrap();

    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(bounded(watch.next()).await.expect("an event").expect("not an error"));
    }
    assert_eq!((events[0].kind, &events[0].kv), (EventKind::Put, &created));
    assert_eq!((events[1].kind, &events[1].kv), (EventKind::Put, &updated));
    assert_eq!((events[2].kind, &events[2].kv), (EventKind::Delete, &deleted));
    assert_eq!(deleted.value, value("v2"));
}

#[tokio::test]
async fn compacted_revisions_are_reported_exactly() {
    let (store, _etcd) = started().await;
    let v1 = store.create("/registry/k", value("v1")).await.unwrap();
    let v2 = store.update("/registry/k", value("v2"), v1.mod_revision).await.unwrap();
    let v3 = store.update("/registry/k", value("v3"), v2.mod_revision).await.unwrap();
    store.compact(v2.mod_revision).await.unwrap();
    store.compact(v1.mod_revision).await.expect("an older compaction is a no-op");

    let old = ListRequest { revision: Some(v1.mod_revision), ..Default::default() };
    match store.list(old).await {
        Err(StoreError::Compacted { requested, compacted }) => {
            assert_eq!((requested, compacted), (v1.mod_revision, v2.mod_revision));
        }
        other => panic!("expected compacted, got {other:?}"),
    }
    match store.watch("/registry/", v1.mod_revision).await {
        Err(StoreError::Compacted { requested, compacted }) => {
            assert_eq!((requested, compacted), (v1.mod_revision, v2.mod_revision));
        }
        Err(other) => panic!("expected compacted, got {other:?}"),
        Ok(_) => panic!("expected compacted, got a watch"),
    }
    let mut watch = store.watch("/registry/", v2.mod_revision).await.unwrap();
    assert_eq!(bounded(watch.next()).await.unwrap().unwrap().kv, v3);

    let future = v3.mod_revision + 10;
    match store.compact(future).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (future, v3.mod_revision));
        }
        other => panic!("expected a future revision, got {other:?}"),
    }
}

#[tokio::test]
async fn a_value_at_the_size_limit_is_stored_and_one_byte_more_is_refused() {
    let (store, _etcd) = started().await;
    let largest = Bytes::from(vec![b'x'; MAX_VALUE_BYTES]);
    store.create("/registry/big", largest.clone()).await.unwrap();
    assert_eq!(store.get("/registry/big").await.unwrap().unwrap().value, largest);
    let over = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let err = store.create("/registry/bigger", over).await.unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn snapshot_writes_the_etcd_database_to_the_file() {
    let (store, _etcd) = started().await;
    store.create("/registry/k", value("v")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etcd.snapshot");
    store.snapshot(&path).await.unwrap();
    let written = std::fs::metadata(&path).unwrap().len();
    assert!(written > 0);
    assert!(!dir.path().join("etcd.snapshot.partial").exists());
}

#[tokio::test]
async fn requests_to_a_stopped_etcd_fail_as_unavailable_instead_of_hanging() {
    let (store, mut etcd) = started().await;
    let kv = store.create("/registry/k", value("v")).await.unwrap();
    let mut watch = store.watch("/registry/", kv.mod_revision).await.unwrap();
    etcd.stop();

    let err = bounded(watch.next()).await.expect("the watch ends with an error").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = bounded(store.get("/registry/k")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(ref m) if m.contains(&etcd.endpoint())),
        "{err:?}"
    );
    let err = bounded(store.update("/registry/k", value("v2"), kv.mod_revision)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = bounded(store.watch("/registry/", kv.mod_revision)).await.err().expect("an error");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = bounded(EtcdStore::connect(options(&etcd))).await.err().expect("an error");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    // The same store works again once etcd is back.
    etcd.restart().unwrap();
    let updated = bounded(store.update("/registry/k", value("v2"), kv.mod_revision)).await.unwrap();
    assert_eq!(updated.mod_revision, kv.mod_revision + 1);
}

#[tokio::test]
async fn connecting_to_an_endpoint_nobody_listens_on_fails_as_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = EtcdOptions {
        request_timeout: Duration::from_millis(500),
        retry_deadline: Duration::from_secs(1),
        ..EtcdOptions::new([format!("http://127.0.0.1:{port}")])
    };
    let err = bounded(EtcdStore::connect(options)).await.err().expect("an error");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}
