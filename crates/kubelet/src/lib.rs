//! The kubelet: registers its node(s), keeps their Leases and status fresh, and runs the pods
//! bound to them through a CRI-shaped `ContainerRuntime` (Docker later; simulated now, which
//! lets one process stand in for thousands of nodes, kwok-style).

pub mod environment;
pub mod heartbeat;
pub mod node_status;
pub mod pod_files;
pub mod pod_status;
pub mod pod_worker;
pub mod pods;
pub mod runtime;
pub mod server;
pub mod status_manager;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use node_status::{Capacity, NodeIdentity, SystemInfo};
use pod_worker::PodWorker;
use runtime::{ContainerRuntime, ImageService};

/// What a kubelet's API work can fail with; the loops retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Sync(#[from] pod_worker::SyncError),
    #[error("container runtime: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("node {0} is not registered yet")]
    NotRegistered(String),
    #[error("node {0} has no spec.podCIDR yet (the node IPAM controller assigns it)")]
    NoPodCidr(String),
}

/// How the agent's nodes look.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    pub node_names: Vec<String>,
    /// The nodes' InternalIP (every simulated node of one agent shares the host's).
    pub host_ip: IpAddr,
    /// The kubelet API port reported in `status.daemonEndpoints`.
    pub kubelet_port: u16,
    pub capacity: Capacity,
    /// Extra labels on every node.
    pub labels: BTreeMap<String, String>,
    /// How many pods are synced (and their statuses written) at once.
    pub pod_concurrency: u16,
    /// Where pods' volumes live (`<data dir>/pods`) when the runtime runs real containers;
    /// `None` for simulated ones, which read no files.
    pub pods_dir: Option<PathBuf>,
}

/// The runtime a node's pods run in.
pub struct NodeRuntime {
    pub containers: Arc<dyn ContainerRuntime>,
    pub images: Arc<dyn ImageService>,
}

/// One node this process is the kubelet of.
pub struct KubeletNode {
    pub identity: NodeIdentity,
    /// Which of the agent's nodes this is; spreads lease renewals and picks a default pod CIDR.
    pub index: usize,
    pub worker: PodWorker,
    pub images: Arc<dyn ImageService>,
    /// Pods wait until the node is registered and its pod CIDR known.
    registered: AtomicBool,
}

impl KubeletNode {
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    fn mark_registered(&self) {
        self.registered.store(true, Ordering::Release);
    }
}

/// The pod CIDR a node uses while its Node names none: node `index` of this agent gets
/// 10.(64 + index / 256).(index % 256).0/24 — clear of k3s' 10.42/16 and the 10.43/16 services.
pub fn default_pod_cidr(index: usize) -> String {
    let index = index % (64 * 256);
    format!("10.{}.{}.0/24", 64 + index / 256, index % 256)
}

/// Runs the kubelet of every node in `config` until `shutdown` resolves; `runtime_for` makes
/// each node's runtime.
pub async fn run(
    client: kube::Client,
    config: KubeletConfig,
    runtime_for: impl Fn(&str) -> NodeRuntime,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut nodes = HashMap::new();
    let count = config.node_names.len();
    for (index, name) in config.node_names.iter().enumerate() {
        let runtime = runtime_for(name);
        let version = runtime.containers.version().await?;
        let identity = NodeIdentity {
            name: name.clone(),
            host_ip: config.host_ip,
            kubelet_port: config.kubelet_port,
            capacity: config.capacity.clone(),
            runtime: version.clone(),
            labels: config.labels.clone(),
            system: SystemInfo::of_host(name),
        };
        let worker = PodWorker {
            runtime: runtime.containers,
            images: runtime.images.clone(),
            host_ip: config.host_ip,
            runtime_name: version.runtime_name,
            files: config
                .pods_dir
                .as_ref()
                .map(|dir| Arc::new(pod_files::PodFiles::new(client.clone(), dir.clone()))),
        };
        let node = KubeletNode {
            identity,
            index,
            worker,
            images: runtime.images,
            registered: AtomicBool::new(false),
        };
        nodes.insert(name.clone(), Arc::new(node));
    }
    let nodes = Arc::new(nodes);
    let heartbeats = tokio::spawn(heartbeat::run(client.clone(), nodes.clone(), count));
    let pods = tokio::spawn(pods::run(client, nodes, config.pod_concurrency));
    shutdown.await;
    heartbeats.abort();
    pods.abort();
    Ok(())
}
