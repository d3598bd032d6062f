//! InterPodAffinity: required pod affinity and anti-affinity by topology domain (the incoming
//! pod's terms, and existing pods' anti-affinity against it); preferred terms score domains.

use crate::framework::types::AffinityTerm;
use crate::framework::{
    CycleState, FastMap, Filter, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreFilter, PreScore,
    Score, Snapshot, Status,
};

pub const AFFINITY_REASON: &str = "node(s) didn't match pod affinity rules";
pub const ANTI_AFFINITY_REASON: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING_ANTI_AFFINITY_REASON: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
const FILTER_KEY: &str = "PreFilterInterPodAffinity";
const SCORE_KEY: &str = "PreScoreInterPodAffinity";
/// The weight of existing pods' required affinity terms when scoring (upstream's default).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

pub struct InterPodAffinity;

/// Counts per topology key, then per value of that key.
#[derive(Default, Debug)]
struct TopologyCounts(FastMap<String, FastMap<String, i64>>);

impl TopologyCounts {
    fn add(&mut self, key: &str, value: &str, by: i64) {
        // Looked up before inserting: the same few domains are added to again and again.
        let values = match self.0.get_mut(key) {
            Some(values) => values,
            None => self.0.entry(key.to_owned()).or_default(),
        };
        match values.get_mut(value) {
            Some(count) => *count += by,
            None => {
                values.insert(value.to_owned(), by);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0.get(key).and_then(|v| v.get(value)).copied().unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(|v| v.values().all(|c| *c == 0))
    }

    /// Adds `by` for the node's domain of `term`, if the node has the topology label.
    fn add_for(&mut self, term: &AffinityTerm, node: &NodeInfo, by: i64) {
        if let Some(value) = node.labels.get(&term.topology_key) {
            self.add(&term.topology_key, value, by);
        }
    }
}

#[derive(Default)]
struct FilterState {
    /// Domains holding an existing pod whose required anti-affinity selects the incoming pod.
    existing_anti_affinity: TopologyCounts,
    /// Domains holding pods that match all of the incoming pod's required affinity terms.
    affinity: TopologyCounts,
    /// Domains holding pods that one of the incoming pod's anti-affinity terms selects.
    anti_affinity: TopologyCounts,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
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

impl PreFilter for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        if let Some(error) = &pod.parse_error {
            return Status::unresolvable(format!("invalid pod affinity: {error}"));
        }
        let mut counts = FilterState::default();
        let incoming = !pod.terms().required_affinity.is_empty()
            || !pod.terms().required_anti_affinity.is_empty();
        for (term, nodes) in snapshot.anti_affinity_terms() {
            if !term.matches(pod) {
                continue;
            }
            for (name, pods) in nodes {
                if let Some(node) = snapshot.get(name).filter(|n| n.exists) {
                    counts.existing_anti_affinity.add_for(term, node, *pods as i64);
                }
            }
        }
        // Pods matching every required affinity term are among those the first one selects.
        if let Some(first) = pod.terms().required_affinity.first() {
            snapshot.for_each_candidate(&first.selector, |existing, _, node| {
                if pod.terms().required_affinity.iter().all(|t| t.matches(existing)) {
                    for term in &pod.terms().required_affinity {
                        counts.affinity.add_for(term, node, 1);
                    }
                }
            });
        }
        for term in &pod.terms().required_anti_affinity {
            snapshot.for_each_candidate(&term.selector, |existing, _, node| {
                if term.matches(existing) {
                    counts.anti_affinity.add_for(term, node, 1);
                }
            });
        }
        if !incoming && counts.existing_anti_affinity.is_empty() {
            return Status::skip();
        }
        state.write(FILTER_KEY, counts);
        Status::success()
    }
}

impl Filter for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(counts) = state.read::<FilterState>(FILTER_KEY) else {
            return Status::success();
        };
        let in_domain = |counts: &TopologyCounts, term: &AffinityTerm| {
            node.labels
                .get(&term.topology_key)
                .is_some_and(|v| counts.get(&term.topology_key, v) > 0)
        };
        if !pod.terms().required_affinity.is_empty() {
            let all = pod.terms().required_affinity.iter().all(|t| in_domain(&counts.affinity, t));
            // The first pod of a group that selects itself may go anywhere its terms allow.
            let first_of_group = counts.affinity.is_empty()
                && pod.terms().required_affinity.iter().all(|t| t.matches(pod))
                && pod
                    .terms()
                    .required_affinity
                    .iter()
                    .all(|t| node.labels.contains_key(&t.topology_key));
            if !all && !first_of_group {
                return Status::unresolvable(AFFINITY_REASON);
            }
        }
        if pod.terms().required_anti_affinity.iter().any(|t| in_domain(&counts.anti_affinity, t)) {
            return Status::unschedulable(ANTI_AFFINITY_REASON);
        }
        let existing = counts.existing_anti_affinity.0.iter().any(|(key, values)| {
            node.labels.get(key).is_some_and(|v| values.get(v).is_some_and(|c| *c > 0))
        });
        if existing {
            return Status::unschedulable(EXISTING_ANTI_AFFINITY_REASON);
        }
        Status::success()
    }
}

