//! Node IPAM: every node gets a `spec.podCIDR` carved from `--cluster-cidr`; a deleted node's
//! range is free again (ranges in use are read from the nodes themselves).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Ranges handed out by this process that the cache may not show yet, by node.
    pub assigned: Mutex<HashMap<String, String>>,
    pub events: EventRecorder,
}

/// The first range of the cluster CIDR no node uses.
pub fn first_free(cluster: Cidr, size: u8, used: &HashSet<String>) -> Option<Cidr> {
    (0..).map_while(|i| cluster.subnet(size, i)).find(|c| !used.contains(&c.to_string()))
}

pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    if node.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some_and(|c| !c.is_empty()) {
        return Ok(Action::await_change());
    }
    let mut assigned = ctx.assigned.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let nodes = ctx.nodes.state();
    assigned.retain(|n, _| nodes.iter().any(|node| node.metadata.name.as_ref() == Some(n)));
    let mut used: HashSet<String> =
        nodes.iter().filter_map(|n| n.spec.as_ref()?.pod_cidr.clone()).collect();
    used.extend(assigned.values().cloned());
    let Some(cidr) = first_free(ctx.cluster_cidr, ctx.mask_size, &used) else {
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
    assigned.insert(name.clone(), cidr.clone());
    *ctx.assigned.lock().unwrap_or_else(|e| e.into_inner()) = assigned;
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
        assigned: Mutex::default(),
        events,
    });
    Controller::for_shared_stream(nodes.touched(), nodes.store())
        .with_config(controller::Config::default().concurrency(1))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_carved_in_order_skipping_used_ones() {
        let cluster = Cidr::parse("10.42.0.0/16").unwrap();
        let used: HashSet<String> = ["10.42.0.0/24".to_owned(), "10.42.2.0/24".to_owned()].into();
        assert_eq!(first_free(cluster, 24, &used).unwrap().to_string(), "10.42.1.0/24");
        assert_eq!(cluster.subnet(24, 255).unwrap().to_string(), "10.42.255.0/24");
        assert_eq!(cluster.subnet(24, 256), None);
        let tiny = Cidr::parse("10.0.0.0/24").unwrap();
        assert_eq!(first_free(tiny, 24, &["10.0.0.0/24".to_owned()].into()), None);
    }
}
