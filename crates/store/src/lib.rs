//! The cluster store: etcd's data model (one global revision, compare-and-swap writes, watches
//! from a revision, compaction) behind one trait, with an embedded SQLite backend and an etcd v3
//! backend.

mod compactor;
pub mod conformance;
mod datastore;
mod etcd;
mod sqlite;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use compactor::{Compactor, DEFAULT_COMPACTION_INTERVAL};
pub use datastore::Datastore;
pub use etcd::{EtcdOptions, EtcdStore};
pub use sqlite::{Durability, SqliteOptions, SqliteStore};

/// A store revision. It is the `resourceVersion` of the Kubernetes API.
pub type Revision = i64;

/// etcd's default request size limit (`--max-request-bytes`); both backends refuse larger values.
pub const MAX_VALUE_BYTES: usize = 1_572_864;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A key with the value it holds at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision that created the key (reset when a deleted key is created again).
    pub create_revision: Revision,
    /// The revision of the last change to the key; for a deletion event, the deletion's revision.
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch. For a `Delete`, `kv` holds the value the key had before it was
/// deleted and `kv.mod_revision` is the revision of the deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
}

/// Events in revision order; an `Err` ends the stream (e.g. `Compacted` when a slow watcher fell
/// behind compaction).
pub type WatchStream = BoxStream<'static, Result<WatchEvent>>;

/// A range read: every live key starting with `prefix`, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub prefix: String,
    /// Resume from this key (inclusive): the continue point of a paged list.
    pub start_key: Option<String>,
    /// Read at this revision; `None` reads the latest state.
    pub revision: Option<Revision>,
    /// At most this many items; `None` or `Some(0)` means no limit.
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResponse {
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at; page on with the same revision.
    pub revision: Revision,
    /// More keys follow the last one returned.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    #[error("key {0:?} not found")]
    NotFound(String),
    /// A compare-and-swap lost: the key's mod revision is not the expected one.
    #[error("key {key:?} was modified: expected mod revision {expected}, found {}", current.mod_revision)]
    Conflict { key: String, expected: Revision, current: Box<KeyValue> },
    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted { requested: Revision, compacted: Revision },
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("value for key {key:?} is {size} bytes, over the {limit}-byte limit")]
    ValueTooLarge { key: String, size: usize, limit: usize },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("database {path} cannot be used: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("store error: {0}")]
    Internal(String),
}

/// The store every capstan component goes through (only the API server holds one).
///
/// Writes are acknowledged only once durable. Every successful write takes the next revision of
/// one global, strictly increasing sequence; a failed compare-and-swap changes nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Live keys under a prefix at one revision, paged by `limit` and `start_key`.
    async fn list(&self, request: ListRequest) -> Result<ListResponse>;

    /// Creates `key`; fails with `AlreadyExists` if it exists.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces `key`'s value if its mod revision is `expected`; otherwise `Conflict` (with the
    /// current value) or `NotFound`.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key`, if `expected` is given only when its mod revision matches. Returns the
    /// deleted value with `mod_revision` set to the deletion's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every change under `prefix` with a revision greater than `after`, in order, with no gaps
    /// or duplicates, then live changes. `Compacted` if that history is gone.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The store's latest revision, read from the quorum (etcd) or the database (SQLite).
    async fn current_revision(&self) -> Result<Revision>;

    /// Drops history at or below `revision`, keeping each key's value as of that revision.
    /// Compacting to an already compacted revision is a no-op.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Writes a consistent snapshot of the whole store to `path`.
    async fn snapshot(&self, path: &Path) -> Result<()>;
}

/// Refuses values over etcd's request limit, before they reach a backend.
pub(crate) fn check_value_size(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            key: key.to_owned(),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix), or
/// `None` when no such key exists (empty prefix).
pub(crate) fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
