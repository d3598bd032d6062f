//! The nodes a scheduling cycle sees, with the pods counted on them.

use std::collections::HashMap;

use super::NodeInfo;

/// Nodes in a stable order (so the search can resume where the last one stopped), by name, and
/// how many nodes hold each image (ImageLocality scales by it).
#[derive(Default)]
pub struct Snapshot {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    image_nodes: HashMap<String, usize>,
}

impl Snapshot {
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
        for node in nodes {
            for (image, _) in &node.images {
                *snapshot.image_nodes.entry(image.clone()).or_default() += 1;
            }
            snapshot.index.insert(node.name.clone(), snapshot.nodes.len());
            snapshot.nodes.push(node);
        }
        snapshot
    }
}
