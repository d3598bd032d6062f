//! The embedded store: SQLite in WAL mode, one group-committing writer thread, a small pool of
//! reader connections, and watches fed from committed batches with history read back from disk.

mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    KeyValue, ListRequest, ListResponse, Result, Revision, Store, StoreError, WatchStream,
    check_value_size, prefix_end,
};
use schema::Revisions;
use writer::{Command, EventBatch, WriteOp, Writer};

/// Commands queued for the writer before senders wait; deep enough for a burst of clients.
const COMMAND_QUEUE: usize = 8192;
/// Committed batches a watcher may fall behind before it re-reads history from disk.
const EVENT_BUFFER: usize = 1024;
/// Idle reader connections kept open; more are opened under load and closed after.
const IDLE_READERS: usize = 8;

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// The database file; its directory must exist.
    pub path: PathBuf,
}

/// The durability settings in force on the writer connection (asserted by tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durability {
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is FULL (the WAL is synced at every commit).
    pub synchronous: i64,
}

pub struct SqliteStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<EventBatch>,
    readers: ReaderPool,
}

impl SqliteStore {
    /// Opens or creates the database; a corrupt or foreign file is a `Corrupt` error.
    pub fn open(options: SqliteOptions) -> Result<Self> {
        let path = options.path;
        let conn = schema::open_writer(&path)?;
        let revisions = schema::read_revisions(&conn).map_err(|e| schema::corrupt(&path, e))?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let writer = Writer::new(conn, revisions.current, events.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        let readers = ReaderPool { path: path.clone(), idle: Mutex::new(Vec::new()) };
        Ok(Self { inner: Arc::new(Inner { path, commands, events, readers }) })
    }

    /// Durability settings of a connection opened the way the writer opens one.
    pub fn durability(&self) -> Result<Durability> {
        let conn = schema::open_writer(&self.inner.path)?;
        let journal_mode = conn.pragma_query_value(None, "journal_mode", |r| r.get(0));
        let synchronous = conn.pragma_query_value(None, "synchronous", |r| r.get(0));
        Ok(Durability {
            journal_mode: journal_mode.map_err(internal)?,
            synchronous: synchronous.map_err(internal)?,
        })
    }

    /// Copies the database at `db` to `out` with SQLite's online backup API; works while a
    /// server has the database open.
    pub fn snapshot_file(db: &Path, out: &Path) -> Result<()> {
        let source = schema::open_existing_read_only(db)?;
        backup(&source, out)
    }

    /// Checks that `file` is a capstan snapshot and installs it as the database at `db`, which
    /// must not exist yet.
    pub fn restore_file(file: &Path, db: &Path) -> Result<Revision> {
        if db.exists() {
            return Err(StoreError::Internal(format!(
                "{} already exists; restore into an empty data directory",
                db.display()
            )));
        }
        let source = schema::open_existing_read_only(file)?;
        let revision = schema::read_revisions(&source).map_err(internal)?.current;
        backup(&source, db)?;
        Ok(revision)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        let (reply, response) = oneshot::channel();
        self.send(Command::Write { op, reply }).await?;
        response.await.map_err(|_| writer_gone())?
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.inner.commands.send(command).await.map_err(|_| writer_gone())
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.inner.read(f).await
    }
}

impl Inner {
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.clone();
        tokio::task::spawn_blocking(move || inner.readers.with(f))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Internal("the SQLite writer thread has stopped".into())
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn backup(source: &Connection, out: &Path) -> Result<()> {
    let mut target = Connection::open(out).map_err(internal)?;
    let backup = rusqlite::backup::Backup::new(source, &mut target).map_err(internal)?;
    backup
        .run_to_completion(1024, std::time::Duration::ZERO, None)
        .map_err(|e| StoreError::Internal(format!("backup to {}: {e}", out.display())))?;
    drop(backup);
    // The copy keeps the source's journal mode; make it a plain single file.
    target.pragma_update(None, "journal_mode", "DELETE").map_err(internal)?;
    Ok(())
}

/// Reader connections reused across requests; one is opened whenever all are busy.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// Runs `f` in one read transaction, so everything it reads is from one snapshot.
fn in_snapshot<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection, Revisions) -> Result<T>,
) -> Result<T> {
    let tx = conn.unchecked_transaction().map_err(internal)?;
    let revisions = schema::read_revisions(&tx).map_err(internal)?;
    let result = f(&tx, revisions);
    tx.finish().map_err(internal)?;
    result
}

