//! PodTopologySpread: keeps matching pods spread over topology domains. DoNotSchedule
//! constraints filter (skew = pods in the node's domain + 1 − pods in the emptiest domain must
//! not exceed maxSkew); ScheduleAnyway constraints prefer nodes in emptier domains.

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use crate::framework::selectors::{NodeTerm, Selector};
use crate::framework::{
    CycleState, FastMap, Filter, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilter, PreScore,
    Score, Snapshot, Status,
};

pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
pub const MISSING_LABEL_REASON: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const FILTER_KEY: &str = "PreFilterPodTopologySpread";
const SCORE_KEY: &str = "PreScorePodTopologySpread";

pub struct PodTopologySpread;

struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    /// Whether the incoming pod itself matches the selector (it adds one to its domain).
    self_match: i64,
}

/// Matching pods per domain value, for each constraint (same order).
struct Counts {
    constraints: Vec<Constraint>,
    per_domain: Vec<FastMap<String, i64>>,
}

impl Counts {
    /// The fewest matching pods in any domain of constraint `i` (0 below minDomains).
    fn min(&self, i: usize) -> i64 {
        let domains = &self.per_domain[i];
        if (domains.len() as i64) < self.constraints[i].min_domains {
            return 0;
        }
        domains.values().copied().min().unwrap_or(0)
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilter> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

fn constraints(pod: &PodInfo, when: &str) -> Result<Vec<Constraint>, String> {
    let list: Vec<&TopologySpreadConstraint> = pod
        .spec()
        .topology_spread_constraints
        .iter()
        .flat_map(|c| c.iter())
        .filter(|c| c.when_unsatisfiable == when)
        .collect();
    list.into_iter()
        .map(|c| {
            if c.max_skew < 1 {
                return Err(format!("maxSkew {} must be at least 1", c.max_skew));
            }
            if c.topology_key.is_empty() {
                return Err("topologyKey must not be empty".to_owned());
            }
            let mut selector = match &c.label_selector {
                Some(s) => Selector::parse(s)?,
                None => Selector::nothing(),
            };
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = pod.labels.get(key) {
                    selector = selector.with_label(key, value);
                }
            }
            let self_match = i64::from(selector.matches(&pod.labels));
            Ok(Constraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                self_match,
            })
        })
        .collect()
}

/// Whether the node counts as a domain for the pod (nodeAffinityPolicy Honor: the pod's node
/// selector and required node affinity must match it).
fn honours_node_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let spec = pod.spec();
    let selector = spec.node_selector.iter().flatten().all(|(k, v)| node.labels.get(k) == Some(v));
    let affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
        .is_none_or(|required| {
            required
                .node_selector_terms
                .iter()
                .any(|t| NodeTerm::parse(t).is_ok_and(|t| t.matches(&node.name, &node.labels)))
        });
    selector && affinity
}

/// Matching pods per domain over the eligible nodes among `nodes` (snapshot positions); the
/// pods are found through the snapshot's label index rather than by walking every node.
fn count(
    pod: &PodInfo,
    constraints: Vec<Constraint>,
    snapshot: &Snapshot,
    nodes: impl Iterator<Item = usize>,
) -> Counts {
    let all = snapshot.nodes();
    let mut per_domain: Vec<FastMap<String, i64>> = vec![FastMap::default(); constraints.len()];
    let mut eligible = vec![false; all.len()];
    for index in nodes {
        let node = &all[index];
        let has_all = constraints.iter().all(|c| node.labels.contains_key(&c.topology_key));
        if !node.exists || !has_all || !honours_node_affinity(pod, node) {
            continue;
        }
        eligible[index] = true;
        for (c, domains) in constraints.iter().zip(per_domain.iter_mut()) {
            let value = &node.labels[&c.topology_key];
            if !domains.contains_key(value) {
                domains.insert(value.clone(), 0);
            }
        }
    }
    for (c, domains) in constraints.iter().zip(per_domain.iter_mut()) {
        snapshot.for_each_candidate(&c.selector, |p, index, node| {
            let counted = eligible[index]
                && p.namespace() == pod.namespace()
                && !p.deleting
                && c.selector.matches(&p.labels);
            if counted && let Some(count) = domains.get_mut(&node.labels[&c.topology_key]) {
                *count += 1;
            }
        });
    }
    Counts { constraints, per_domain }
}

impl PreFilter for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let constraints = match constraints(pod, "DoNotSchedule") {
            Ok(c) if c.is_empty() => return Status::skip(),
            Ok(c) => c,
            Err(error) => {
                return Status::unresolvable(format!(
                    "invalid topology spread constraint: {error}"
                ));
            }
        };
        state.write(FILTER_KEY, count(pod, constraints, snapshot, 0..snapshot.nodes().len()));
        Status::success()
    }
}

