//! The nodes a scheduling cycle sees, with the pods counted on them.

use std::collections::HashMap;
use std::sync::Arc;

use super::selectors::{Selector, label_index_key};
use super::types::{AffinityTerm, PdbInfo, PodKey};
use super::{FastMap, NodeInfo, PodInfo};

/// Nodes in a stable order (so the search can resume where the last one stopped), by name, and
/// how many nodes hold each image (ImageLocality scales by it). The pods counted on nodes are
/// also indexed the way affinity and spread look for them, so a scheduling cycle does not walk
/// every pod in the cluster (upstream's PreFilter does, in parallel).
#[derive(Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: FastMap<String, usize>,
    image_nodes: HashMap<String, usize>,
    /// Pods by each of their labels (`key=value`), with the node they are counted on.
    pods_by_label: FastMap<String, FastMap<PodKey, (Arc<PodInfo>, String)>>,
    /// Existing pods' required anti-affinity terms, each with how many pods on which node carry
    /// it; the pods of a workload share their terms, so there are few.
    anti_affinity_terms: FastMap<AffinityTerm, FastMap<String, usize>>,
    /// PodDisruptionBudgets by `namespace/name`: preemption prefers victims they allow to go.
    pdbs: HashMap<String, PdbInfo>,
}

impl Snapshot {
    /// Counts `pod` on `node` (a placeholder if the node is not known yet).
    pub fn add_pod(&mut self, node: &str, pod: Arc<PodInfo>) {
        for (key, value) in &pod.labels {
            self.pods_by_label
                .entry(label_index_key(key, value))
                .or_default()
                .insert(pod.key.clone(), (pod.clone(), node.to_owned()));
        }
        for term in &pod.terms().required_anti_affinity {
            let nodes = match self.anti_affinity_terms.get_mut(term) {
                Some(nodes) => nodes,
                None => self.anti_affinity_terms.entry(term.clone()).or_default(),
            };
            *nodes.entry(node.to_owned()).or_default() += 1;
        }
        self.entry(node).add_pod(pod);
    }

    /// Stops counting the pod `key` on `node`.
    pub fn remove_pod(&mut self, node: &str, key: &str) -> Option<Arc<PodInfo>> {
        let pod = self.get_mut(node)?.remove_pod(key)?;
        for (label, value) in &pod.labels {
            let index_key = label_index_key(label, value);
            if let Some(pods) = self.pods_by_label.get_mut(&index_key) {
                pods.remove(key);
                if pods.is_empty() {
                    self.pods_by_label.remove(&index_key);
                }
            }
        }
        for term in &pod.terms().required_anti_affinity {
            let Some(nodes) = self.anti_affinity_terms.get_mut(term) else { continue };
            if let Some(count) = nodes.get_mut(node) {
                *count -= 1;
                if *count == 0 {
                    nodes.remove(node);
                }
            }
            if nodes.is_empty() {
                self.anti_affinity_terms.remove(term);
            }
        }
        Some(pod)
    }

    /// Calls `f` with every pod on an existing node that `selector` may select, and its node
    /// (with its position): the pods carrying one of the selector's required labels, or every
    /// pod. Callers still match.
    pub fn for_each_candidate(
        &self,
        selector: &Selector,
        mut f: impl FnMut(&Arc<PodInfo>, usize, &NodeInfo),
    ) {
        let Some(labels) = selector.required_labels() else {
            for (index, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.exists) {
                for pod in &node.pods {
                    f(pod, index, node);
                }
            }
            return;
        };
        for label in labels {
            for (pod, node) in self.pods_by_label.get(&label).into_iter().flat_map(|p| p.values()) {
                let Some(&index) = self.index.get(node) else { continue };
                let node = &self.nodes[index];
                if node.exists {
                    f(pod, index, node);
                }
            }
        }
    }

    pub fn set_pdb(&mut self, key: String, pdb: PdbInfo) {
        self.pdbs.insert(key, pdb);
    }

    pub fn remove_pdb(&mut self, key: &str) {
        self.pdbs.remove(key);
    }

    pub fn pdb_keys(&self) -> Vec<String> {
        self.pdbs.keys().cloned().collect()
    }

    pub fn pdbs(&self) -> impl Iterator<Item = &PdbInfo> {
        self.pdbs.values()
    }

    /// Existing pods' required anti-affinity terms, with the nodes (by name) of the pods
    /// carrying each and how many carry it there.
    pub fn anti_affinity_terms(
        &self,
    ) -> impl Iterator<Item = (&AffinityTerm, &FastMap<String, usize>)> {
        self.anti_affinity_terms.iter()
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(*self.index.get(name)?)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// How many nodes have the image.
    pub fn image_nodes(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Nodes that exist (not placeholders for pods bound to unseen nodes).
    pub fn node_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.exists).count()
    }

    /// The node named `name`, created as a placeholder if missing.
    pub fn entry(&mut self, name: &str) -> &mut NodeInfo {
        let index = match self.index.get(name) {
            Some(index) => *index,
            None => {
                self.nodes.push(NodeInfo::placeholder(name));
                self.index.insert(name.to_owned(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[index]
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let index = *self.index.get(name)?;
        self.nodes.get_mut(index)
    }

    /// Adds or replaces a node's own fields (the pods counted on it stay).
    pub fn set_node(&mut self, node: &k8s_openapi::api::core::v1::Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let old_images = self.get(&name).map(|n| n.images.clone()).unwrap_or_default();
        self.count_images(&old_images, false);
        let info = self.entry(&name);
        info.set_node(node);
        let images = info.images.clone();
        self.count_images(&images, true);
    }

    /// Removes a node; its pods stay on a placeholder until they are deleted.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&index) = self.index.get(name) else { return };
        let images = std::mem::take(&mut self.nodes[index].images);
        self.count_images(&images, false);
        if !self.nodes[index].pods.is_empty() {
            self.nodes[index].exists = false;
            return;
        }
        self.nodes.swap_remove(index);
        self.index.remove(name);
        if let Some(moved) = self.nodes.get(index) {
            self.index.insert(moved.name.clone(), index);
        }
    }

    /// Drops a placeholder once its last pod is gone.
    pub fn remove_if_empty_placeholder(&mut self, name: &str) {
        if self.get(name).is_some_and(|n| !n.exists && n.pods.is_empty()) {
            self.remove_node(name);
        }
    }

    fn count_images(&mut self, images: &[(String, i64)], add: bool) {
        for (image, _) in images {
            if add {
                *self.image_nodes.entry(image.clone()).or_default() += 1;
            } else if let Some(count) = self.image_nodes.get_mut(image) {
                *count -= 1;
                if *count == 0 {
                    self.image_nodes.remove(image);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Self {
        let mut snapshot = Snapshot::default();
        for mut node in nodes {
            for (image, _) in &node.images {
                *snapshot.image_nodes.entry(image.clone()).or_default() += 1;
            }
            let pods: Vec<_> = node.pods.iter().map(|p| p.key.clone()).collect();
            let pods: Vec<_> = pods.iter().filter_map(|key| node.remove_pod(key)).collect();
            let name = node.name.clone();
            snapshot.index.insert(name.clone(), snapshot.nodes.len());
            snapshot.nodes.push(node);
            for pod in pods {
                snapshot.add_pod(&name, pod);
            }
        }
        snapshot
    }
}
