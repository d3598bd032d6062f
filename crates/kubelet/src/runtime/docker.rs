//! The Docker Engine runtime (bollard), shaped like upstream's dockershim / cri-dockerd: a pod
//! sandbox is a "pause" container owning the pod's network namespace on a per-node bridge
//! network whose subnet is the node's pod CIDR; app containers join it (`container:<id>`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EventMessage,
    HostConfig, Ipam, IpamConfig, Mount as DockerMount, MountType, NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
    ListImagesOptions, RemoveContainerOptions, RemoveImageOptions, StopContainerOptions,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::{
    CONTAINER_NAME_LABEL, ContainerConfig, ContainerEvent, ContainerEventKind, ContainerFilter,
    ContainerRuntime, ContainerState, ContainerStatus, Image, ImageService, Mount, POD_NAME_LABEL,
    POD_NAMESPACE_LABEL, POD_UID_LABEL, PodSandboxConfig, PodSandboxFilter, PodSandboxMetadata,
    PodSandboxState, PodSandboxStatus, Result, RuntimeError, RuntimeVersion,
};

/// Which node's kubelet made a container: several agents may share one Docker Engine.
pub const NODE_LABEL: &str = "capstan.io/node";
/// `podsandbox` or `container` (upstream dockershim's label).
pub const TYPE_LABEL: &str = "io.kubernetes.docker.type";
/// The sandbox an app container runs in (upstream dockershim's label).
pub const SANDBOX_ID_LABEL: &str = "io.kubernetes.sandbox.id";
/// The sandbox's or container's attempt (restart count).
pub const ATTEMPT_LABEL: &str = "capstan.io/attempt";
/// The image as the pod spec names it.
pub const IMAGE_LABEL: &str = "capstan.io/image";
/// The pause image upstream's kubelet defaults to.
pub const DEFAULT_PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

const SANDBOX: &str = "podsandbox";
const CONTAINER: &str = "container";
/// Extra time a stop request gets beyond the grace period before the client gives up.
const STOP_SLACK: Duration = Duration::from_secs(30);
/// Docker reports a time that was never set as the zero time.
const ZERO_TIME_PREFIX: &str = "0001-01-01";
const EVENT_RECONNECT: Duration = Duration::from_secs(1);

/// Pods of one node in a Docker Engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    node: String,
    pause_image: String,
    /// The pod CIDR the node's network was last set up for; heartbeats repeat it often.
    network_cidr: std::sync::Arc<Mutex<Option<String>>>,
}

impl DockerRuntime {
    /// Connects to `DOCKER_HOST` (or `/var/run/docker.sock`) and agrees on an API version.
    pub async fn connect(node: &str, pause_image: &str) -> Result<Self> {
        let docker = Docker::connect_with_defaults().map_err(runtime_error)?;
        let docker = docker.negotiate_version().await.map_err(runtime_error)?;
        Ok(Self::new(docker, node, pause_image))
    }

    pub fn new(docker: Docker, node: &str, pause_image: &str) -> Self {
        Self {
            docker,
            node: node.to_owned(),
            pause_image: pause_image.to_owned(),
            network_cidr: Default::default(),
        }
    }

