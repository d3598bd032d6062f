//! The scheduling framework: one trait per extension point, a per-cycle state, the status codes,
//! and the runtime that calls the plugins of a profile in order.

pub mod resources;
mod runtime;
pub mod selectors;
mod snapshot;
mod status;
pub mod types;

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use runtime::{Feasible, Framework, num_feasible_nodes_to_find};
pub use snapshot::Snapshot;
pub use status::{Code, Status};
pub use types::{NodeInfo, PodInfo};

/// The highest score a Score plugin gives (after normalizing).
pub const MAX_NODE_SCORE: i64 = 100;

/// Data plugins compute in PreFilter/PreScore and read in Filter/Score, for one pod's cycle.
#[derive(Default)]
pub struct CycleState {
    /// Read for every node examined, by plugins that keep a handful of entries: a scan of a
    /// short list beats hashing the key (this lookup was 4 % of the server's time).
    data: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
    /// Plugins whose PreFilter returned Skip: their Filter is not called this cycle.
    pub skip_filter: Vec<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not called this cycle.
    pub skip_score: Vec<&'static str>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        match self.data.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = Box::new(value),
            None => self.data.push((key, Box::new(value))),
        }
    }

    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data.iter().find(|(k, _)| *k == key)?.1.downcast_ref()
    }
}

/// A map looked up for every node or pod a cycle examines: foldhash is several times faster
/// than the default SipHash on short string keys, and still seeded per map.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Why each node was rejected, by node name (the pod's condition message is built from it).
pub type NodeStatuses = HashMap<String, Status>;

/// Every plugin has a name and says which extension points it implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        None
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilter> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        None
    }
    fn as_score(&self) -> Option<&dyn Score> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn Reserve> {
        None
    }
    fn as_permit(&self) -> Option<&dyn Permit> {
        None
    }
    fn as_bind(&self) -> Option<&dyn Bind> {
        None
    }
}

/// Checks the pod once per cycle and computes what its Filter needs; Skip skips its Filter.
pub trait PreFilter {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status;
}

/// Whether the pod can run on one node; called for many nodes in parallel.
pub trait Filter: Sync {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin decided: a node to nominate and the pods to evict to make room.
#[derive(Debug)]
pub struct PostFilterResult {
    pub status: Status,
    pub nominated_node: Option<String>,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Runs when no node fits (preemption).
pub trait PostFilter {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeStatuses,
        framework: &Framework,
    ) -> PostFilterResult;
}

/// Computes what Score needs from the feasible nodes (indexes into the snapshot's nodes).
pub trait PreScore {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        feasible: &[usize],
    ) -> Status;
}

/// Ranks a feasible node; `normalize` maps the raw scores of all feasible nodes to 0..=100.
pub trait Score: Sync {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// Claims per-node resources for the pod before binding; `unreserve` gives them back.
pub trait Reserve {
    fn reserve(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str);
}

/// Approves, rejects or (Wait) holds the binding of a reserved pod.
pub trait Permit {
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

/// Writes the decision to the API server.
pub trait Bind {
    fn bind(&self, pod: &PodInfo, node: &str) -> Pin<Box<dyn Future<Output = Status> + Send>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_state_reads_what_was_written_last_under_a_key_and_type() {
        let mut state = CycleState::default();
        state.write("a", 1_i64);
        state.write("b", "text");
        state.write("a", 2_i64);
        assert_eq!(state.read::<i64>("a"), Some(&2));
        assert_eq!(state.read::<&str>("b"), Some(&"text"));
        assert_eq!(state.read::<i32>("a"), None, "another type under the key");
        assert_eq!(state.read::<i64>("c"), None);
    }
}
