//! The framework runtime: a profile's plugins per extension point, the parallel search for
//! feasible nodes (stopping early like upstream's percentageOfNodesToScore), and scoring.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeStatuses, Plugin, PodInfo, PostFilterResult,
    Snapshot, Status,
};

/// Below this many nodes every node is examined (upstream's minFeasibleNodesToFind).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this (minFeasibleNodesPercentageToFind).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
/// Nodes one worker takes at a time.
const CHUNK: usize = 64;
/// Below this many wanted nodes one thread searches: a filter pass is cheap, and starting
/// workers each cycle would cost more than it saves.
const PARALLEL_MIN_WANTED: usize = 1024;

/// How many feasible nodes to look for before scoring: all of a small cluster; of a large one
/// `percentage`% or, unset, 50% minus 1% per 125 nodes (at least 5%), and never below 100.
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, all_nodes: usize) -> usize {
    if all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return all_nodes;
    }
    let percentage = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize.saturating_sub(all_nodes / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    (all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The outcome of the node search.
pub struct Feasible {
    /// Indexes of feasible nodes into the snapshot.
    pub nodes: Vec<usize>,
    /// Why the other examined nodes were rejected; only kept when no node fits (it is only
    /// read then, and most cycles reject thousands of nodes).
    pub statuses: NodeStatuses,
    /// How many nodes were examined (the next search starts after them).
    pub examined: usize,
}

/// One scheduling profile: its plugins in order, with score weights.
pub struct Framework {
    plugins: Vec<Arc<dyn Plugin>>,
    weights: Vec<i64>,
    percentage_of_nodes_to_score: Option<u32>,
    parallelism: usize,
}

impl Framework {
    /// `plugins` in the order their extension points run, each with its score weight.
    pub fn new(
        plugins: Vec<(Arc<dyn Plugin>, i64)>,
        percentage_of_nodes_to_score: Option<u32>,
    ) -> Self {
        let (plugins, weights) = plugins.into_iter().unzip();
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
        Self { plugins, weights, percentage_of_nodes_to_score, parallelism }
    }

    pub fn percentage_of_nodes_to_score(&self) -> Option<u32> {
        self.percentage_of_nodes_to_score
    }

    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// Runs every PreFilter; the first rejection ends the cycle.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Status {
        for plugin in &self.plugins {
            let Some(pre_filter) = plugin.as_pre_filter() else { continue };
            let status = pre_filter.pre_filter(state, pod, snapshot);
            match status.code() {
                super::Code::Success => {}
                super::Code::Skip => {
                    state.skip_filter.push(plugin.name());
                }
                _ => return status.from_plugin(plugin.name()),
            }
        }
        Status::success()
    }

    /// Runs the Filter plugins on one node; the first rejection is the node's status.
    pub fn run_filters(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        filter_node(&self.active_filters(state), state, pod, node)
    }

    /// The Filter plugins this cycle runs (those whose PreFilter did not skip them), found
    /// once per cycle rather than once per node.
    fn active_filters(&self, state: &CycleState) -> Vec<(&'static str, &dyn super::Filter)> {
        self.plugins
            .iter()
            .filter(|plugin| !state.skip_filter.contains(&plugin.name()))
            .filter_map(|plugin| Some((plugin.name(), plugin.as_filter()?)))
            .collect()
    }

    /// Filters with the nominated pods of at least the pod's priority counted on the node
    /// (room freed by preemption is kept for its preemptor), then as the node is.
    pub fn run_filters_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
    ) -> Status {
        Self::filter_with_nominated(&self.active_filters(state), state, pod, node, nominated)
    }

    fn filter_with_nominated(
        filters: &[(&'static str, &dyn super::Filter)],
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
    ) -> Status {
        if nominated.is_empty() {
            return filter_node(filters, state, pod, node);
        }
        let others: Vec<&Arc<PodInfo>> = nominated
            .get(&node.name)
            .into_iter()
            .flatten()
            .filter(|p| p.priority >= pod.priority && p.key != pod.key)
            .collect();
        if !others.is_empty() {
            let mut with = node.clone();
            for other in others {
                with.add_pod(other.clone());
            }
            let status = filter_node(filters, state, pod, &with);
            if !status.is_success() {
                return status;
            }
        }
        filter_node(filters, state, pod, node)
    }

    /// Examines nodes from `start` round the ring, in parallel chunks, until `want` feasible
    /// nodes are found or every node has been examined.
    pub fn find_feasible(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nominated: &HashMap<String, Vec<Arc<PodInfo>>>,
        start: usize,
        want: usize,
    ) -> Feasible {
        let nodes = snapshot.nodes();
        let total = nodes.len();
        let next = AtomicUsize::new(0);
        let found = AtomicUsize::new(0);
        let filters = self.active_filters(state);
        let work = || {
            let mut feasible = Vec::new();
            let mut statuses = Vec::new();
            let mut examined = 0;
            loop {
                let first = next.fetch_add(CHUNK, Ordering::Relaxed);
                if first >= total || found.load(Ordering::Relaxed) >= want {
                    break;
                }
                for offset in first..(first + CHUNK).min(total) {
                    let index = (start + offset) % total;
                    let node = &nodes[index];
                    if !node.exists {
                        continue;
                    }
                    examined += 1;
                    let status = Self::filter_with_nominated(&filters, state, pod, node, nominated);
                    if status.is_success() {
                        if found.fetch_add(1, Ordering::Relaxed) < want {
                            feasible.push((offset, index));
                        }
                    } else {
                        statuses.push((index, status));
                    }
                }
            }
            (feasible, statuses, examined)
        };
        let workers = if want < PARALLEL_MIN_WANTED {
            1
        } else {
            self.parallelism.min(total.div_ceil(CHUNK * 4)).max(1)
        };
        let results = if workers == 1 {
            vec![work()]
        } else {
            std::thread::scope(|scope| {
                // A worker that cannot be started leaves its share to the others.
                let handles: Vec<_> = (1..workers)
                    .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
                    .collect();
                let mut results = vec![work()];
                results.extend(handles.into_iter().filter_map(|h| h.join().ok()));
                results
            })
        };
        let mut feasible = Vec::new();
        let mut rejected = Vec::new();
        let mut examined = 0;
        for (f, s, e) in results {
            feasible.extend(f);
            rejected.extend(s);
            examined += e;
        }
        let statuses = if feasible.is_empty() {
            rejected
                .into_iter()
                .map(|(index, status)| (nodes[index].name.clone(), status))
                .collect()
        } else {
            NodeStatuses::new()
        };
        // Ring order, as a sequential search would have found them.
        feasible.sort_unstable();
        feasible.truncate(want);
        Feasible {
            nodes: feasible.into_iter().map(|(_, index)| index).collect(),
            statuses,
            examined,
        }
    }

    /// Runs the PostFilter plugins until one nominates a node.
    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeStatuses,
    ) -> Option<PostFilterResult> {
        let mut last = None;
        for plugin in &self.plugins {
            let Some(post_filter) = plugin.as_post_filter() else { continue };
            let result = post_filter.post_filter(state, pod, snapshot, statuses, self);
            if result.nominated_node.is_some() {
                return Some(result);
            }
            last = Some(result);
        }
        last
    }

    /// PreScore then Score, normalized and weighted: one total per feasible node.
    pub fn score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        feasible: &[usize],
    ) -> Vec<i64> {
        for plugin in &self.plugins {
            if let Some(pre_score) = plugin.as_pre_score() {
                let status = pre_score.pre_score(state, pod, snapshot, feasible);
                if status.code() == super::Code::Skip {
                    state.skip_score.push(plugin.name());
                }
            }
        }
        let state = &*state;
        let mut totals = vec![0i64; feasible.len()];
        for (plugin, weight) in self.plugins.iter().zip(&self.weights) {
            let Some(score) = plugin.as_score() else { continue };
            if state.skip_score.contains(&plugin.name()) || *weight == 0 {
                continue;
            }
            let mut scores: Vec<i64> =
                feasible.iter().map(|i| score.score(state, pod, &snapshot.nodes()[*i])).collect();
            score.normalize(state, pod, &mut scores);
            for (total, s) in totals.iter_mut().zip(scores) {
                *total += s.clamp(0, MAX_NODE_SCORE) * weight;
            }
        }
        totals
    }

    /// Runs Reserve in order; on a failure, unreserves those that already reserved.
    pub fn run_reserve(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for (i, plugin) in self.plugins.iter().enumerate() {
            let Some(reserve) = plugin.as_reserve() else { continue };
            let status = reserve.reserve(state, pod, node);
            if !status.is_success() {
                for earlier in self.plugins[..i].iter().rev().filter_map(|p| p.as_reserve()) {
                    earlier.unreserve(state, pod, node);
                }
                return status.from_plugin(plugin.name());
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for reserve in self.plugins.iter().rev().filter_map(|p| p.as_reserve()) {
            reserve.unreserve(state, pod, node);
        }
    }

    /// Runs Permit; waiting is not supported by any built-in plugin and counts as a rejection.
    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for plugin in &self.plugins {
            let Some(permit) = plugin.as_permit() else { continue };
            let status = permit.permit(state, pod, node);
            if !status.is_success() {
                return status.from_plugin(plugin.name());
            }
        }
        Status::success()
    }

    /// The first Bind plugin binds.
    pub fn binder(&self) -> Option<Arc<dyn Plugin>> {
        self.plugins.iter().find(|p| p.as_bind().is_some()).cloned()
    }
}

/// Runs `filters` on one node; the first rejection is the node's status.
fn filter_node(
    filters: &[(&'static str, &dyn super::Filter)],
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Status {
    if !node.exists {
        return Status::unresolvable("node(s) were not found").from_plugin("");
    }
    for (name, filter) in filters {
        let status = filter.filter(state, pod, node);
        if !status.is_success() {
            return status.from_plugin(name);
        }
    }
    Status::success()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_node_counts_follow_percentage_of_nodes_to_score() {
        let cases = [
            (None, 50, 50),
            (None, 100, 100),
            (None, 1000, 420),
            (None, 5000, 500),
            (None, 6000, 300),
            (None, 10_000, 500),
            (Some(10), 500, 100),
            (Some(100), 5000, 5000),
        ];
        for (percentage, nodes, expected) in cases {
            assert_eq!(
                num_feasible_nodes_to_find(percentage, nodes),
                expected,
                "{percentage:?} of {nodes}"
            );
        }
    }
}