    /// The bridge network this node's pods get their IPs on.
    pub fn network_name(&self) -> String {
        network_name(&self.node)
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        if self.image_status(image).await?.is_none() {
            self.pull_image(image).await?;
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(|e| not_found_or(e, || RuntimeError::ContainerNotFound(id.into())))
    }

    /// Ids of this node's containers of `kind` whose labels include `selector`.
    async fn list_ids(
        &self,
        kind: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        let mut labels =
            vec![format!("{NODE_LABEL}={}", self.node), format!("{TYPE_LABEL}={kind}")];
        labels.extend(selector.iter().map(|(k, v)| format!("{k}={v}")));
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), labels)])),
            ..Default::default()
        };
        let found = self.docker.list_containers(Some(options)).await.map_err(runtime_error)?;
        Ok(found.into_iter().filter_map(|c| c.id).collect())
    }

    async fn stop(&self, id: &str, timeout: Duration) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        // A long grace period outlasts the client's default request timeout.
        let docker = self.docker.clone().with_timeout(timeout + STOP_SLACK);
        match docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(not_found_or(e, || RuntimeError::ContainerNotFound(id.into()))),
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    /// Creates the node's bridge network on `cidr`, replacing one on another CIDR.
    async fn ensure_network(&self, cidr: &str) -> Result<()> {
        let name = self.network_name();
        match self.docker.inspect_network(&name, None).await {
            Ok(network) => {
                let subnets: Vec<String> = network
                    .ipam
                    .and_then(|i| i.config)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.subnet)
                    .collect();
                if subnets.iter().any(|s| s == cidr) {
                    return Ok(());
                }
                if network.containers.is_some_and(|c| !c.is_empty()) {
                    return Err(RuntimeError::Runtime(format!(
                        "network {name} is on {subnets:?}, not the pod CIDR {cidr}, and still \
                         has containers"
                    )));
                }
                self.docker.remove_network(&name).await.map_err(runtime_error)?;
            }
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(runtime_error(e)),
        }
        let gateway = gateway_of(cidr)?;
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(cidr.to_owned()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(NODE_LABEL.to_owned(), self.node.clone())])),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Another call got there first.
            Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    fn sandbox_status(&self, inspect: ContainerInspectResponse) -> PodSandboxStatus {
        let labels = labels_of(&inspect);
        let running = inspect.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let network = self.network_name();
        let ip = inspect
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.get(&network))
            .and_then(|e| e.ip_address.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .filter(|_| running);
        PodSandboxStatus {
            id: inspect.id.clone().unwrap_or_default(),
            metadata: metadata_of(|k| labels.get(k).cloned()),
            state: if running { PodSandboxState::Ready } else { PodSandboxState::NotReady },
            created_at: inspect
                .created
                .as_deref()
                .and_then(parse_time)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            ip,
            labels,
        }
    }
}

pub fn network_name(node: &str) -> String {
    format!("capstan-{node}")
}

/// The first address of `cidr`, the bridge's own.
fn gateway_of(cidr: &str) -> Result<std::net::Ipv4Addr> {
    let invalid = |why: &str| RuntimeError::InvalidPodCidr(cidr.into(), why.into());
    let (base, prefix) = cidr.split_once('/').ok_or_else(|| invalid("no prefix length"))?;
    let base: std::net::Ipv4Addr = base.parse().map_err(|_| invalid("not an IPv4 address"))?;
    let prefix: u32 = prefix.parse().map_err(|_| invalid("bad prefix length"))?;
    if prefix > 30 {
        return Err(invalid("too small for pods"));
    }
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Ok(std::net::Ipv4Addr::from((u32::from(base) & mask) + 1))
}

fn runtime_error(e: DockerError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError { message, .. } => RuntimeError::Runtime(message),
        e => RuntimeError::Runtime(e.to_string()),
    }
}

fn not_found_or(e: DockerError, not_found: impl FnOnce() -> RuntimeError) -> RuntimeError {
    match e {
        DockerError::DockerResponseServerError { status_code: 404, .. } => not_found(),
        e => runtime_error(e),
    }
}

