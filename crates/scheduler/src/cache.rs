//! The scheduler's cache: nodes with the pods counted on them. A pod counts on its node from
//! the moment it is assumed (before its binding returns), so two pods never race into the
//! last slot; a failed binding forgets the assumption.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::types::{PdbInfo, PodKey};
use crate::framework::{PodInfo, Snapshot};

struct CachedPod {
    node: String,
    /// Counted by the scheduler's own decision; the watch has not confirmed the binding yet.
    assumed: bool,
}

#[derive(Default)]
pub struct Cache {
    snapshot: Snapshot,
    pods: HashMap<PodKey, CachedPod>,
    /// Pods that preempted others and wait for room on a node, by node: other pods of lower
    /// priority must not take that room meanwhile.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Cache {
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Adds or updates a node; returns whether anything scheduling looks at changed.
    pub fn set_node(&mut self, node: &Node) -> bool {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let changed = self.snapshot.get(name).is_none_or(|known| known.differs_from(node));
        if changed {
            self.snapshot.set_node(node);
        }
        changed
    }

    /// Adds or replaces a PodDisruptionBudget (preemption weighs them).
    pub fn set_pdb(&mut self, key: String, pdb: PdbInfo) {
        self.snapshot.set_pdb(key, pdb);
    }

    pub fn remove_pdb(&mut self, key: &str) {
        self.snapshot.remove_pdb(key);
    }

    pub fn pdb_keys(&self) -> Vec<String> {
        self.snapshot.pdb_keys()
    }

    pub fn remove_node(&mut self, name: &str) {
        self.snapshot.remove_node(name);
    }

    pub fn node_names(&self) -> Vec<String> {
        self.snapshot.nodes().iter().filter(|n| n.exists).map(|n| n.name.clone()).collect()
    }

    /// Counts a bound pod (from the watch) on its node, confirming an assumption if there was
    /// one; a pod the watch shows on another node than assumed moves there.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>, node: &str) {
        if let Some(cached) = self.pods.get(&pod.key) {
            let old = cached.node.clone();
            self.remove_from_node(&pod.key, &old);
        }
        self.clear_nomination(&pod.key);
        self.pods.insert(pod.key.clone(), CachedPod { node: node.to_owned(), assumed: false });
        self.snapshot.add_pod(node, pod);
    }

    /// Counts `pod` on `node` before the binding is written.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.clear_nomination(&pod.key);
        self.pods.insert(pod.key.clone(), CachedPod { node: node.to_owned(), assumed: true });
        self.snapshot.add_pod(node, pod);
    }

    /// Drops an assumption whose binding failed (a confirmed pod stays).
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn remove_pod(&mut self, key: &str) {
        self.clear_nomination(key);
        if let Some(cached) = self.pods.remove(key) {
            self.remove_from_node(key, &cached.node);
        }
    }

    fn remove_from_node(&mut self, key: &str, node: &str) {
        self.snapshot.remove_pod(node, key);
        self.snapshot.remove_if_empty_placeholder(node);
    }

    /// Marks a preemptor as waiting for room on `node`.
    pub fn nominate(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.clear_nomination(&pod.key);
        self.nominated.entry(node.to_owned()).or_default().push(pod);
    }

    pub fn clear_nomination(&mut self, key: &str) {
        if self.nominated.is_empty() {
            return;
        }
        self.nominated.retain(|_, pods| {
            pods.retain(|p| p.key != key);
            !pods.is_empty()
        });
    }

    pub fn nominated(&self) -> &HashMap<String, Vec<Arc<PodInfo>>> {
        &self.nominated
    }

    pub fn pod_keys(&self) -> Vec<PodKey> {
        self.pods.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{pod, requests};
    use serde_json::json;

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": {"allocatable": {"cpu": "2", "pods": "10"}}})).unwrap()
    }

    #[test]
    fn assumed_pods_count_at_once_and_forgetting_frees_them() {
        let mut cache = Cache::default();
        cache.set_node(&node("n"));
        let p = Arc::new(pod("p", requests("1", "")));
        cache.assume(p.clone(), "n");
        assert_eq!(cache.snapshot().get("n").unwrap().requested.milli_cpu, 1000);
        assert!(cache.is_assumed("default/p"));
        cache.forget("default/p");
        assert_eq!(cache.snapshot().get("n").unwrap().requested.milli_cpu, 0);
        assert!(!cache.contains("default/p"));
    }

    #[test]
    fn the_watch_confirms_an_assumption_without_counting_twice() {
        let mut cache = Cache::default();
        cache.set_node(&node("n"));
        let p = Arc::new(pod("p", requests("1", "")));
        cache.assume(p.clone(), "n");
        cache.add_pod(p.clone(), "n");
        cache.forget("default/p");
        let n = cache.snapshot().get("n").unwrap();
        assert_eq!((n.requested.milli_cpu, n.pods.len()), (1000, 1));
        cache.remove_pod("default/p");
        assert_eq!(cache.snapshot().get("n").unwrap().pods.len(), 0);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_on_a_placeholder() {
        let mut cache = Cache::default();
        cache.add_pod(Arc::new(pod("p", json!({}))), "later");
        assert_eq!(cache.snapshot().node_count(), 0);
        cache.set_node(&node("later"));
        assert_eq!(cache.snapshot().get("later").unwrap().pods.len(), 1);
        assert!(!cache.set_node(&node("later")), "an identical node is no change");
    }
}