impl PreScore for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        _feasible: &[usize],
    ) -> Status {
        let incoming = !pod.terms().preferred_affinity.is_empty()
            || !pod.terms().preferred_anti_affinity.is_empty();
        let mut scores = TopologyCounts::default();
        for node in snapshot.nodes().iter().filter(|n| n.exists) {
            if !incoming && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                for term in pod.terms().preferred_affinity.iter().filter(|t| t.matches(existing)) {
                    scores.add_for(term, node, i64::from(term.weight));
                }
                for term in
                    pod.terms().preferred_anti_affinity.iter().filter(|t| t.matches(existing))
                {
                    scores.add_for(term, node, -i64::from(term.weight));
                }
                for term in existing.terms().required_affinity.iter().filter(|t| t.matches(pod)) {
                    scores.add_for(term, node, HARD_POD_AFFINITY_WEIGHT);
                }
                for term in existing.terms().preferred_affinity.iter().filter(|t| t.matches(pod)) {
                    scores.add_for(term, node, i64::from(term.weight));
                }
                for term in
                    existing.terms().preferred_anti_affinity.iter().filter(|t| t.matches(pod))
                {
                    scores.add_for(term, node, -i64::from(term.weight));
                }
            }
        }
        if scores.0.is_empty() {
            return Status::skip();
        }
        state.write(SCORE_KEY, scores);
        Status::success()
    }
}

impl Score for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(scores) = state.read::<TopologyCounts>(SCORE_KEY) else { return 0 };
        scores.0.iter().filter_map(|(key, values)| values.get(node.labels.get(key)?)).sum()
    }

    /// Min-max to 0..=100 (scores can be negative).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        for score in scores.iter_mut() {
            *score = if max > min { (*score - min) * MAX_NODE_SCORE / (max - min) } else { 0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod_with, with_pods};
    use serde_json::{Value, json};

    fn term(kind: &str, app: &str, key: &str) -> Value {
        json!({"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}})
    }

    fn app(name: &str, app: &str, spec: Value) -> PodInfo {
        pod_with(name, json!({"labels": {"app": app}}), spec)
    }

    fn zone(name: &str, zone: &str, pods: Vec<PodInfo>) -> NodeInfo {
        with_pods(node(name, json!({"metadata": {"labels": {"zone": zone}}})), pods)
    }

    /// Runs PreFilter and Filter of `incoming` on each node; the reasons, or "" for a fit.
    fn run(incoming: PodInfo, nodes: Vec<NodeInfo>) -> Vec<String> {
        let snapshot = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        let pre = InterPodAffinity.pre_filter(&mut state, &incoming, &snapshot);
        if pre.is_rejected() {
            return vec![pre.message()];
        }
        snapshot
            .nodes()
            .iter()
            .map(|n| InterPodAffinity.filter(&state, &incoming, n).message())
            .collect()
    }

    #[test]
    fn required_terms_by_topology_domain() {
        let cases: Vec<(&str, PodInfo, Vec<NodeInfo>, Vec<&str>)> = vec![
            (
                "affinity to a zone with a match",
                app("p", "web", term("podAffinity", "db", "zone")),
                vec![
                    zone("a", "z1", vec![app("db", "db", json!({}))]),
                    zone("b", "z1", vec![]),
                    zone("c", "z2", vec![]),
                ],
                vec!["", "", AFFINITY_REASON],
            ),
            (
                "first pod of a self-selecting group goes anywhere",
                app("p", "web", term("podAffinity", "web", "zone")),
                vec![zone("a", "z1", vec![]), zone("b", "z2", vec![])],
                vec!["", ""],
            ),
            (
                "affinity to nothing that exists",
                app("p", "web", term("podAffinity", "db", "zone")),
                vec![zone("a", "z1", vec![])],
                vec![AFFINITY_REASON],
            ),
            (
                "anti-affinity by hostname",
                app("p", "web", term("podAntiAffinity", "web", "kubernetes.io/hostname")),
                vec![zone("a", "z1", vec![app("w", "web", json!({}))]), zone("b", "z1", vec![])],
                vec![ANTI_AFFINITY_REASON, ""],
            ),
            (
                "anti-affinity by zone",
                app("p", "web", term("podAntiAffinity", "web", "zone")),
                vec![
                    zone("a", "z1", vec![app("w", "web", json!({}))]),
                    zone("b", "z1", vec![]),
                    zone("c", "z2", vec![]),
                ],
                vec![ANTI_AFFINITY_REASON, ANTI_AFFINITY_REASON, ""],
            ),
            (
                "an existing pod's anti-affinity keeps the pod out",
                app("p", "web", json!({})),
                vec![
                    zone("a", "z1", vec![app("x", "x", term("podAntiAffinity", "web", "zone"))]),
                    zone("b", "z2", vec![]),
                ],
                vec![EXISTING_ANTI_AFFINITY_REASON, ""],
            ),
            (
                "unknown topology key matches no domain",
                app("p", "web", term("podAntiAffinity", "web", "no-such-key")),
                vec![zone("a", "z1", vec![app("w", "web", json!({}))])],
                vec![""],
            ),
        ];
        for (what, incoming, nodes, expected) in cases {
            assert_eq!(run(incoming, nodes), expected, "{what}");
        }
    }

    #[test]
    fn malformed_terms_are_unresolvable() {
        let bad = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}, "topologyKey": "zone"}]}}});
        let reasons = run(app("p", "web", bad), vec![zone("a", "z1", vec![])]);
        assert!(reasons[0].starts_with("invalid pod affinity"), "{reasons:?}");
    }

    #[test]
    fn preferred_terms_score_domains() {
        let prefer = json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}}});
        let incoming = app("p", "web", prefer);
        let snapshot = Snapshot::from_nodes(vec![
            zone("a", "z1", vec![app("db", "db", json!({}))]),
            zone("b", "z1", vec![]),
            zone("c", "z2", vec![]),
        ]);
        let mut state = CycleState::default();
        assert!(
            InterPodAffinity.pre_score(&mut state, &incoming, &snapshot, &[0, 1, 2]).is_success()
        );
        let mut scores: Vec<i64> =
            snapshot.nodes().iter().map(|n| InterPodAffinity.score(&state, &incoming, n)).collect();
        InterPodAffinity.normalize(&state, &incoming, &mut scores);
        assert_eq!(scores, vec![100, 100, 0]);
    }
}
