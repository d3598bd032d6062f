//! The scheduling thread: owns the cache and the queue, applies what the watches report, and
//! runs one scheduling cycle at a time (filter, score, assume), handing bindings to async tasks.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::framework::{
    CycleState, Framework, NodeStatuses, PodInfo, Status, num_feasible_nodes_to_find,
};
use crate::queue::{ClusterEvent, SchedulingQueue};
use crate::report::Reporter;
use crate::watch::{Input, PodUpdate};

/// The longest the thread sleeps without looking at the stop flag and the queue's timers.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Bindings in flight at most. kube's client speaks HTTP/1.1, one request per connection, so
/// unbounded bursts would open (and TLS-handshake) a connection per pod.
const MAX_BINDINGS_IN_FLIGHT: usize = 32;

pub struct Scheduler {
    framework: Arc<Framework>,
    cache: Cache,
    queue: SchedulingQueue,
    reporter: Reporter,
    runtime: tokio::runtime::Handle,
    /// Failed bindings come back through the same channel as the watches.
    inputs: Sender<Input>,
    /// Where the next node search starts, so nodes share the load round the ring.
    next_start: usize,
    /// Tie-breaking between equally scored nodes.
    random: u64,
    bindings_in_flight: Arc<tokio::sync::Semaphore>,
}

