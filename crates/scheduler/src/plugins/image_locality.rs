//! ImageLocality: prefers nodes that already have the pod's images, weighted by image size and
//! by how widely the image is spread (so pods do not all pile onto one node).

use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, PreScore, Score, Snapshot, Status,
};

const MB: i64 = 1024 * 1024;
/// Below this total, images count as nothing; above the max, as everything (upstream's values).
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
const STATE_KEY: &str = "PreScoreImageLocality";

pub struct ImageLocality;

/// Each of the pod's images (normalized, and as Docker Hub names it) with the share of nodes
/// that have it.
struct Spread {
    images: Vec<(String, String, f64)>,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn as_pre_score(&self) -> Option<&dyn PreScore> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn Score> {
        Some(self)
    }
}

/// `nginx` → `nginx:latest`: node status lists images with their tags.
fn normalized(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

fn node_has(node: &NodeInfo, image: &str, docker_hub: &str) -> Option<i64> {
    node.images.iter().find(|(name, _)| name == image || name == docker_hub).map(|(_, size)| *size)
}

impl PreScore for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        _feasible: &[usize],
    ) -> Status {
        let total = snapshot.node_count().max(1) as f64;
        let images = pod
            .images
            .iter()
            .map(|image| {
                let image = normalized(image);
                let docker_hub = format!("docker.io/library/{image}");
                let nodes = snapshot.image_nodes(&image) + snapshot.image_nodes(&docker_hub);
                (image, docker_hub, (nodes as f64 / total).min(1.0))
            })
            .collect::<Vec<_>>();
        // No node has any of the images: every node would score the same.
        if images.iter().all(|(_, _, share)| *share == 0.0) {
            return Status::skip();
        }
        state.write(STATE_KEY, Spread { images });
        Status::success()
    }
}

impl Score for ImageLocality {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(spread) = state.read::<Spread>(STATE_KEY) else { return 0 };
        let sum: i64 = spread
            .images
            .iter()
            .filter_map(|(image, docker_hub, share)| {
                Some((node_has(node, image, docker_hub)? as f64 * share) as i64)
            })
            .sum();
        let max = MAX_CONTAINER_THRESHOLD * pod.images.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn nodes_with_big_widespread_images_score_higher() {
        let image =
            |size: i64| json!({"status": {"images": [{"names": ["app:1"], "sizeBytes": size}]}});
        let incoming = pod("p", json!({"containers": [{"name": "c", "image": "app:1"}]}));
        let cases = [
            ("no image anywhere", vec![node("a", json!({})), node("b", json!({}))], 0),
            ("small image", vec![node("a", image(10 * MB)), node("b", image(10 * MB))], 0),
            (
                "big image on every node",
                vec![node("a", image(523 * MB)), node("b", image(523 * MB))],
                51,
            ),
            (
                "big image on half the nodes",
                vec![node("a", image(1000 * MB)), node("b", json!({}))],
                48,
            ),
        ];
        for (what, nodes, expected) in cases {
            let snapshot = Snapshot::from_nodes(nodes);
            let mut state = CycleState::default();
            ImageLocality.pre_score(&mut state, &incoming, &snapshot, &[]);
            assert_eq!(
                ImageLocality.score(&state, &incoming, &snapshot.nodes()[0]),
                expected,
                "{what}"
            );
        }
    }
}
