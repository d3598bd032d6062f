//! The single writer thread: group commit. Every write waiting when a batch starts goes into one
//! transaction with one WAL sync; replies and watch events leave only after the commit returns.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{EventKind, KeyValue, Revision, StoreError, WatchEvent};

/// Upper bound on writes per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 2048;
/// Rows examined per compaction step; steps interleave with write batches.
const COMPACTION_STEP_ROWS: i64 = 2000;

pub(crate) enum WriteOp {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, expected: Revision },
    Delete { key: String, expected: Option<Revision> },
}

pub(crate) enum Command {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue, StoreError>>,
    },
    /// Raises the compacted revision so reads and watches below it fail from now on.
    MarkCompacted {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Deletes superseded history among the rows after `cursor`; replies with the next cursor,
    /// or `None` when every row at or below `revision` has been examined.
    CompactStep {
        revision: Revision,
        cursor: Revision,
        reply: oneshot::Sender<Result<Option<Revision>, StoreError>>,
    },
}

/// A batch of committed events, shared by every watcher.
pub(crate) type EventBatch = Arc<Vec<WatchEvent>>;

pub(crate) struct Writer {
    conn: Connection,
    /// The revision of the last committed write.
    revision: Revision,
    events: broadcast::Sender<EventBatch>,
}

/// The current row of a key, without its value (only a conflict or a delete needs that).
struct Head {
    rev: Revision,
    create_rev: Revision,
    deleted: bool,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        revision: Revision,
        events: broadcast::Sender<EventBatch>,
    ) -> Self {
        Self { conn, revision, events }
    }

    /// Runs until every sender is dropped.
    pub(crate) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::new();
        while let Some(first) = commands.blocking_recv() {
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Write { op, reply } => {
                        batch.push((op, reply));
                        if batch.len() < MAX_BATCH {
                            next = commands.try_recv().ok();
                        }
                    }
                    other => {
                        self.commit_batch(&mut batch);
                        self.run_maintenance(other);
                        next = commands.try_recv().ok();
                    }
                }
            }
            self.commit_batch(&mut batch);
        }
    }

    fn commit_batch(
        &mut self,
        batch: &mut Vec<(WriteOp, oneshot::Sender<Result<KeyValue, StoreError>>)>,
    ) {
        if batch.is_empty() {
            return;
        }
        let start = self.revision;
        match apply_batch(&mut self.conn, start, batch.iter().map(|(op, _)| op)) {
            Ok((results, revision)) => {
                self.revision = revision;
                let mut events = Vec::new();
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    if let Ok(event) = &result {
                        events.push(event.clone());
                    }
                    let _ = reply.send(result.map(|event| event.kv));
                }
                if !events.is_empty() {
                    // No receiver is fine: nobody is watching.
                    let _ = self.events.send(Arc::new(events));
                }
            }
            Err(e) => {
                let message = format!("commit failed, nothing written: {e}");
                tracing::error!("{message}");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StoreError::Internal(message.clone())));
                }
            }
        }
    }

    fn run_maintenance(&mut self, command: Command) {
        match command {
            Command::Write { .. } => unreachable!("writes are batched"),
            Command::MarkCompacted { revision, reply } => {
                let result = self
                    .conn
                    .execute(
                        "UPDATE meta SET value = max(value, ?1) WHERE name = 'compacted'",
                        [revision],
                    )
                    .map(drop)
                    .map_err(internal);
                let _ = reply.send(result);
            }
            Command::CompactStep { revision, cursor, reply } => {
                let _ =
                    reply.send(compact_step(&mut self.conn, revision, cursor).map_err(internal));
            }
        }
    }
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Applies each write in one transaction. A write whose check fails (exists, conflict, …) gets
/// its error and takes no revision; an SQL error aborts the whole batch.
fn apply_batch<'a>(
    conn: &mut Connection,
    start: Revision,
    ops: impl Iterator<Item = &'a WriteOp>,
) -> rusqlite::Result<(Vec<Result<WatchEvent, StoreError>>, Revision)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut revision = start;
    let mut results = Vec::new();
    for op in ops {
        let result = apply(&tx, op, revision + 1)?;
        if result.is_ok() {
            revision += 1;
        }
        results.push(result);
    }
    if revision != start {
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
            .execute([revision])?;
    }
    tx.commit()?;
    Ok((results, revision))
}