impl Scheduler {
    pub fn new(
        framework: Framework,
        reporter: Reporter,
        runtime: tokio::runtime::Handle,
        inputs: Sender<Input>,
    ) -> Self {
        Self {
            framework: Arc::new(framework),
            cache: Cache::default(),
            queue: SchedulingQueue::default(),
            reporter,
            runtime,
            inputs,
            next_start: 0,
            random: 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()),
            bindings_in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_BINDINGS_IN_FLIGHT)),
        }
    }

    pub fn run(mut self, received: Receiver<Input>, stopped: Arc<AtomicBool>) {
        tracing::info!(plugins = ?self.framework.plugin_names(), "scheduler started");
        loop {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            loop {
                match received.try_recv() {
                    Ok(input) => self.apply(input),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            let next_backoff = self.queue.flush(now);
            if let Some((pod, attempts)) = self.queue.pop() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                self.schedule_one(pod, attempts);
                continue;
            }
            let wait = next_backoff
                .map_or(IDLE_WAIT, |at| at.saturating_duration_since(now).min(IDLE_WAIT));
            match received.recv_timeout(wait) {
                Ok(input) => self.apply(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn apply(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::NodeApplied(node) => {
                let known = self
                    .cache
                    .snapshot()
                    .get(node.metadata.name.as_deref().unwrap_or_default())
                    .is_some_and(|n| n.exists);
                if self.cache.set_node(&node) {
                    let event =
                        if known { ClusterEvent::NodeChanged } else { ClusterEvent::NodeAdded };
                    self.queue.on_event(event, now);
                }
            }
            Input::NodeDeleted(name) => self.cache.remove_node(&name),
            Input::NodesListed(names) => {
                for name in self.cache.node_names() {
                    if !names.contains(&name) {
                        self.cache.remove_node(&name);
                    }
                }
            }
            Input::PodApplied(update) => self.apply_pod(update, now),
            Input::PodDeleted(key) => self.delete_pod(&key, now),
            Input::PodsListed(keys) => {
                for key in self.cache.pod_keys() {
                    if !keys.contains(&key) {
                        self.delete_pod(&key, now);
                    }
                }
            }
            Input::PdbApplied(key, pdb) => self.cache.set_pdb(key, pdb),
            Input::PdbDeleted(key) => self.cache.remove_pdb(&key),
            Input::PdbsListed(keys) => {
                for key in self.cache.pdb_keys() {
                    if !keys.contains(&key) {
                        self.cache.remove_pdb(&key);
                    }
                }
            }
            Input::BindFailed { pod, attempts, retry } => {
                self.cache.forget(&pod.key);
                if retry {
                    self.queue.requeue_after_error(pod, attempts, now);
                }
                self.queue.on_event(ClusterEvent::AssignedPodDeleted, now);
            }
        }
    }

    fn apply_pod(&mut self, update: PodUpdate, now: Instant) {
        let PodUpdate { pod, node, ours } = update;
        if let Some(node) = node {
            self.queue.done(&pod.key);
            self.cache.add_pod(pod, &node);
            self.queue.on_event(ClusterEvent::AssignedPodAdded, now);
            return;
        }
        let deleting = pod.deleting;
        if !ours || deleting {
            self.queue.delete(&pod.key);
            return;
        }
        // Assumed and being bound: the watch has not caught up yet.
        if !self.cache.is_assumed(&pod.key) {
            self.queue.add_or_update(pod, now);
        }
    }

    fn delete_pod(&mut self, key: &str, now: Instant) {
        self.queue.delete(key);
        if self.cache.contains(key) {
            self.cache.remove_pod(key);
            self.queue.on_event(ClusterEvent::AssignedPodDeleted, now);
        }
        self.cache.clear_nomination(key);
    }

    /// One scheduling cycle: PreFilter, Filter (nominated node first), PostFilter when nothing
    /// fits, Score, then Reserve (assume) and Permit; binding continues asynchronously.
    fn schedule_one(&mut self, pod: Arc<PodInfo>, attempts: u32) {
        let now = Instant::now();
        let mut state = CycleState::default();
        let snapshot = self.cache.snapshot();
        let total = snapshot.node_count();
        if total == 0 {
            self.fail(
                pod,
                "0/0 nodes are available: no nodes available to schedule pods.".into(),
                HashSet::new(),
                now,
            );
            return;
        }
        let pre_filter = self.framework.run_pre_filter(&mut state, &pod, snapshot);
        if !pre_filter.is_success() {
            let message = format!("0/{total} nodes are available: {}.", pre_filter.message());
            self.fail(pod, message, [pre_filter.plugin()].into(), now);
            return;
        }
        let nominated = self.cache.nominated();
        let on_nominated = pod.nominated_node().and_then(|name| {
            let index = snapshot.position(name)?;
            let node = &snapshot.nodes()[index];
            self.framework
                .run_filters_with_nominated(&state, &pod, node, nominated)
                .is_success()
                .then_some(index)
        });
        let feasible = match on_nominated {
            Some(index) => vec![index],
            None => {
                let want = num_feasible_nodes_to_find(
                    self.framework.percentage_of_nodes_to_score(),
                    total,
                );
                let found = self.framework.find_feasible(
                    &state,
                    &pod,
                    snapshot,
                    nominated,
                    self.next_start,
                    want,
                );
                let len = snapshot.nodes().len().max(1);
                self.next_start = (self.next_start + found.examined) % len;
                if found.nodes.is_empty() {
                    self.no_fit(pod, &state, total, found.statuses, now);
                    return;
                }
                found.nodes
            }
        };
        let chosen = if feasible.len() == 1 {
            feasible[0]
        } else {
            let scores = self.framework.score(&mut state, &pod, snapshot, &feasible);
            select_host(&feasible, &scores, &mut self.random)
        };
        let node = snapshot.nodes()[chosen].name.clone();
        self.cache.assume(pod.clone(), &node);
        let reserved = self.framework.run_reserve(&state, &pod, &node);
        let permitted = if reserved.is_success() {
            self.framework.run_permit(&state, &pod, &node)
        } else {
            reserved
        };
        if !permitted.is_success() {
            self.framework.run_unreserve(&state, &pod, &node);
            self.cache.forget(&pod.key);
            let message = format!("0/{total} nodes are available: {}.", permitted.message());
            self.fail(pod, message, [permitted.plugin()].into(), now);
            return;
        }
        self.queue.done(&pod.key);
        self.bind(pod, node, attempts);
    }

    fn bind(&self, pod: Arc<PodInfo>, node: String, attempts: u32) {
        let Some(binder) = self.framework.binder() else {
            tracing::error!("the profile has no Bind plugin");
            return;
        };
        let binding = binder.as_bind().map(|b| b.bind(&pod, &node));
        let reporter = self.reporter.clone();
        let inputs = self.inputs.clone();
        let in_flight = self.bindings_in_flight.clone();
        self.runtime.spawn(async move {
            // Never closed, so a permit always comes.
            let permit = in_flight.acquire_owned().await;
            let status = match binding {
                Some(binding) => binding.await,
                None => Status::error("no binder"),
            };
            drop(permit);
            if status.is_success() {
                reporter.scheduled(pod, node);
                return;
            }
            let message = status.message();
            // Gone, or bound by someone else: the watch will say so; retrying cannot help.
            let retry = !(message.contains("NotFound")
                || message.contains("already assigned")
                || message.contains("being deleted"));
            tracing::warn!(pod = pod.key, node, retry, "binding failed: {message}");
            let _ = inputs.send(Input::BindFailed { pod, attempts, retry });
        });
    }

    /// Nothing fits: try preemption, then record why (condition, event) and park the pod.
    fn no_fit(
        &mut self,
        pod: Arc<PodInfo>,
        state: &CycleState,
        total: usize,
        statuses: NodeStatuses,
        now: Instant,
    ) {
        let snapshot = self.cache.snapshot();
        let post = self.framework.run_post_filter(state, &pod, snapshot, &statuses);
        let mut message = fit_error(total, &statuses);
        if let Some(result) = &post
            && !result.status.is_success()
        {
            message.push(' ');
            message.push_str(&result.status.message());
        }
        let rejected_by = statuses.values().map(|s| s.plugin()).collect();
        if let Some(result) = post
            && let Some(node) = result.nominated_node
        {
            tracing::info!(pod = pod.key, node, victims = result.victims.len(), "preempting");
            for victim in &result.victims {
                // Their room counts as free for the preemptor from now on.
                self.cache.remove_pod(&victim.key);
            }
            self.cache.nominate(pod.clone(), &node);
            self.reporter.preempted(pod.clone(), node, result.victims);
        }
        self.fail(pod, message, rejected_by, now);
    }

    fn fail(
        &mut self,
        pod: Arc<PodInfo>,
        message: String,
        rejected_by: HashSet<&'static str>,
        now: Instant,
    ) {
        tracing::debug!(pod = pod.key, "unschedulable: {message}");
        self.queue.unschedulable(&pod.key, rejected_by, now);
        self.reporter.failed(pod, message);
    }
}

/// The best-scored node; ties are broken at random so equal nodes share the load.
fn select_host(feasible: &[usize], scores: &[i64], random: &mut u64) -> usize {
    let mut best = feasible[0];
    let mut best_score = i64::MIN;
    let mut ties = 0u64;
    for (index, score) in feasible.iter().zip(scores) {
        if *score > best_score {
            best = *index;
            best_score = *score;
            ties = 1;
        } else if *score == best_score {
            ties += 1;
            // xorshift64: cheap and good enough for tie-breaking.
            *random ^= *random << 13;
            *random ^= *random >> 7;
            *random ^= *random << 17;
            if (*random).is_multiple_of(ties) {
                best = *index;
            }
        }
    }
    best
}

/// Upstream's FitError message: `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had
/// untolerated taint {k: v}.` (reasons counted over nodes, sorted).
pub fn fit_error(total: usize, statuses: &NodeStatuses) -> String {
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for status in statuses.values() {
        for reason in status.reasons() {
            *histogram.entry(reason.as_str()).or_default() += 1;
        }
    }
    let mut reasons: Vec<String> =
        histogram.iter().map(|(reason, count)| format!("{count} {reason}")).collect();
    reasons.sort();
    format!("0/{total} nodes are available: {}.", reasons.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;

    #[test]
    fn fit_errors_read_like_upstreams() {
        let statuses: NodeStatuses = [
            ("a".to_owned(), Status::unschedulable("Insufficient cpu")),
            (
                "b".to_owned(),
                Status::unresolvable("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "c".to_owned(),
                Status::unresolvable("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                "d".to_owned(),
                Status::with_reasons(
                    Code::Unschedulable,
                    vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                ),
            ),
        ]
        .into();
        assert_eq!(
            fit_error(4, &statuses),
            "0/4 nodes are available: 1 Insufficient memory, 2 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}."
        );
    }
}
