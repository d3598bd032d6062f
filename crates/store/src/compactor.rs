//! Periodic compaction, as kube-apiserver does it: every interval, compact to the revision that
//! was current one interval ago, so history covers at least the last interval.

use std::sync::Arc;
use std::time::Duration;

use crate::{Revision, Store};

/// Kubernetes' default `--etcd-compaction-interval`.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

pub struct Compactor {
    store: Arc<dyn Store>,
    interval: Duration,
}

impl Compactor {
    pub fn new(store: Arc<dyn Store>, interval: Duration) -> Self {
        Self { store, interval }
    }

    /// Runs until `shutdown` resolves. Errors are logged and retried at the next tick.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Option<Revision> = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = &mut shutdown => return,
            }
            if let Some(revision) = previous.filter(|r| *r > 0) {
                match self.store.compact(revision).await {
                    Ok(()) => tracing::debug!(revision, "compacted store history"),
                    Err(e) => tracing::warn!(revision, "store compaction failed: {e}"),
                }
            }
            match self.store.current_revision().await {
                Ok(revision) => previous = Some(revision),
                Err(e) => tracing::warn!("cannot read the store revision for compaction: {e}"),
            }
        }
    }
}
