//! Watches on the embedded store: replay history from disk, then follow committed batches.
//! A watcher that falls behind the in-memory feed catches up from disk again, so slowness costs
//! a re-read, never a gap.

use std::sync::Arc;

use rusqlite::params;
use tokio::sync::{broadcast, mpsc};

use super::{Inner, in_snapshot, internal, row_to_kv, writer::EventBatch};
use crate::{EventKind, Result, Revision, StoreError, WatchEvent, WatchStream, prefix_end};

/// History rows read per disk round trip.
const HISTORY_PAGE: i64 = 1000;
/// Events buffered between a watcher's task and its consumer.
const STREAM_BUFFER: usize = 256;

pub(super) async fn start(
    inner: Arc<Inner>,
    prefix: String,
    after: Revision,
) -> Result<WatchStream> {
    // Subscribe before reading history: whatever commits after this point arrives live, and
    // whatever committed before it is on disk.
    let live = inner.events.subscribe();
    let first = read_history(&inner, &prefix, after).await?;
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(follow(inner, prefix, after, first, live, sender));
    Ok(Box::pin(futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })))
}

/// A page of history: events after a revision, and how far the page covers.
struct HistoryPage {
    events: Vec<WatchEvent>,
    /// Every revision up to here has been examined.
    covered: Revision,
    /// Nothing more was committed before the page's snapshot.
    complete: bool,
}

async fn follow(
    inner: Arc<Inner>,
    prefix: String,
    mut cursor: Revision,
    first: HistoryPage,
    mut live: broadcast::Receiver<EventBatch>,
    sender: mpsc::Sender<Result<WatchEvent>>,
) {
    let mut page = Some(first);
    loop {
        // Catch up from disk.
        loop {
            let current = match page.take() {
                Some(p) => p,
                None => match read_history(&inner, &prefix, cursor).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                },
            };
            for event in current.events {
                if sender.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            cursor = current.covered;
            if current.complete {
                break;
            }
        }
        // Follow live batches until the feed outruns us.
        loop {
            let batch = tokio::select! {
                batch = live.recv() => batch,
                () = sender.closed() => return,
            };
            match batch {
                Ok(batch) => {
                    let seen = cursor;
                    for event in batch.iter().filter(|e| e.kv.mod_revision > seen) {
                        cursor = event.kv.mod_revision;
                        if event.kv.key.starts_with(&prefix)
                            && sender.send(Ok(event.clone())).await.is_err()
                        {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

async fn read_history(inner: &Arc<Inner>, prefix: &str, after: Revision) -> Result<HistoryPage> {
    let prefix = prefix.to_owned();
    inner
        .read(move |conn| {
            in_snapshot(conn, |conn, revisions| {
                if after < revisions.compacted {
                    return Err(StoreError::Compacted {
                        requested: after,
                        compacted: revisions.compacted,
                    });
                }
                let end = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; 8]);
                // Page by revision, not by matching rows, so sparse prefixes still advance.
                let upto = revisions.current.min(after.saturating_add(HISTORY_PAGE));
                let mut statement = conn
                    .prepare_cached(
                        "SELECT key, value, create_rev, rev, deleted FROM log \
                         WHERE rev > ?1 AND rev <= ?2 AND key >= ?3 AND key < ?4 ORDER BY rev",
                    )
                    .map_err(internal)?;
                let events = statement
                    .query_map(params![after, upto, prefix.as_bytes(), end], |r| {
                        let kind =
                            if r.get::<_, bool>(4)? { EventKind::Delete } else { EventKind::Put };
                        Ok(WatchEvent { kind, kv: row_to_kv(r)? })
                    })
                    .map_err(internal)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(internal)?;
                Ok(HistoryPage {
                    events,
                    covered: upto.max(after),
                    complete: upto >= revisions.current,
                })
            })
        })
        .await
}