/// Checks that a read at `revision` can be served from the history kept.
fn check_readable(revision: Revision, revisions: Revisions) -> Result<()> {
    if revision < revisions.compacted {
        return Err(StoreError::Compacted { requested: revision, compacted: revisions.compacted });
    }
    if revision > revisions.current {
        return Err(StoreError::FutureRevision { requested: revision, current: revisions.current });
    }
    Ok(())
}

fn row_to_kv(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    let key: Vec<u8> = row.get(0)?;
    let value: Vec<u8> = row.get(1)?;
    Ok(KeyValue {
        key: String::from_utf8_lossy(&key).into_owned(),
        value: Bytes::from(value),
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

fn list_at(conn: &Connection, request: &ListRequest, revision: Revision) -> Result<ListResponse> {
    let start = match &request.start_key {
        Some(start) if start.as_str() > request.prefix.as_str() => start.as_bytes(),
        _ => request.prefix.as_bytes(),
    };
    // An empty prefix has no end: 0xff.. sorts after every UTF-8 key.
    let end = prefix_end(&request.prefix).unwrap_or_else(|| vec![0xff; 8]);
    let limit = request.limit.filter(|l| *l > 0);
    // One more than asked tells whether more follow.
    let fetch = limit.map_or(-1, |l| l as i64 + 1);
    let mut statement = conn
        .prepare_cached(
            "SELECT key, value, create_rev, rev FROM log AS l \
             WHERE key >= ?1 AND key < ?2 AND rev <= ?3 AND deleted = 0 \
             AND rev = (SELECT max(rev) FROM log WHERE key = l.key AND rev <= ?3) \
             ORDER BY key LIMIT ?4",
        )
        .map_err(internal)?;
    let mut kvs = statement
        .query_map(params![start, end, revision, fetch], row_to_kv)
        .map_err(internal)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(internal)?;
    let more = limit.is_some_and(|l| kvs.len() > l);
    if let Some(l) = limit {
        kvs.truncate(l);
    }
    Ok(ListResponse { kvs, revision, more })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT key, value, create_rev, rev, deleted FROM log WHERE key = ?1 \
                 ORDER BY rev DESC LIMIT 1",
            )
            .map_err(internal)?
            .query_row([key.as_bytes()], |r| Ok((row_to_kv(r)?, r.get::<_, bool>(4)?)))
            .optional()
            .map_err(internal)
            .map(|row| row.filter(|(_, deleted)| !deleted).map(|(kv, _)| kv))
        })
        .await
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        self.read(move |conn| {
            in_snapshot(conn, |conn, revisions| {
                let revision = request.revision.filter(|r| *r > 0).unwrap_or(revisions.current);
                check_readable(revision, revisions)?;
                list_at(conn, &request, revision)
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Create { key: key.to_owned(), value }).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Update { key: key.to_owned(), value, expected }).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.write(WriteOp::Delete { key: key.to_owned(), expected }).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::start(self.inner.clone(), prefix.to_owned(), after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.read(|conn| Ok(schema::read_revisions(conn).map_err(internal)?.current)).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let revisions = self.read(|conn| schema::read_revisions(conn).map_err(internal)).await?;
        if revision <= revisions.compacted {
            return Ok(());
        }
        if revision > revisions.current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: revisions.current,
            });
        }
        let (reply, done) = oneshot::channel();
        self.send(Command::MarkCompacted { revision, reply }).await?;
        done.await.map_err(|_| writer_gone())??;
        let mut cursor = 0;
        loop {
            let (reply, done) = oneshot::channel();
            self.send(Command::CompactStep { revision, cursor, reply }).await?;
            match done.await.map_err(|_| writer_gone())?? {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }

    async fn snapshot(&self, path: &Path) -> Result<()> {
        let path = path.to_owned();
        self.read(move |conn| backup(conn, &path)).await
    }
}
