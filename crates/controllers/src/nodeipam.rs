//! Node IPAM: every node gets a `spec.podCIDR` carved from `--cluster-cidr`; a deleted node's
//! range is free again once ranges run out (ranges in use are read from the nodes themselves).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::Store;

use crate::Error;
use crate::events::{EventRecorder, reference};
use crate::informer::Informer;

/// An IPv4 range, e.g. 10.42.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (ip, prefix) = text.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Some(Cidr { base: u32::from(ip) & mask, prefix })
    }

    /// The `index`-th subnet of length `size` inside this range.
    pub fn subnet(&self, size: u8, index: u32) -> Option<Cidr> {
        if size < self.prefix || size > 32 {
            return None;
        }
        let count = 1u64 << (size - self.prefix);
        (u64::from(index) < count)
            .then(|| Cidr { base: self.base + (index << (32 - u32::from(size))), prefix: size })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

pub struct Context {
    pub client: kube::Client,
    pub nodes: Store<Node>,
    pub cluster_cidr: Cidr,
    pub mask_size: u8,
    pub ranges: Mutex<Ranges>,
    pub events: EventRecorder,
}

/// The node ranges in use, as subnet indexes of the cluster CIDR: those the cached nodes name
/// plus those this process handed out that the cache may not show yet. Kept up to date as
/// nodes are reconciled; rebuilt from the cache (which frees deleted nodes' ranges) when no
/// range looks free, so one allocation costs O(1) rather than a scan of every node.
#[derive(Default)]
pub struct Ranges {
    used: HashSet<u32>,
    by_node: HashMap<String, u32>,
    /// Where the search for a free range resumes.
    next: u32,
    rebuilt: Option<Instant>,
}

/// A full rebuild at most this often when ranges run out (nodes wait for one to free up).
const REBUILD_INTERVAL: Duration = Duration::from_secs(1);

impl Ranges {
    /// Records that `node` holds subnet `index`.
    fn hold(&mut self, node: &str, index: u32) {
        if let Some(old) = self.by_node.insert(node.to_owned(), index)
            && old != index
        {
            self.used.remove(&old);
        }
        self.used.insert(index);
    }

    /// Starts over from the nodes the cache holds: ranges they name, and those handed out to
    /// nodes that still exist.
    fn rebuild(&mut self, nodes: &[Arc<Node>], cluster: Cidr, size: u8) {
        let pending = std::mem::take(&mut self.by_node);
        self.used.clear();
        for node in nodes {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let named = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref());
            match named.and_then(|c| index_of(cluster, size, c)) {
                Some(index) => self.hold(name, index),
                None if named.is_none_or(str::is_empty) => {
                    if let Some(&index) = pending.get(name) {
                        self.hold(name, index);
                    }
                }
                None => {}
            }
        }
        self.rebuilt = Some(Instant::now());
    }

    /// A free subnet index for `node` (the one it was already given, if any).
    fn allocate(&mut self, node: &str, cluster: Cidr, size: u8) -> Option<u32> {
        if let Some(&index) = self.by_node.get(node) {
            return Some(index);
        }
        let count = subnet_count(cluster, size);
        let index = (0..count)
            .map(|i| ((u64::from(self.next) + i) % count) as u32)
            .find(|i| !self.used.contains(i))?;
        self.next = index.wrapping_add(1);
        self.hold(node, index);
        Some(index)
    }
}

/// How many subnets of length `size` the cluster range has (0 if `size` does not fit in it).
fn subnet_count(cluster: Cidr, size: u8) -> u64 {
    if size < cluster.prefix || size > 32 { 0 } else { 1u64 << (size - cluster.prefix) }
}

/// Which subnet of length `size` of `cluster` `text` is, if it is one.
fn index_of(cluster: Cidr, size: u8, text: &str) -> Option<u32> {
    let cidr = Cidr::parse(text)?;
    if cidr.prefix != size || subnet_count(cluster, size) == 0 {
        return None;
    }
    let offset = cidr.base.wrapping_sub(cluster.base) >> (32 - u32::from(size));
    (cluster.subnet(size, offset) == Some(cidr)).then_some(offset)
}

pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let (cluster, size) = (ctx.cluster_cidr, ctx.mask_size);
    if let Some(cidr) =
        node.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).filter(|c| !c.is_empty())
    {
        if let Some(index) = index_of(cluster, size, cidr) {
            ctx.ranges.lock().unwrap_or_else(|e| e.into_inner()).hold(&name, index);
        }
        return Ok(Action::await_change());
    }
    let index = {
        let mut ranges = ctx.ranges.lock().unwrap_or_else(|e| e.into_inner());
        match ranges.allocate(&name, cluster, size) {
            Some(index) => Some(index),
            None if ranges.rebuilt.is_none_or(|at| at.elapsed() >= REBUILD_INTERVAL) => {
                ranges.rebuild(&ctx.nodes.state(), cluster, size);
                ranges.allocate(&name, cluster, size)
            }
            None => None,
        }
    };
    let Some(cidr) = index.and_then(|i| cluster.subnet(size, i)) else {
        ctx.events.warning(
            reference(&*node),
            "CIDRNotAvailable",
            "Allocate",
            format!("Node {name} status is now: CIDRNotAvailable"),
        );
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let cidr = cidr.to_string();
    let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
    let api: Api<Node> = Api::all(ctx.client.clone());
    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    tracing::info!(node = name, cidr, "pod CIDR assigned");
    Ok(Action::await_change())
}

pub fn error_policy(_node: Arc<Node>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("node IPAM: {error}");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until the task is dropped; one node at a time, so two never get the same range.
pub async fn run(
    client: kube::Client,
    nodes: Informer<Node>,
    cluster_cidr: Cidr,
    mask_size: u8,
    events: EventRecorder,
) {
    nodes.wait_until_ready().await;
    let ctx = Arc::new(Context {
        client,
        nodes: nodes.store(),
        cluster_cidr,
        mask_size,
        ranges: Mutex::default(),
        events,
    });
    ctx.ranges.lock().unwrap_or_else(|e| e.into_inner()).rebuild(
        &ctx.nodes.state(),
        cluster_cidr,
        mask_size,
    );
    Controller::for_shared_stream(nodes.touched(), nodes.store())
        .with_config(controller::Config::default().concurrency(1))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>) -> Arc<Node> {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            pod_cidr: cidr.map(str::to_owned),
            ..Default::default()
        });
        Arc::new(node)
    }

    #[test]
    fn subnets_and_their_indexes() {
        let cluster = Cidr::parse("10.42.0.0/16").unwrap();
        assert_eq!(cluster.subnet(24, 255).unwrap().to_string(), "10.42.255.0/24");
        assert_eq!(cluster.subnet(24, 256), None);
        assert_eq!(index_of(cluster, 24, "10.42.7.0/24"), Some(7));
        assert_eq!(index_of(cluster, 24, "10.43.0.0/24"), None, "outside the cluster range");
        assert_eq!(index_of(cluster, 24, "10.42.7.0/25"), None, "another size");
        assert_eq!(index_of(cluster, 24, "garbage"), None);
    }

    #[test]
    fn ranges_are_handed_out_once_and_skip_used_ones() {
        let cluster = Cidr::parse("10.42.0.0/16").unwrap();
        let mut ranges = Ranges::default();
        ranges.rebuild(
            &[node("a", Some("10.42.0.0/24")), node("c", Some("10.42.2.0/24"))],
            cluster,
            24,
        );
        assert_eq!(ranges.allocate("b", cluster, 24), Some(1));
        assert_eq!(ranges.allocate("b", cluster, 24), Some(1), "a node keeps what it was given");
        assert_eq!(ranges.allocate("d", cluster, 24), Some(3));
    }

    #[test]
    fn a_deleted_nodes_range_is_free_after_a_rebuild() {
        let cluster = Cidr::parse("10.0.0.0/23").unwrap();
        let mut ranges = Ranges::default();
        ranges.rebuild(&[], cluster, 24);
        assert_eq!(ranges.allocate("a", cluster, 24), Some(0));
        assert_eq!(ranges.allocate("b", cluster, 24), Some(1));
        assert_eq!(ranges.allocate("c", cluster, 24), None, "two ranges, both taken");
        // "a" is gone; "b" got its range in the API; a pending one survives too.
        ranges.rebuild(&[node("b", Some("10.0.1.0/24"))], cluster, 24);
        assert_eq!(ranges.allocate("c", cluster, 24), Some(0));
        ranges.rebuild(&[node("b", Some("10.0.1.0/24")), node("c", None)], cluster, 24);
        assert_eq!(ranges.allocate("c", cluster, 24), Some(0), "c's pending range is kept");
        assert_eq!(ranges.allocate("d", cluster, 24), None);
    }
}
