//! Node registration and the two heartbeats: the node's Lease in `kube-node-lease`, renewed
//! every 10 s, and its status, posted when it changes (or the stored one differs) or at least
//! every 5 minutes (upstream's nodeLeaseDurationSeconds, renew interval and
//! nodeStatusReportFrequency).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeStatus, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{Error, KubeletNode, default_pod_cidr, node_status};

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_DURATION_SECONDS: i32 = 40;
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often the status is computed, and posted if it changed.
const STATUS_UPDATE_INTERVAL: Duration = Duration::from_secs(10);
/// Posted at least this often even if nothing changed.
pub const STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(300);
/// Registrations in flight at once, so thousands of simulated nodes do not flood the server.
const REGISTRATIONS_IN_FLIGHT: usize = 32;
const RETRY: Duration = Duration::from_secs(2);

/// Registers every node, then keeps its Lease and status fresh, until dropped.
pub async fn run(
    client: kube::Client,
    nodes: Arc<HashMap<String, Arc<KubeletNode>>>,
    count: usize,
) {
    let registrations = Arc::new(Semaphore::new(REGISTRATIONS_IN_FLIGHT));
    let tasks: Vec<_> = nodes
        .values()
        .map(|node| {
            let offset = RENEW_INTERVAL.mul_f64(node.index as f64 / count.max(1) as f64);
            tokio::spawn(keep_fresh(client.clone(), node.clone(), registrations.clone(), offset))
        })
        .collect();
    // Dropping this future (the agent stopping) must stop every node's loop too.
    let _abort = AbortOnDrop(tasks.iter().map(|t| t.abort_handle()).collect());
    futures::future::join_all(tasks).await;
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn keep_fresh(
    client: kube::Client,
    node: Arc<KubeletNode>,
    registrations: Arc<Semaphore>,
    offset: Duration,
) {
    let name = node.identity.name.clone();
    let mut heartbeat = Heartbeat { client, node, last_status: None, last_report: Instant::now() };
    loop {
        let permit = registrations.acquire().await;
        let result = heartbeat.register().await;
        drop(permit);
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(node = %name, "registering the node: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    tracing::info!(node = %name, "node registered");
    // Spread renewals of many nodes over the interval instead of bursting them together.
    tokio::time::sleep(offset).await;
    let mut ticks = tokio::time::interval(RENEW_INTERVAL.min(STATUS_UPDATE_INTERVAL));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = heartbeat.renew_lease().await {
            tracing::warn!(node = %name, "renewing the node lease: {e}");
        }
        if let Err(e) = heartbeat.update_status(false).await {
            tracing::warn!(node = %name, "updating node status: {e}");
        }
    }
}

struct Heartbeat {
    client: kube::Client,
    node: Arc<KubeletNode>,
    last_status: Option<NodeStatus>,
    last_report: Instant,
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// The merge patch that renews `node`'s Lease now.
fn renewal(node: &str) -> serde_json::Value {
    json!({ "spec": {
        "holderIdentity": node,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": now_micro(),
    }})
}

impl Heartbeat {
    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Creates the Node with its status (or adopts an existing one), and its Lease: about two
    /// requests per node, since thousands of simulated nodes register at once.
    async fn register(&mut self) -> Result<(), Error> {
        let name = &self.node.identity.name;
        let images = self.node.images.list_images().await?;
        let status = node_status::status(&self.node.identity, &images, None, SystemTime::now());
        let mut node = node_status::node(&self.node.identity);
        node.status = Some(status.clone());
        let node = match self.nodes().create(&PostParams::default(), &node).await {
            // Nodes may carry their status on create (upstream allows it); if the server
            // dropped it, it is posted below.
            Ok(node) if node.status.as_ref().is_some_and(|s| s.conditions.is_some()) => {
                if let Some(reason) = node_status::ready_transition(&NodeStatus::default(), &status)
                {
                    self.record_node_event(reason).await;
                }
                self.last_status = Some(status);
                self.last_report = Instant::now();
                node
            }
            Ok(node) => node,
            Err(kube::Error::Api(status)) if status.code == 409 => self.nodes().get(name).await?,
            Err(e) => return Err(e.into()),
        };
        if self.last_status.is_none() {
            self.last_status = node.status.clone();
            self.update_status(true).await?;
        }
        self.apply_pod_cidr(&node).await?;
        self.create_lease(node.metadata.uid.clone().unwrap_or_default()).await?;
        self.node.mark_registered();
        Ok(())
    }

    /// Hands the runtime the Node's pod CIDR, or this node's default one.
    async fn apply_pod_cidr(&self, node: &Node) -> Result<(), Error> {
        let assigned =
            node.spec.as_ref().and_then(|s| s.pod_cidr.clone()).filter(|c| !c.is_empty());
        // A real pod network must not start on a default range the cluster never assigned.
        if assigned.is_none() && self.node.worker.runtime.needs_assigned_pod_cidr() {
            return Err(Error::NoPodCidr(self.node.identity.name.clone()));
        }
        let cidr = assigned.unwrap_or_else(|| default_pod_cidr(self.node.index));
        self.node.worker.runtime.update_runtime_config(&cidr).await?;
        Ok(())
    }

    /// Posts the node's status when it differs from the last report, when its conditions differ
    /// from the stored ones (the node lifecycle controller sets Ready=Unknown while the kubelet
    /// is unheard; a returning kubelet must say Ready again at once), or when a report is due,
    /// as upstream's tryUpdateNodeStatus does against the Node it fetches.
    async fn update_status(&mut self, force: bool) -> Result<(), Error> {
        let name = self.node.identity.name.clone();
        let stored = self.nodes().get(&name).await?.status.unwrap_or_default();
        let images = self.node.images.list_images().await?;
        let status =
            node_status::status(&self.node.identity, &images, Some(&stored), SystemTime::now());
        let due = self.last_report.elapsed() >= STATUS_REPORT_INTERVAL;
        let conditions_differ = node_status::conditions_changed(&stored, &status);
        if !force
            && !due
            && !conditions_differ
            && self.last_status.as_ref().is_some_and(|old| !node_status::changed(old, &status))
        {
            return Ok(());
        }
        let patch = json!({ "status": status });
        let node = self
            .nodes()
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        if let Some(reason) = node_status::ready_transition(&stored, &status) {
            self.record_node_event(reason).await;
        }
        self.apply_pod_cidr(&node).await?;
        self.last_status = Some(status);
        self.last_report = Instant::now();
        Ok(())
    }

    /// An event about the node as upstream's kubelet records it (`NodeReady`, …): regarding
    /// the Node with its name as uid, from the `kubelet` on this host.
    async fn record_node_event(&self, reason: &str) {
        let name = &self.node.identity.name;
        let reporter = Reporter { controller: "kubelet".into(), instance: Some(name.clone()) };
        let recorder = Recorder::new(self.client.clone(), reporter);
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(format!("Node {name} status is now: {reason}")),
            action: reason.into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(name.clone()),
            uid: Some(name.clone()),
            ..Default::default()
        };
        if let Err(e) = recorder.publish(&event, &regarding).await {
            tracing::debug!(node = %name, "recording {reason}: {e}");
        }
    }

    async fn renew_lease(&self) -> Result<(), Error> {
        let name = &self.node.identity.name;
        let patch = Patch::Merge(renewal(name));
        match self.leases().patch(name, &PatchParams::default(), &patch).await {
            Ok(_) => Ok(()),
            // Deleted meanwhile (e.g. with its Node): make it again.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                let node = self.nodes().get(name).await?;
                self.create_lease(node.metadata.uid.unwrap_or_default()).await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), LEASE_NAMESPACE)
    }

    /// Creates the node's Lease, owned by the Node so it goes with it; renews one that exists.
    async fn create_lease(&self, node_uid: String) -> Result<(), Error> {
        let name = &self.node.identity.name;
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: name.clone(),
                    uid: node_uid,
                    ..Default::default()
                }]),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(name.clone()),
                lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                renew_time: Some(now_micro()),
                ..Default::default()
            }),
        };
        match self.leases().create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            // Left by an earlier run of this agent: renew it.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let patch = Patch::Merge(renewal(name));
                self.leases().patch(name, &PatchParams::default(), &patch).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
