//! Controller expectations (upstream's ControllerExpectations): after a controller asks for
//! creations or deletions it waits to see them in its cache before acting again, so a cache
//! that lags behind its own writes never makes it create or delete twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Expectations older than this are given up on (a lost watch event must not stall forever).
const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Pending {
    creations: i64,
    /// Uids of pods asked to be deleted and not yet seen gone or terminating.
    deletions: HashSet<String>,
    since: Instant,
}

/// Outstanding creations and deletions per controller key (`kind/namespace/name`).
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Pending>) -> R) -> R {
        f(&mut self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True when the controller may act on its cache: nothing is outstanding, or it expired.
    pub fn satisfied(&self, key: &str) -> bool {
        self.with(|pending| match pending.get(key) {
            None => true,
            Some(p) => (p.creations <= 0 && p.deletions.is_empty()) || p.since.elapsed() > TTL,
        })
    }

    /// Records that `count` creations are about to be issued.
    pub fn expect_creations(&self, key: &str, count: usize) {
        self.with(|pending| {
            pending.insert(
                key.to_owned(),
                Pending {
                    creations: count as i64,
                    deletions: HashSet::new(),
                    since: Instant::now(),
                },
            );
        });
    }

    /// Records that the pods with these uids are about to be deleted.
    pub fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.with(|pending| {
            pending.insert(
                key.to_owned(),
                Pending {
                    creations: 0,
                    deletions: uids.into_iter().collect(),
                    since: Instant::now(),
                },
            );
        });
    }

    /// A creation was seen in the cache, or will never happen (the request failed or was
    /// skipped).
    pub fn creation_observed(&self, key: &str) {
        self.with(|pending| {
            if let Some(p) = pending.get_mut(key) {
                p.creations -= 1;
            }
        });
    }

    /// A deletion was seen (pod gone or terminating), or will never happen.
    pub fn deletion_observed(&self, key: &str, uid: &str) {
        self.with(|pending| {
            if let Some(p) = pending.get_mut(key) {
                p.deletions.remove(uid);
            }
        });
    }

    /// Forgets a controller that is gone.
    pub fn forget(&self, key: &str) {
        self.with(|pending| pending.remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::Expectations;

    #[test]
    fn satisfied_only_once_every_creation_and_deletion_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("rs/ns/a"), "no expectations recorded");
        e.expect_creations("rs/ns/a", 2);
        e.creation_observed("rs/ns/a");
        assert!(!e.satisfied("rs/ns/a"));
        e.creation_observed("rs/ns/a");
        assert!(e.satisfied("rs/ns/a"));
        e.expect_deletions("rs/ns/a", ["u1".to_owned(), "u2".to_owned()]);
        e.deletion_observed("rs/ns/a", "u1");
        e.deletion_observed("rs/ns/a", "u1");
        assert!(!e.satisfied("rs/ns/a"), "a repeated observation counts once");
        e.deletion_observed("rs/ns/a", "u2");
        assert!(e.satisfied("rs/ns/a"));
        assert!(e.satisfied("rs/ns/b"), "keys are independent");
    }
}
