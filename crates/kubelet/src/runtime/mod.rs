//! The container runtime the kubelet drives, shaped like CRI's RuntimeService and ImageService
//! so Docker (bollard), a CRI socket and the simulated runtime all fit behind the same traits.

pub mod docker;
pub mod recording;
pub mod simulated;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::stream::BoxStream;

/// Labels the kubelet puts on sandboxes and containers to find them again (upstream's names).
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("pod sandbox {0} not found")]
    SandboxNotFound(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("image {0} not found")]
    ImageNotFound(String),
    #[error("container {0} is not in the state this operation needs")]
    InvalidState(String),
    #[error("no free pod IP left in {0}")]
    PodIpsExhausted(String),
    #[error("invalid pod CIDR {0:?}: {1}")]
    InvalidPodCidr(String, String),
    /// A failure reported by the runtime itself (e.g. the Docker daemon).
    #[error("{0}")]
    Runtime(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Which pod a sandbox belongs to (CRI's PodSandboxMetadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSandboxMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// How many sandboxes this pod had before this one.
    pub attempt: u32,
}

/// What a sandbox is created from (CRI's PodSandboxConfig, the parts we use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSandboxConfig {
    pub metadata: PodSandboxMetadata,
    pub hostname: String,
    /// Host network pods share the node's IP instead of getting one from the pod CIDR.
    pub host_network: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodSandboxState {
    Ready,
    NotReady,
}

/// A sandbox as the runtime reports it (CRI's PodSandboxStatus).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSandboxStatus {
    pub id: String,
    pub metadata: PodSandboxMetadata,
    pub state: PodSandboxState,
    pub created_at: SystemTime,
    /// The pod's IP; `None` for host-network pods and stopped sandboxes.
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
}

/// Selects sandboxes by their labels (CRI's PodSandboxFilter).
#[derive(Clone, Debug, Default)]
pub struct PodSandboxFilter {
    pub label_selector: BTreeMap<String, String>,
}

/// What a container is created from (CRI's ContainerConfig, the parts we use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    /// How many times this container was restarted before (its restartCount once running).
    pub attempt: u32,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// Host files and directories (the pod's volumes) bind-mounted into the container.
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A host path bind-mounted into a container (CRI's Mount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub read_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as the runtime reports it (CRI's ContainerStatus).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub pod_sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    /// The image as the pod spec names it.
    pub image: String,
    /// The image's ID (digest) that the container runs.
    pub image_ref: String,
    pub state: ContainerState,
    pub created_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub exit_code: i32,
    /// Why it exited (`Completed`, `Error`, `OOMKilled`, …), empty while it runs.
    pub reason: String,
    pub message: String,
    pub labels: BTreeMap<String, String>,
}

/// Selects containers (CRI's ContainerFilter).
#[derive(Clone, Debug, Default)]
pub struct ContainerFilter {
    pub pod_sandbox_id: Option<String>,
    pub label_selector: BTreeMap<String, String>,
}

/// Something changed in a container on its own (CRI's ContainerEventResponse): the kubelet
/// resyncs the pod instead of polling every container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEvent {
    pub container_id: String,
    pub kind: ContainerEventKind,
    pub pod: PodSandboxMetadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerEventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

/// The runtime's name and version, reported in `status.nodeInfo.containerRuntimeVersion`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
}

/// Pod sandboxes and containers (CRI's RuntimeService).
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    async fn version(&self) -> Result<RuntimeVersion>;
    /// Tells the runtime the node's pod CIDR, which sandbox IPs come from.
    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()>;
    /// Whether pods must wait for the CIDR the cluster assigns the Node (a real network that
    /// cannot move under running pods) instead of starting on a per-node default.
    fn needs_assigned_pod_cidr(&self) -> bool {
        false
    }
    /// Creates and starts a sandbox (the pod's network namespace); returns its id.
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String>;
    /// Stops the sandbox and every container in it and releases its IP; idempotent.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Removes a stopped sandbox and its containers; removing one that is gone is no error.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus>;
    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandboxStatus>>;
    /// Creates a container in a sandbox; returns its id.
    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Stops a container: SIGTERM, then SIGKILL once `timeout` (the grace period) has passed.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Removes a container; removing one that is gone is no error.
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    /// Changes containers make on their own (exits above all).
    fn container_events(&self) -> BoxStream<'static, ContainerEvent>;
}

/// An image the runtime holds (CRI's Image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
}

/// Images (CRI's ImageService).
#[async_trait]
pub trait ImageService: Send + Sync {
    /// Pulls `image` (a reference like `busybox:1.36`); returns the image's ID.
    async fn pull_image(&self, image: &str) -> Result<String>;
    async fn list_images(&self) -> Result<Vec<Image>>;
    /// The image `image` refers to, or `None` if it is not present.
    async fn image_status(&self, image: &str) -> Result<Option<Image>>;
    async fn remove_image(&self, image: &str) -> Result<()>;
}

/// Whether `labels` has every pair of `selector`.
pub fn labels_match(
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
