//! The embedded SQLite backend: the shared conformance suite plus what only a file-backed store
//! has (durability settings, reopen, snapshots, refusing bad files).

use std::sync::Arc;

use bytes::Bytes;
use capstan_store::{ListRequest, SqliteOptions, SqliteStore, Store, StoreError};
use tempfile::TempDir;

async fn sqlite_store() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions { path: dir.path().join("state.db") }).unwrap();
    (Arc::new(store), dir)
}

capstan_store::conformance_tests!(sqlite_store);

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(SqliteOptions { path: dir.path().join("state.db") }).unwrap()
}

#[test]
fn writer_syncs_the_wal_at_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let durability = open(&dir).durability().unwrap();
    assert_eq!(durability.journal_mode, "wal");
    assert_eq!(durability.synchronous, 2, "PRAGMA synchronous must be FULL");
}

#[tokio::test]
async fn reopened_store_keeps_keys_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (kv, revision) = {
        let store = open(&dir);
        store.create("/registry/k", Bytes::from_static(b"v")).await.unwrap();
        store.delete("/registry/k", None).await.unwrap();
        let kv = store.create("/registry/k", Bytes::from_static(b"v2")).await.unwrap();
        store.create("/registry/gone", Bytes::from_static(b"x")).await.unwrap();
        let gone = store.delete("/registry/gone", None).await.unwrap();
        // The last write is a deletion: compaction may drop its row, never the revision.
        store.compact(gone.mod_revision).await.unwrap();
        (kv, gone.mod_revision)
    };
    let store = open(&dir);
    assert_eq!(store.current_revision().await.unwrap(), revision);
    assert_eq!(store.get("/registry/k").await.unwrap(), Some(kv));
    let next = store.create("/registry/next", Bytes::from_static(b"n")).await.unwrap();
    assert_eq!(next.mod_revision, revision + 1);
}

#[tokio::test]
async fn snapshot_restores_exactly_the_saved_keys_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..50 {
        store.create(&format!("/registry/s/{i:02}"), Bytes::from(format!("v{i}"))).await.unwrap();
    }
    store.delete("/registry/s/07", None).await.unwrap();
    let saved = store.list(ListRequest { prefix: "/".into(), ..Default::default() }).await.unwrap();
    let file = dir.path().join("snap.db");
    store.snapshot(&file).await.unwrap();
    // Writes after the snapshot are not in it.
    store.create("/registry/s/late", Bytes::from_static(b"late")).await.unwrap();

    let target = tempfile::tempdir().unwrap();
    let db = target.path().join("state.db");
    assert_eq!(SqliteStore::restore_file(&file, &db).unwrap(), saved.revision);
    let restored = SqliteStore::open(SqliteOptions { path: db.clone() }).unwrap();
    assert_eq!(restored.current_revision().await.unwrap(), saved.revision);
    let listed =
        restored.list(ListRequest { prefix: "/".into(), ..Default::default() }).await.unwrap();
    assert_eq!(listed.kvs, saved.kvs);
    assert_eq!(restored.get("/registry/s/late").await.unwrap(), None);

    let err = SqliteStore::restore_file(&file, &db).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[tokio::test]
async fn snapshot_of_a_database_in_use_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let kv = store.create("/registry/x", Bytes::from_static(b"x")).await.unwrap();
    let file = dir.path().join("copy.db");
    SqliteStore::snapshot_file(&dir.path().join("state.db"), &file).unwrap();
    let copy = SqliteStore::open(SqliteOptions { path: file }).unwrap();
    assert_eq!(copy.get("/registry/x").await.unwrap(), Some(kv));
}

#[test]
fn corrupt_database_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage: Vec<u8> =
        (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(SqliteOptions { path: path.clone() }).err().expect("refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file is left untouched");
}

#[test]
fn foreign_sqlite_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let other = rusqlite_free_foreign_db(&path);
    let err = SqliteStore::open(SqliteOptions { path }).err().expect("refused");
    assert!(err.to_string().contains("not a capstan database"), "{err}");
    drop(other);
}

/// Makes a valid SQLite database that is not capstan's, using a snapshot of a capstan one with
/// its application id rewritten in the header (bytes 68..72).
fn rusqlite_free_foreign_db(path: &std::path::Path) -> TempDir {
    let source = tempfile::tempdir().unwrap();
    drop(open(&source));
    SqliteStore::snapshot_file(&source.path().join("state.db"), path).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
    source
}

#[test]
fn missing_snapshot_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::restore_file(&dir.path().join("nope.db"), &dir.path().join("state.db"))
        .unwrap_err();
    assert!(err.to_string().contains("no such database file"), "{err}");
}