impl Filter for PodTopologySpread {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(counts) = state.read::<Counts>(FILTER_KEY) else { return Status::success() };
        for (i, c) in counts.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Status::unresolvable(MISSING_LABEL_REASON);
            };
            let here = counts.per_domain[i].get(value).copied().unwrap_or(0);
            if here + c.self_match - counts.min(i) > c.max_skew {
                return Status::unschedulable(REASON);
            }
        }
        Status::success()
    }
}

impl PreScore for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        feasible: &[usize],
    ) -> Status {
        let constraints = match constraints(pod, "ScheduleAnyway") {
            Ok(c) if !c.is_empty() => c,
            _ => return Status::skip(),
        };
        state.write(SCORE_KEY, count(pod, constraints, snapshot, feasible.iter().copied()));
        Status::success()
    }
}

impl Score for PodTopologySpread {
    /// Matching pods in the node's domains, each constraint weighted by log(domains + 2);
    /// fewer is better. Nodes missing a topology label score the worst.
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(counts) = state.read::<Counts>(SCORE_KEY) else { return 0 };
        let mut score = 0.0;
        for (i, c) in counts.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(&c.topology_key) else { return i64::MAX };
            let weight = ((counts.per_domain[i].len() + 2) as f64).ln();
            let here = counts.per_domain[i].get(value).copied().unwrap_or(0);
            score += (here + c.max_skew - 1) as f64 * weight;
        }
        score.round() as i64
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        let valid = scores.iter().copied().filter(|s| *s != i64::MAX);
        let min = valid.clone().min().unwrap_or(0);
        let max = valid.max().unwrap_or(0);
        for score in scores.iter_mut() {
            *score = if *score == i64::MAX {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *score) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod_with, with_pods};
    use serde_json::json;

    fn spread(key: &str, max_skew: i32, when: &str) -> serde_json::Value {
        json!({"topologySpreadConstraints": [{"maxSkew": max_skew, "topologyKey": key,
            "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]})
    }

    fn web(name: &str) -> PodInfo {
        pod_with(name, json!({"labels": {"app": "web"}}), json!({}))
    }

    fn zone(name: &str, zone: Option<&str>, pods: usize) -> NodeInfo {
        let labels = match zone {
            Some(z) => json!({"metadata": {"labels": {"zone": z}}}),
            None => json!({}),
        };
        with_pods(node(name, labels), (0..pods).map(|i| web(&format!("{name}-{i}"))).collect())
    }

    #[test]
    fn do_not_schedule_keeps_skew_within_max() {
        let cases: Vec<(&str, i32, Vec<NodeInfo>, Vec<&str>)> = vec![
            (
                "balanced zones take one more",
                1,
                vec![zone("a", Some("z1"), 1), zone("b", Some("z2"), 1)],
                vec!["", ""],
            ),
            (
                "the fuller zone is refused",
                1,
                vec![zone("a", Some("z1"), 2), zone("b", Some("z2"), 1)],
                vec![REASON, ""],
            ),
            (
                "a larger maxSkew allows it",
                2,
                vec![zone("a", Some("z1"), 2), zone("b", Some("z2"), 1)],
                vec!["", ""],
            ),
            (
                "a node without the key",
                1,
                vec![zone("a", None, 0), zone("b", Some("z2"), 0)],
                vec![MISSING_LABEL_REASON, ""],
            ),
        ];
        for (what, max_skew, nodes, expected) in cases {
            let incoming = pod_with(
                "p",
                json!({"labels": {"app": "web"}}),
                spread("zone", max_skew, "DoNotSchedule"),
            );
            let snapshot = Snapshot::from_nodes(nodes);
            let mut state = CycleState::default();
            assert!(
                PodTopologySpread.pre_filter(&mut state, &incoming, &snapshot).is_success(),
                "{what}"
            );
            let reasons: Vec<String> = snapshot
                .nodes()
                .iter()
                .map(|n| PodTopologySpread.filter(&state, &incoming, n).message())
                .collect();
            assert_eq!(reasons, expected, "{what}");
        }
    }

    #[test]
    fn invalid_constraints_are_unresolvable() {
        let incoming = pod_with("p", json!({}), spread("zone", 0, "DoNotSchedule"));
        let status = PodTopologySpread.pre_filter(
            &mut CycleState::default(),
            &incoming,
            &Snapshot::default(),
        );
        assert_eq!(status.code(), crate::framework::Code::UnschedulableAndUnresolvable);
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let incoming =
            pod_with("p", json!({"labels": {"app": "web"}}), spread("zone", 1, "ScheduleAnyway"));
        let snapshot =
            Snapshot::from_nodes(vec![zone("a", Some("z1"), 3), zone("b", Some("z2"), 0)]);
        let mut state = CycleState::default();
        assert!(
            PodTopologySpread.pre_score(&mut state, &incoming, &snapshot, &[0, 1]).is_success()
        );
        let mut scores: Vec<i64> = snapshot
            .nodes()
            .iter()
            .map(|n| PodTopologySpread.score(&state, &incoming, n))
            .collect();
        PodTopologySpread.normalize(&state, &incoming, &mut scores);
        assert!(scores[1] > scores[0], "{scores:?}");
    }
}
