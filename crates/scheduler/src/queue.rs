//! The scheduling queue: an active queue ordered by priority then arrival, a backoff queue
//! (1 s doubling to 10 s per failed attempt), and an unschedulable set retried when a cluster
//! event could make the pod fit, and at least every 5 minutes. Gated pods wait aside.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::framework::PodInfo;
use crate::framework::types::PodKey;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often even without a relevant event.
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

/// What happened in the cluster, for deciding which unschedulable pods to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdded,
    NodeChanged,
    /// A bound pod went away: its resources, ports and (anti-)affinity terms are free.
    AssignedPodDeleted,
    /// A bound pod appeared or changed: affinity and spread counts moved.
    AssignedPodAdded,
}

impl ClusterEvent {
    /// Whether a pod rejected by `plugin` could fit after this event.
    fn may_help(self, plugin: &str) -> bool {
        match self {
            ClusterEvent::NodeAdded | ClusterEvent::NodeChanged => true,
            ClusterEvent::AssignedPodDeleted => matches!(
                plugin,
                "NodeResourcesFit" | "NodePorts" | "InterPodAffinity" | "PodTopologySpread" | ""
            ),
            ClusterEvent::AssignedPodAdded => {
                matches!(plugin, "InterPodAffinity" | "PodTopologySpread" | "")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    Gated,
    /// Popped: being scheduled or bound.
    InFlight,
}

struct Entry {
    pod: Arc<PodInfo>,
    place: Where,
    attempts: u32,
    /// Order of arrival; breaks priority ties (earlier first).
    arrival: u64,
    /// Bumped on every move, so stale heap entries are recognised and skipped.
    generation: u64,
    /// Plugins that rejected the pod in its last attempt.
    rejected_by: HashSet<&'static str>,
    /// A relevant event happened while the pod was in flight: a failure goes to backoff.
    moved_while_in_flight: bool,
}

#[derive(PartialEq, Eq)]
struct Ranked {
    priority: i32,
    arrival: u64,
    generation: u64,
    key: PodKey,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority.cmp(&other.priority).then(other.arrival.cmp(&self.arrival))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub struct SchedulingQueue {
    entries: HashMap<PodKey, Entry>,
    active: BinaryHeap<Ranked>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    /// Keys of unschedulable and in-flight pods, so events need not walk the whole queue.
    parked: HashSet<PodKey>,
    next_arrival: u64,
    last_sweep: Option<Instant>,
}

/// How often unschedulable pods are checked against the 5-minute limit (upstream: 30 s).
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

fn gated(pod: &PodInfo) -> bool {
    pod.spec().scheduling_gates.as_ref().is_some_and(|g| !g.is_empty())
}

/// 1 s after the first failure, doubling, at most 10 s.
pub fn backoff_duration(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(10);
    (INITIAL_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

impl SchedulingQueue {
    /// Adds a pending pod or refreshes a queued one. An updated unschedulable pod is retried
    /// (its spec may now fit); a pod whose gates are lifted becomes active.
    pub fn add_or_update(&mut self, pod: Arc<PodInfo>, now: Instant) {
        let is_gated = gated(&pod);
        match self.entries.get_mut(&pod.key) {
            Some(entry) => {
                let changed = entry.pod.spec != pod.spec || entry.pod.labels != pod.labels;
                let key = pod.key.clone();
                entry.pod = pod;
                let retry = match entry.place {
                    Where::Gated => !is_gated,
                    Where::Unschedulable(_) => changed,
                    _ => false,
                };
                if retry {
                    self.move_to(&key, Where::Active, now);
                }
            }
            None => {
                let key = pod.key.clone();
                self.next_arrival += 1;
                let entry = Entry {
                    pod,
                    place: Where::Gated,
                    attempts: 0,
                    arrival: self.next_arrival,
                    generation: 0,
                    rejected_by: HashSet::new(),
                    moved_while_in_flight: false,
                };
                self.entries.insert(key.clone(), entry);
                if !is_gated {
                    self.move_to(&key, Where::Active, now);
                }
            }
        }
    }

    pub fn delete(&mut self, key: &str) {
        self.entries.remove(key);
        self.parked.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn is_in_flight(&self, key: &str) -> bool {
        self.entries.get(key).is_some_and(|e| e.place == Where::InFlight)
    }

    /// Moves a pod to active, or to backoff first if it failed recently.
    fn move_to(&mut self, key: &str, place: Where, now: Instant) {
        let Some(entry) = self.entries.get(key) else { return };
        let place = match (place, entry.place) {
            (Where::Active, _) if entry.attempts == 0 => Where::Active,
            (Where::Active, Where::Unschedulable(since)) => {
                let until = since + backoff_duration(entry.attempts);
                if until <= now { Where::Active } else { Where::Backoff(until) }
            }
            (Where::Active, _) => Where::Backoff(now + backoff_duration(entry.attempts)),
            (other, _) => other,
        };
        self.place(key, place);
    }

    fn place(&mut self, key: &str, place: Where) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        entry.place = place;
        entry.generation += 1;
        if matches!(place, Where::Unschedulable(_) | Where::InFlight) {
            self.parked.insert(key.to_owned());
        } else {
            self.parked.remove(key);
        }
        match place {
            Where::Active => self.active.push(Ranked {
                priority: entry.pod.priority,
                arrival: entry.arrival,
                generation: entry.generation,
                key: key.to_owned(),
            }),
            Where::Backoff(until) => {
                self.backoff.push(Reverse((until, entry.generation, key.to_owned())))
            }
            _ => {}
        }
    }

    /// Moves expired backoffs to active and long-unschedulable pods back into play; returns
    /// when the next backoff expires.
    pub fn flush(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((until, generation, key))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            let current = self.entries.get(&key).is_some_and(|e| e.generation == generation);
            if current {
                self.place(&key, Where::Active);
            }
        }
        if self.last_sweep.is_none_or(|last| now.duration_since(last) >= SWEEP_INTERVAL) {
            self.last_sweep = Some(now);
            let stale: Vec<PodKey> = self
                .parked
                .iter()
                .filter(|k| {
                    self.entries.get(*k).is_some_and(|e| {
                        matches!(e.place, Where::Unschedulable(since) if now.duration_since(since) >= MAX_UNSCHEDULABLE_DURATION)
                    })
                })
                .cloned()
                .collect();
            for key in stale {
                if let Some(entry) = self.entries.get_mut(&key) {
                    // Long enough: no backoff left to wait out.
                    entry.attempts = 0;
                }
                self.move_to(&key, Where::Active, now);
            }
        }
        self.backoff.peek().map(|Reverse((until, _, _))| *until)
    }

    /// The most important active pod, now in flight.
    pub fn pop(&mut self) -> Option<(Arc<PodInfo>, u32)> {
        while let Some(ranked) = self.active.pop() {
            let Some(entry) = self.entries.get_mut(&ranked.key) else { continue };
            if entry.generation != ranked.generation || entry.place != Where::Active {
                continue;
            }
            entry.place = Where::InFlight;
            entry.attempts += 1;
            entry.moved_while_in_flight = false;
            self.parked.insert(ranked.key);
            return Some((entry.pod.clone(), entry.attempts));
        }
        None
    }

    /// The pod could not be placed: unschedulable until a relevant event (or backoff if one
    /// already happened while it was being scheduled).
    pub fn unschedulable(&mut self, key: &str, rejected_by: HashSet<&'static str>, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        entry.rejected_by = rejected_by;
        let moved = entry.moved_while_in_flight;
        entry.place = Where::Unschedulable(now);
        entry.generation += 1;
        self.parked.insert(key.to_owned());
        if moved {
            self.move_to(key, Where::Active, now);
        }
    }

    /// An error (e.g. a failed binding): retry after backoff.
    pub fn backoff(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else { return };
        let until = now + backoff_duration(entry.attempts.max(1));
        entry.place = Where::Backoff(until);
        entry.generation += 1;
        self.parked.remove(key);
        self.backoff.push(Reverse((until, entry.generation, key.to_owned())));
    }

    /// The pod was bound; it leaves the queue.
    pub fn done(&mut self, key: &str) {
        self.delete(key);
    }

    /// Retries the unschedulable pods this event may help.
    pub fn on_event(&mut self, event: ClusterEvent, now: Instant) {
        let mut helped = Vec::new();
        for key in &self.parked {
            let Some(entry) = self.entries.get_mut(key) else { continue };
            match entry.place {
                Where::Unschedulable(_)
                    if entry.rejected_by.is_empty()
                        || entry.rejected_by.iter().any(|p| event.may_help(p)) =>
                {
                    helped.push(key.clone())
                }
                Where::InFlight => entry.moved_while_in_flight = true,
                _ => {}
            }
        }
        for key in helped {
            self.move_to(&key, Where::Active, now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Re-adds a pod whose binding failed, to be retried after backoff.
    pub fn requeue_after_error(&mut self, pod: Arc<PodInfo>, attempts: u32, now: Instant) {
        let key = pod.key.clone();
        self.add_or_update(pod, now);
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.attempts = attempts;
        }
        self.backoff(&key, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::pod;
    use serde_json::json;

    fn prioritized(name: &str, priority: i32) -> Arc<PodInfo> {
        Arc::new(pod(name, json!({"priority": priority})))
    }

    fn popped(queue: &mut SchedulingQueue) -> Vec<String> {
        std::iter::from_fn(|| queue.pop().map(|(p, _)| p.name().to_owned())).collect()
    }

    #[test]
    fn active_pods_come_out_by_priority_then_arrival() {
        let mut queue = SchedulingQueue::default();
        let now = Instant::now();
        for (name, priority) in [("low-1", 0), ("high", 100), ("low-2", 0), ("mid", 50)] {
            queue.add_or_update(prioritized(name, priority), now);
        }
        assert_eq!(popped(&mut queue), ["high", "mid", "low-1", "low-2"]);
    }

    #[test]
    fn backoff_doubles_from_one_to_ten_seconds() {
        let cases = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10)];
        for (attempts, seconds) in cases {
            assert_eq!(
                backoff_duration(attempts),
                Duration::from_secs(seconds),
                "attempt {attempts}"
            );
        }
        let mut queue = SchedulingQueue::default();
        let now = Instant::now();
        queue.add_or_update(prioritized("p", 0), now);
        queue.pop().unwrap();
        queue.backoff("default/p", now);
        queue.flush(now + Duration::from_millis(900));
        assert!(queue.pop().is_none(), "still backing off");
        queue.flush(now + Duration::from_secs(1));
        assert_eq!(
            queue.pop().map(|(p, attempts)| (p.name().to_owned(), attempts)),
            Some(("p".into(), 2))
        );
    }

    #[test]
    fn unschedulable_pods_wait_for_a_relevant_event_or_five_minutes() {
        let mut queue = SchedulingQueue::default();
        let now = Instant::now();
        queue.add_or_update(prioritized("p", 0), now);
        queue.pop().unwrap();
        queue.unschedulable("default/p", ["TaintToleration"].into(), now);
        let later = now + Duration::from_secs(2);
        queue.on_event(ClusterEvent::AssignedPodDeleted, later);
        queue.flush(later);
        assert!(queue.pop().is_none(), "a pod deletion cannot remove a taint");
        queue.on_event(ClusterEvent::NodeChanged, later);
        queue.flush(later);
        assert!(queue.pop().is_some(), "a node change can");

        queue.unschedulable("default/p", ["TaintToleration"].into(), later);
        queue.flush(later + Duration::from_secs(299));
        assert!(queue.pop().is_none());
        queue.flush(later + MAX_UNSCHEDULABLE_DURATION + SWEEP_INTERVAL);
        assert!(queue.pop().is_some(), "retried after five minutes");
    }

    #[test]
    fn gated_pods_wait_until_their_gates_are_removed() {
        let mut queue = SchedulingQueue::default();
        let now = Instant::now();
        let gated = Arc::new(pod("p", json!({"schedulingGates": [{"name": "example.com/wait"}]})));
        queue.add_or_update(gated, now);
        assert!(queue.pop().is_none());
        queue.add_or_update(prioritized("p", 0), now);
        assert_eq!(popped(&mut queue), ["p"]);
    }

    #[test]
    fn an_event_during_the_attempt_sends_a_failure_to_backoff() {
        let mut queue = SchedulingQueue::default();
        let now = Instant::now();
        queue.add_or_update(prioritized("p", 0), now);
        queue.pop().unwrap();
        queue.on_event(ClusterEvent::NodeAdded, now);
        queue.unschedulable("default/p", ["NodeResourcesFit"].into(), now);
        queue.flush(now + Duration::from_secs(1));
        assert!(queue.pop().is_some());
    }
}