fn apply(
    tx: &Transaction<'_>,
    op: &WriteOp,
    rev: Revision,
) -> rusqlite::Result<Result<WatchEvent, StoreError>> {
    match op {
        WriteOp::Create { key, value } => {
            if head(tx, key)?.is_some_and(|h| !h.deleted) {
                return Ok(Err(StoreError::AlreadyExists(key.clone())));
            }
            insert(tx, rev, key, rev, false, value)?;
            Ok(Ok(put_event(key, value, rev, rev)))
        }
        WriteOp::Update { key, value, expected } => {
            let Some(head) = head(tx, key)?.filter(|h| !h.deleted) else {
                return Ok(Err(StoreError::NotFound(key.clone())));
            };
            if head.rev != *expected {
                return Ok(Err(conflict(tx, key, *expected, &head)?));
            }
            insert(tx, rev, key, head.create_rev, false, value)?;
            Ok(Ok(put_event(key, value, head.create_rev, rev)))
        }
        WriteOp::Delete { key, expected } => {
            let Some(head) = head(tx, key)?.filter(|h| !h.deleted) else {
                return Ok(Err(StoreError::NotFound(key.clone())));
            };
            if let Some(expected) = expected.filter(|expected| *expected != head.rev) {
                return Ok(Err(conflict(tx, key, expected, &head)?));
            }
            let value = value_at(tx, head.rev)?;
            insert(tx, rev, key, head.create_rev, true, &value)?;
            let kv = KeyValue {
                key: key.clone(),
                value,
                create_revision: head.create_rev,
                mod_revision: rev,
            };
            Ok(Ok(WatchEvent { kind: EventKind::Delete, kv }))
        }
    }
}

fn put_event(key: &str, value: &Bytes, create_rev: Revision, rev: Revision) -> WatchEvent {
    let kv = KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: create_rev,
        mod_revision: rev,
    };
    WatchEvent { kind: EventKind::Put, kv }
}

fn head(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<Head>> {
    tx.prepare_cached(
        "SELECT rev, create_rev, deleted FROM log WHERE key = ?1 ORDER BY rev DESC LIMIT 1",
    )?
    .query_row([key.as_bytes()], |r| {
        Ok(Head { rev: r.get(0)?, create_rev: r.get(1)?, deleted: r.get(2)? })
    })
    .optional()
}

fn value_at(tx: &Transaction<'_>, rev: Revision) -> rusqlite::Result<Bytes> {
    tx.prepare_cached("SELECT value FROM log WHERE rev = ?1")?
        .query_row([rev], |r| r.get::<_, Vec<u8>>(0))
        .map(Bytes::from)
}

fn conflict(
    tx: &Transaction<'_>,
    key: &str,
    expected: Revision,
    head: &Head,
) -> rusqlite::Result<StoreError> {
    let current = KeyValue {
        key: key.to_owned(),
        value: value_at(tx, head.rev)?,
        create_revision: head.create_rev,
        mod_revision: head.rev,
    };
    Ok(StoreError::Conflict { key: key.to_owned(), expected, current: Box::new(current) })
}

fn insert(
    tx: &Transaction<'_>,
    rev: Revision,
    key: &str,
    create_rev: Revision,
    deleted: bool,
    value: &[u8],
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (rev, key, create_rev, deleted, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![rev, key.as_bytes(), create_rev, deleted, value])?;
    Ok(())
}

/// One bounded step of compaction to `revision`: among the next rows after `cursor`, deletes
/// those no read at or after `revision` can see (superseded at or below it, or tombstones).
fn compact_step(
    conn: &mut Connection,
    revision: Revision,
    cursor: Revision,
) -> rusqlite::Result<Option<Revision>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let end: Option<Revision> = tx.query_row(
        "SELECT max(rev) FROM (SELECT rev FROM log WHERE rev > ?1 AND rev <= ?2 ORDER BY rev LIMIT ?3)",
        params![cursor, revision, COMPACTION_STEP_ROWS],
        |r| r.get(0),
    )?;
    if let Some(end) = end {
        tx.execute(
            "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND (deleted = 1 OR EXISTS \
             (SELECT 1 FROM log AS newer WHERE newer.key = log.key AND newer.rev > log.rev \
              AND newer.rev <= ?3))",
            params![cursor, end, revision],
        )?;
    }
    tx.commit()?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(key: &str) -> WriteOp {
        WriteOp::Create { key: key.into(), value: Bytes::from_static(b"v") }
    }

    #[test]
    fn writes_are_acknowledged_only_after_their_commit_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::schema::open_writer(&dir.path().join("state.db")).unwrap();
        // Veto every commit, as a failed WAL sync would.
        conn.commit_hook(Some(|| true)).unwrap();
        let (events, mut watched) = broadcast::channel(16);
        let mut writer = Writer::new(conn, 0, events);
        let (reply_a, ack_a) = oneshot::channel();
        let (reply_b, ack_b) = oneshot::channel();
        let mut batch = vec![(create("/a"), reply_a), (create("/b"), reply_b)];
        writer.commit_batch(&mut batch);

        assert!(ack_a.blocking_recv().unwrap().is_err(), "no ack without a commit");
        assert!(ack_b.blocking_recv().unwrap().is_err(), "no ack without a commit");
        assert!(watched.try_recv().is_err(), "no event without a commit");
        assert_eq!(writer.revision, 0);

        writer.conn.commit_hook(None::<fn() -> bool>).unwrap();
        let rows: i64 =
            writer.conn.query_row("SELECT count(*) FROM log", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0);
        let (reply, ack) = oneshot::channel();
        writer.commit_batch(&mut vec![(create("/a"), reply)]);
        assert_eq!(ack.blocking_recv().unwrap().unwrap().mod_revision, 1);
        assert_eq!(watched.try_recv().unwrap().len(), 1);
    }
}