/// Docker's RFC 3339 times; its zero time means "never".
fn parse_time(text: &str) -> Option<SystemTime> {
    if text.is_empty() || text.starts_with(ZERO_TIME_PREFIX) {
        return None;
    }
    text.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

fn labels_of(inspect: &ContainerInspectResponse) -> BTreeMap<String, String> {
    inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn attempt_of(labels: &BTreeMap<String, String>) -> u32 {
    labels.get(ATTEMPT_LABEL).and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// Which pod a sandbox or container belongs to, from its labels.
fn metadata_of(label: impl Fn(&str) -> Option<String>) -> PodSandboxMetadata {
    PodSandboxMetadata {
        name: label(POD_NAME_LABEL).unwrap_or_default(),
        namespace: label(POD_NAMESPACE_LABEL).unwrap_or_default(),
        uid: label(POD_UID_LABEL).unwrap_or_default(),
        attempt: label(ATTEMPT_LABEL).and_then(|a| a.parse().ok()).unwrap_or(0),
    }
}

/// Docker container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]`; pod names already do.
fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect()
}

/// The sandbox container's name, as dockershim names it.
pub fn sandbox_name(metadata: &PodSandboxMetadata) -> String {
    format!(
        "k8s_POD_{}_{}_{}_{}",
        name_part(&metadata.name),
        name_part(&metadata.namespace),
        name_part(&metadata.uid),
        metadata.attempt
    )
}

/// An app container's name; the sandbox id keeps names unique when a pod's sandbox is redone.
pub fn container_name(
    config: &ContainerConfig,
    pod: &PodSandboxMetadata,
    sandbox_id: &str,
) -> String {
    format!(
        "k8s_{}_{}_{}_{}_{}_{}",
        name_part(&config.name),
        name_part(&pod.name),
        name_part(&pod.namespace),
        name_part(&pod.uid),
        config.attempt,
        sandbox_id.chars().take(12).collect::<String>()
    )
}

/// What Docker creates for the pause container of a sandbox.
pub fn sandbox_body(
    config: &PodSandboxConfig,
    node: &str,
    pause_image: &str,
    network: &str,
) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = config.labels.clone().into_iter().collect();
    labels.insert(POD_UID_LABEL.into(), config.metadata.uid.clone());
    labels.insert(POD_NAME_LABEL.into(), config.metadata.name.clone());
    labels.insert(POD_NAMESPACE_LABEL.into(), config.metadata.namespace.clone());
    labels.insert(NODE_LABEL.into(), node.into());
    labels.insert(TYPE_LABEL.into(), SANDBOX.into());
    labels.insert(ATTEMPT_LABEL.into(), config.metadata.attempt.to_string());
    ContainerCreateBody {
        image: Some(pause_image.into()),
        // Docker refuses a hostname for a container on the host's network.
        hostname: (!config.host_network).then(|| config.hostname.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(if config.host_network { "host".into() } else { network.into() }),
            // The pod's containers share the sandbox's IPC namespace.
            ipc_mode: Some("shareable".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What Docker creates for an app container in sandbox `sandbox_id`.
pub fn container_body(
    config: &ContainerConfig,
    sandbox_id: &str,
    sandbox: &PodSandboxConfig,
    node: &str,
) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = config.labels.clone().into_iter().collect();
    labels.insert(POD_UID_LABEL.into(), sandbox.metadata.uid.clone());
    labels.insert(POD_NAME_LABEL.into(), sandbox.metadata.name.clone());
    labels.insert(POD_NAMESPACE_LABEL.into(), sandbox.metadata.namespace.clone());
    labels.insert(CONTAINER_NAME_LABEL.into(), config.name.clone());
    labels.insert(NODE_LABEL.into(), node.into());
    labels.insert(TYPE_LABEL.into(), CONTAINER.into());
    labels.insert(SANDBOX_ID_LABEL.into(), sandbox_id.into());
    labels.insert(ATTEMPT_LABEL.into(), config.attempt.to_string());
    labels.insert(IMAGE_LABEL.into(), config.image.clone());
    let namespace = format!("container:{sandbox_id}");
    ContainerCreateBody {
        image: Some(config.image.clone()),
        // Kubernetes' command replaces the image's entrypoint, args its cmd (an entrypoint set
        // here also drops the image's cmd, as upstream does).
        entrypoint: (!config.command.is_empty()).then(|| config.command.clone()),
        cmd: (!config.args.is_empty()).then(|| config.args.clone()),
        env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: config.working_dir.clone().filter(|d| !d.is_empty()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(namespace.clone()),
            ipc_mode: Some(namespace),
            mounts: Some(config.mounts.iter().map(docker_mount).collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn docker_mount(mount: &Mount) -> DockerMount {
    DockerMount {
        target: Some(mount.container_path.clone()),
        source: Some(mount.host_path.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(mount.read_only),
        ..Default::default()
    }
}

/// A container's status from Docker's view of it.
pub fn container_status(inspect: &ContainerInspectResponse) -> ContainerStatus {
    let labels = labels_of(inspect);
    let state = inspect.state.clone().unwrap_or_default();
    let kind = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerState::Running,
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            ContainerState::Exited
        }
        _ => ContainerState::Unknown,
    };
    let exit_code = state.exit_code.map_or(0, |c| i32::try_from(c).unwrap_or(-1));
    let reason = match kind {
        ContainerState::Exited if state.oom_killed == Some(true) => "OOMKilled",
        ContainerState::Exited if exit_code == 0 => "Completed",
        ContainerState::Exited => "Error",
        _ => "",
    };
    ContainerStatus {
        id: inspect.id.clone().unwrap_or_default(),
        pod_sandbox_id: labels.get(SANDBOX_ID_LABEL).cloned().unwrap_or_default(),
        name: labels.get(CONTAINER_NAME_LABEL).cloned().unwrap_or_default(),
        attempt: attempt_of(&labels),
        image: labels
            .get(IMAGE_LABEL)
            .cloned()
            .or_else(|| inspect.config.as_ref().and_then(|c| c.image.clone()))
            .unwrap_or_default(),
        image_ref: inspect.image.clone().unwrap_or_default(),
        state: kind,
        created_at: inspect
            .created
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        started_at: state.started_at.as_deref().and_then(parse_time),
        finished_at: state.finished_at.as_deref().and_then(parse_time),
        exit_code,
        reason: reason.into(),
        message: state.error.unwrap_or_default(),
        labels,
    }
}

/// The container change a Docker event stands for, if any.
fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    let kind = match message.action.as_deref()? {
        "create" => ContainerEventKind::Created,
        "start" => ContainerEventKind::Started,
        "die" => ContainerEventKind::Stopped,
        "destroy" => ContainerEventKind::Deleted,
        _ => return None,
    };
    let actor = message.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    let pod = metadata_of(|k| attributes.get(k).cloned());
    if pod.name.is_empty() {
        return None;
    }
    Some(ContainerEvent { container_id: actor.id.unwrap_or_default(), kind, pod })
}

/// `image` with `:latest` when it names neither a tag nor a digest (an untagged pull would
/// fetch every tag).
pub fn pull_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let version = self.docker.version().await.map_err(runtime_error)?;
        Ok(RuntimeVersion {
            runtime_name: "docker".into(),
            runtime_version: version.version.unwrap_or_default(),
        })
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let mut applied = self.network_cidr.lock().await;
        if applied.as_deref() == Some(pod_cidr) {
            return Ok(());
        }
        self.ensure_network(pod_cidr).await?;
        *applied = Some(pod_cidr.to_owned());
        Ok(())
    }

    fn needs_assigned_pod_cidr(&self) -> bool {
        true
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        if !config.host_network && self.network_cidr.lock().await.is_none() {
            return Err(RuntimeError::Runtime("the node's pod network is not set up yet".into()));
        }
        self.ensure_image(&self.pause_image).await?;
        let body = sandbox_body(config, &self.node, &self.pause_image, &self.network_name());
        let name = sandbox_name(&config.metadata);
        // A sandbox of the same attempt left over from a crash is replaced.
        self.remove(&name).await?;
        let options = CreateContainerOptions { name: Some(name), ..Default::default() };
        let created =
            self.docker.create_container(Some(options), body).await.map_err(runtime_error)?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self.remove(&created.id).await;
            return Err(runtime_error(e));
        }
        Ok(created.id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let selector = BTreeMap::from([(SANDBOX_ID_LABEL.to_owned(), id.to_owned())]);
        for container in self.list_ids(CONTAINER, &selector).await? {
            match self.stop(&container, Duration::ZERO).await {
                Ok(()) | Err(RuntimeError::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match self.stop(id, Duration::ZERO).await {
            Ok(()) | Err(RuntimeError::ContainerNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let selector = BTreeMap::from([(SANDBOX_ID_LABEL.to_owned(), id.to_owned())]);
        for container in self.list_ids(CONTAINER, &selector).await? {
            self.remove(&container).await?;
        }
        self.remove(id).await
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| not_found_or(e, || RuntimeError::SandboxNotFound(id.into())))?;
        Ok(self.sandbox_status(inspect))
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandboxStatus>> {
        let mut sandboxes = Vec::new();
        for id in self.list_ids(SANDBOX, &filter.label_selector).await? {
            match self.pod_sandbox_status(&id).await {
                Ok(status) => sandboxes.push(status),
                // Removed between the list and the look.
                Err(RuntimeError::SandboxNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sandboxes)
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let body = container_body(config, pod_sandbox_id, sandbox_config, &self.node);
        let name = container_name(config, &sandbox_config.metadata, pod_sandbox_id);
        self.remove(&name).await?;
        let options = CreateContainerOptions { name: Some(name), ..Default::default() };
        let created =
            self.docker.create_container(Some(options), body).await.map_err(runtime_error)?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| not_found_or(e, || RuntimeError::ContainerNotFound(id.into())))
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.stop(id, timeout).await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        let mut selector = filter.label_selector.clone();
        if let Some(sandbox) = &filter.pod_sandbox_id {
            selector.insert(SANDBOX_ID_LABEL.into(), sandbox.clone());
        }
        let mut containers = Vec::new();
        for id in self.list_ids(CONTAINER, &selector).await? {
            match self.inspect(&id).await {
                Ok(inspect) => containers.push(container_status(&inspect)),
                Err(RuntimeError::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(containers)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        Ok(container_status(&self.inspect(id).await?))
    }

    fn container_events(&self) -> BoxStream<'static, ContainerEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let docker = self.docker.clone();
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), vec![format!("{NODE_LABEL}={}", self.node)]),
        ]);
        tokio::spawn(async move {
            // The stream ends when the daemon restarts: follow it again until nobody listens.
            while !tx.is_closed() {
                let options =
                    EventsOptions { filters: Some(filters.clone()), ..Default::default() };
                let mut events = docker.events(Some(options));
                while let Some(event) = events.next().await {
                    match event {
                        Ok(message) => {
                            if let Some(event) = container_event(message)
                                && tx.send(event).is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("Docker event stream: {e}");
                            break;
                        }
                    }
                }
                tokio::time::sleep(EVENT_RECONNECT).await;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed()
    }
}

#[async_trait]
impl ImageService for DockerRuntime {
    async fn pull_image(&self, image: &str) -> Result<String> {
        let reference = pull_reference(image);
        let options =
            CreateImageOptions { from_image: Some(reference.clone()), ..Default::default() };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            let info = item.map_err(runtime_error)?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_default();
                return Err(RuntimeError::Runtime(format!("pulling {reference}: {message}")));
            }
        }
        match self.image_status(&reference).await? {
            Some(found) => Ok(found.id),
            None => Err(RuntimeError::ImageNotFound(reference)),
        }
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let images = self
            .docker
            .list_images(Some(ListImagesOptions::default()))
            .await
            .map_err(runtime_error)?;
        Ok(images
            .into_iter()
            .map(|i| Image {
                id: i.id,
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                size: u64::try_from(i.size).unwrap_or(0),
            })
            .collect())
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        match self.docker.inspect_image(image).await {
            Ok(found) => Ok(Some(Image {
                id: found.id.unwrap_or_default(),
                repo_tags: found.repo_tags.unwrap_or_default(),
                repo_digests: found.repo_digests.unwrap_or_default(),
                size: found.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            })),
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(runtime_error(e)),
        }
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        match self.docker.remove_image(image, None::<RemoveImageOptions>, None).await {
            Ok(_) => Ok(()),
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }
}

#[cfg(test)]
mod tests;
