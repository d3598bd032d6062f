//! DefaultPreemption (PostFilter): when no node fits, find the node where evicting the fewest,
//! least important lower-priority pods makes the pod fit, and name those pods as victims.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::types::PdbInfo;
use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeStatuses, Plugin, PodInfo, PostFilter,
    PostFilterResult, Snapshot, Status,
};

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// Upstream stops looking after this share of nodes (or 100) yield candidates.
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        "DefaultPreemption"
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilter> {
        Some(self)
    }
}

/// A node where the pod fits once `victims` are gone.
struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    /// Victims whose eviction a PodDisruptionBudget does not allow.
    violations: usize,
}

impl Candidate {
    /// Upstream's order: fewest PodDisruptionBudget violations, then lowest highest-victim
    /// priority, then lowest priority sum, then fewest victims.
    fn rank(&self) -> (usize, i32, i64, usize) {
        let highest = self.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum = self.victims.iter().map(|v| i64::from(v.priority)).sum();
        (self.violations, highest, sum, self.victims.len())
    }
}

/// Splits `pods` (most important first) into those whose eviction some budget would not
/// allow and the others, spending each budget's allowed disruptions in that order.
fn split_by_budget(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[&PdbInfo],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut others) = (Vec::new(), Vec::new());
    for pod in pods {
        let mut violates = false;
        for (pdb, allowed) in pdbs.iter().zip(allowed.iter_mut()) {
            if !pdb.guards(&pod) || pdb.disrupted_pods.iter().any(|n| n == pod.name()) {
                continue;
            }
            *allowed -= 1;
            violates |= *allowed < 0;
        }
        if violates { violating.push(pod) } else { others.push(pod) }
    }
    (violating, others)
}

/// The fewest lower-priority pods to remove from `node` for `pod` to pass every filter, and
/// how many of them a PodDisruptionBudget protects: remove them all, then give back the most
/// important ones that still leave room, budget-protected ones first.
fn select_victims(
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    framework: &Framework,
    pdbs: &[&PdbInfo],
) -> Option<(Vec<Arc<PodInfo>>, usize)> {
    let mut trial = node.clone();
    let mut lower: Vec<Arc<PodInfo>> =
        node.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if lower.is_empty() {
        return None;
    }
    for victim in &lower {
        trial.remove_pod(&victim.key);
    }
    if !framework.run_filters(state, pod, &trial).is_success() {
        return None;
    }
    lower.sort_by_key(|p| std::cmp::Reverse(p.priority));
    let (violating, others) = split_by_budget(lower, pdbs);
    let mut victims = Vec::new();
    let mut violations = 0;
    for (candidate, protected) in
        violating.into_iter().map(|p| (p, true)).chain(others.into_iter().map(|p| (p, false)))
    {
        trial.add_pod(candidate.clone());
        if !framework.run_filters(state, pod, &trial).is_success() {
            trial.remove_pod(&candidate.key);
            victims.push(candidate);
            violations += usize::from(protected);
        }
    }
    Some((victims, violations))
}

/// `0/3 nodes are available: 1 No preemption victims found…, 2 Preemption is not helpful….`
fn message(total: usize, histogram: &BTreeMap<&str, usize>) -> String {
    let mut reasons: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
    reasons.sort();
    format!("preemption: 0/{total} nodes are available: {}.", reasons.join(", "))
}

impl PostFilter for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeStatuses,
        framework: &Framework,
    ) -> PostFilterResult {
        let refuse = |message: String| PostFilterResult {
            status: Status::unschedulable(message),
            nominated_node: None,
            victims: Vec::new(),
        };
        if pod.spec().preemption_policy.as_deref() == Some("Never") {
            return refuse("preemption: not eligible due to preemptionPolicy=Never.".to_owned());
        }
        // Victims already terminating on the nominated node: wait for them instead.
        if let Some(nominated) = pod.nominated_node().and_then(|n| snapshot.get(n)) {
            let terminating =
                nominated.pods.iter().any(|p| p.priority < pod.priority && p.deleting);
            if terminating {
                return refuse(
                    "preemption: victims on the nominated node are terminating.".to_owned(),
                );
            }
        }
        let total = snapshot.node_count();
        let enough =
            (total * MIN_CANDIDATE_NODES_PERCENTAGE / 100).max(MIN_CANDIDATE_NODES_ABSOLUTE);
        let pdbs: Vec<&PdbInfo> = snapshot.pdbs().collect();
        let mut histogram = BTreeMap::new();
        let mut candidates = Vec::new();
        for node in snapshot.nodes().iter().filter(|n| n.exists) {
            let resolvable =
                statuses.get(&node.name).is_none_or(|s| s.code() == Code::Unschedulable);
            if !resolvable {
                *histogram.entry(NOT_HELPFUL).or_insert(0) += 1;
                continue;
            }
            match select_victims(state, pod, node, framework, &pdbs) {
                Some((victims, violations)) => {
                    candidates.push(Candidate { node: node.name.clone(), victims, violations });
                    if candidates.len() >= enough {
                        break;
                    }
                }
                None => *histogram.entry(NO_VICTIMS).or_insert(0) += 1,
            }
        }
        let Some(best) = candidates.into_iter().min_by_key(Candidate::rank) else {
            return refuse(message(total, &histogram));
        };
        PostFilterResult {
            status: Status::success(),
            nominated_node: Some(best.node),
            victims: best.victims,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Plugin;
    use crate::plugins::node_resources_fit::NodeResourcesFit;
    use crate::plugins::testing::{node, pod, requests, with_pods};
    use serde_json::json;

    fn prioritized(name: &str, priority: i32, cpu: &str) -> PodInfo {
        let mut spec = requests(cpu, "");
        spec["priority"] = json!(priority);
        pod(name, spec)
    }

    fn run(incoming: PodInfo, nodes: Vec<NodeInfo>) -> PostFilterResult {
        run_with_budgets(incoming, nodes, Vec::new())
    }

    fn run_with_budgets(
        incoming: PodInfo,
        nodes: Vec<NodeInfo>,
        pdbs: Vec<PdbInfo>,
    ) -> PostFilterResult {
        let framework = Framework::new(
            vec![
                (Arc::new(NodeResourcesFit) as Arc<dyn Plugin>, 1),
                (Arc::new(DefaultPreemption), 0),
            ],
            None,
        );
        let mut snapshot = Snapshot::from_nodes(nodes);
        for (i, pdb) in pdbs.into_iter().enumerate() {
            snapshot.set_pdb(format!("default/pdb-{i}"), pdb);
        }
        let state = CycleState::default();
        let statuses = snapshot
            .nodes()
            .iter()
            .map(|n| (n.name.clone(), framework.run_filters(&state, &incoming, n)))
            .collect();
        DefaultPreemption.post_filter(&state, &incoming, &snapshot, &statuses, &framework)
    }

    #[test]
    fn preempts_the_fewest_least_important_pods() {
        /// What, the preemptor, the nodes, the expected nomination and victims.
        type Case<'a> = (&'a str, PodInfo, Vec<NodeInfo>, Option<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "one low-priority victim",
                prioritized("p", 100, "2"),
                vec![with_pods(
                    node("a", json!({})),
                    vec![prioritized("low", 0, "3"), prioritized("high", 1000, "1")],
                )],
                Some("a"),
                vec!["default/low"],
            ),
            (
                "the node with the least important victims wins",
                prioritized("p", 100, "2"),
                vec![
                    with_pods(node("a", json!({})), vec![prioritized("mid", 50, "4")]),
                    with_pods(node("b", json!({})), vec![prioritized("low", 10, "4")]),
                ],
                Some("b"),
                vec!["default/low"],
            ),
            (
                "only what is needed is evicted",
                prioritized("p", 100, "1"),
                vec![with_pods(
                    node("a", json!({})),
                    vec![prioritized("x", 0, "2"), prioritized("y", 5, "2")],
                )],
                Some("a"),
                vec!["default/x"],
            ),
            (
                "equal or higher priority pods are never victims",
                prioritized("p", 100, "2"),
                vec![with_pods(node("a", json!({})), vec![prioritized("same", 100, "4")])],
                None,
                vec![],
            ),
        ];
        for (what, incoming, nodes, nominated, victims) in cases {
            let result = run(incoming, nodes);
            assert_eq!(result.nominated_node.as_deref(), nominated, "{what}: {:?}", result.status);
            let keys: Vec<&str> = result.victims.iter().map(|v| v.key.as_str()).collect();
            assert_eq!(keys, victims, "{what}");
        }
    }

    fn budget(app: &str, allowed: i32) -> PdbInfo {
        let pdb = serde_json::from_value(json!({
            "metadata": {"name": app, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1,
                "expectedPods": 1},
        }))
        .unwrap();
        PdbInfo::new(&pdb)
    }

    fn labelled(name: &str, app: &str, priority: i32, cpu: &str) -> PodInfo {
        let mut spec = requests(cpu, "");
        spec["priority"] = json!(priority);
        crate::plugins::testing::pod_with(name, json!({"labels": {"app": app}}), spec)
    }

    #[test]
    fn victims_a_budget_allows_to_go_are_preferred() {
        /// What, the budgets, the nodes, the expected nomination and victims.
        type Case<'a> = (&'a str, Vec<PdbInfo>, Vec<NodeInfo>, Option<&'a str>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "the node whose victim no budget protects wins over a lower-priority victim",
                vec![budget("db", 0)],
                vec![
                    with_pods(node("a", json!({})), vec![labelled("db-0", "db", 0, "4")]),
                    with_pods(node("b", json!({})), vec![labelled("web-0", "web", 50, "4")]),
                ],
                Some("b"),
                vec!["default/web-0"],
            ),
            (
                "a budget with room left does not count as violated",
                vec![budget("db", 1)],
                vec![
                    with_pods(node("a", json!({})), vec![labelled("db-0", "db", 0, "4")]),
                    with_pods(node("b", json!({})), vec![labelled("web-0", "web", 50, "4")]),
                ],
                Some("a"),
                vec!["default/db-0"],
            ),
            (
                "on one node the protected pod is given back first, though less important",
                vec![budget("db", 0)],
                vec![with_pods(
                    node("a", json!({})),
                    vec![labelled("db-0", "db", 0, "2"), labelled("web-0", "web", 10, "2")],
                )],
                Some("a"),
                vec!["default/web-0"],
            ),
            (
                "when only protected pods can make room they still go",
                vec![budget("db", 0)],
                vec![with_pods(node("a", json!({})), vec![labelled("db-0", "db", 0, "4")])],
                Some("a"),
                vec!["default/db-0"],
            ),
        ];
        for (what, pdbs, nodes, nominated, victims) in cases {
            let result = run_with_budgets(labelled("p", "p", 100, "2"), nodes, pdbs);
            assert_eq!(result.nominated_node.as_deref(), nominated, "{what}: {:?}", result.status);
            let keys: Vec<&str> = result.victims.iter().map(|v| v.key.as_str()).collect();
            assert_eq!(keys, victims, "{what}");
        }
    }

    #[test]
    fn failure_message_follows_upstream() {
        let result = run(
            prioritized("p", 100, "2"),
            vec![with_pods(node("a", json!({})), vec![prioritized("same", 100, "4")])],
        );
        assert_eq!(
            result.status.message(),
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        let mut never = prioritized("p", 100, "8");
        never.spec.preemption_policy = Some("Never".into());
        assert!(run(never, vec![node("a", json!({}))]).nominated_node.is_none());
    }
}
