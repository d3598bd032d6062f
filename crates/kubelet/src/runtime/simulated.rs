//! A runtime that keeps sandboxes, containers and images in memory (kwok-style simulated
//! nodes): images "pull" at once, containers "run" at once and end only by the rules below.
//!
//! When simulated containers end:
//! - A container whose pod has the annotation `capstan.io/simulated-exit-code.<container>`
//!   exits with that code; a non-init container falls back to the pod-wide
//!   `capstan.io/simulated-exit-code`. It exits `capstan.io/simulated-run-duration` (e.g. `5s`,
//!   `250ms`; default `0s`) after it started.
//! - Otherwise an init container exits 0 as soon as it starts, and every other container runs
//!   until it is stopped.
//! - A stopped container exits 0 (it shuts down cleanly on SIGTERM, within any grace period).
//!
//! Pod IPs come from the pod CIDR given by `update_runtime_config` (default 10.88.0.0/16),
//! skipping the network address, the first host (the bridge) and the broadcast address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use super::{
    CONTAINER_NAME_LABEL, ContainerConfig, ContainerEvent, ContainerEventKind, ContainerFilter,
    ContainerRuntime, ContainerState, ContainerStatus, Image, ImageService, PodSandboxConfig,
    PodSandboxFilter, PodSandboxState, PodSandboxStatus, Result, RuntimeError, RuntimeVersion,
    labels_match,
};

pub const EXIT_CODE_ANNOTATION: &str = "capstan.io/simulated-exit-code";
pub const RUN_DURATION_ANNOTATION: &str = "capstan.io/simulated-run-duration";
/// The label the kubelet puts on init containers (value `init`), which end on their own.
pub const CONTAINER_TYPE_LABEL: &str = "capstan.io/container-type";

const DEFAULT_POD_CIDR: &str = "10.88.0.0/16";
const IMAGE_SIZE: u64 = 10 * 1024 * 1024;

/// The in-memory runtime for one simulated node.
#[derive(Clone)]
pub struct SimulatedRuntime {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Subscribers to container events (one per `container_events` call).
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ContainerEvent>>>,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, Container>,
    images: HashMap<String, Image>,
    pod_ips: Option<PodIps>,
}

struct Sandbox {
    status: PodSandboxStatus,
    annotations: BTreeMap<String, String>,
}

struct Container {
    status: ContainerStatus,
    /// When and how the container ends on its own once started.
    exit: Option<(Duration, i32)>,
}

impl Default for SimulatedRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl SimulatedRuntime {
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.shared.state)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps half-updated in a harmful way.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn emit(
        &self,
        container: &ContainerStatus,
        sandbox: &PodSandboxStatus,
        kind: ContainerEventKind,
    ) {
        let event = ContainerEvent {
            container_id: container.id.clone(),
            kind,
            pod: sandbox.metadata.clone(),
        };
        lock(&self.subscribers).retain(|tx| tx.send(event.clone()).is_ok());
    }

    /// Ends a running container with `exit_code` (its own exit, or a stop).
    fn finish(&self, id: &str, exit_code: i32) {
        let mut state = lock(&self.state);
        let Some(container) = state.containers.get_mut(id) else { return };
        if container.status.state != ContainerState::Running {
            return;
        }
        let status = &mut container.status;
        status.state = ContainerState::Exited;
        status.finished_at = Some(SystemTime::now());
        status.exit_code = exit_code;
        status.reason = if exit_code == 0 { "Completed" } else { "Error" }.into();
        let status = status.clone();
        if let Some(sandbox) = state.sandboxes.get(&status.pod_sandbox_id) {
            let sandbox = sandbox.status.clone();
            drop(state);
            self.emit(&status, &sandbox, ContainerEventKind::Stopped);
        }
    }
}

fn new_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// How a container with these labels in a pod with these annotations ends, per the module rules.
fn exit_rule(
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<(Duration, i32)> {
    let init = labels.get(CONTAINER_TYPE_LABEL).is_some_and(|t| t == "init");
    let own = annotations.get(&format!("{EXIT_CODE_ANNOTATION}.{name}"));
    let code = match own.or(if init { None } else { annotations.get(EXIT_CODE_ANNOTATION) }) {
        Some(code) => code.trim().parse().unwrap_or(1),
        None if init => 0,
        None => return None,
    };
    let duration = annotations
        .get(RUN_DURATION_ANNOTATION)
        .and_then(|d| parse_duration(d))
        .unwrap_or(Duration::ZERO);
    Some((duration, code))
}

/// `250ms`, `5s`, `2m`, `1h`; anything else is `None`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.saturating_mul(millis)))
}

#[async_trait]
impl ContainerRuntime for SimulatedRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion {
            runtime_name: "simulated".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let mut state = self.state();
        if state.pod_ips.as_ref().is_some_and(|ips| ips.cidr == pod_cidr) {
            return Ok(());
        }
        let mut ips = PodIps::parse(pod_cidr)?;
        // Sandboxes that already have an IP keep it.
        for sandbox in state.sandboxes.values() {
            if let Some(IpAddr::V4(ip)) = sandbox.status.ip {
                ips.used.insert(u32::from(ip));
            }
        }
        state.pod_ips = Some(ips);
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let mut state = self.state();
        let ip = if config.host_network {
            None
        } else {
            let ips = match &mut state.pod_ips {
                Some(ips) => ips,
                none => none.insert(PodIps::parse(DEFAULT_POD_CIDR)?),
            };
            Some(IpAddr::V4(ips.allocate()?))
        };
        let id = new_id();
        let status = PodSandboxStatus {
            id: id.clone(),
            metadata: config.metadata.clone(),
            state: PodSandboxState::Ready,
            created_at: SystemTime::now(),
            ip,
            labels: config.labels.clone(),
        };
        state
            .sandboxes
            .insert(id.clone(), Sandbox { status, annotations: config.annotations.clone() });
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let running: Vec<String> = {
            let state = self.state();
            if !state.sandboxes.contains_key(id) {
                return Err(RuntimeError::SandboxNotFound(id.into()));
            }
            state
                .containers
                .values()
                .filter(|c| {
                    c.status.pod_sandbox_id == id && c.status.state == ContainerState::Running
                })
                .map(|c| c.status.id.clone())
                .collect()
        };
        for container in running {
            self.shared.finish(&container, 0);
        }
        let mut state = self.state();
        let State { sandboxes, pod_ips, .. } = &mut *state;
        if let Some(sandbox) = sandboxes.get_mut(id) {
            sandbox.status.state = PodSandboxState::NotReady;
            if let (Some(IpAddr::V4(ip)), Some(ips)) = (sandbox.status.ip.take(), pod_ips) {
                ips.release(ip);
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        if !self.state().sandboxes.contains_key(id) {
            return Ok(());
        }
        self.stop_pod_sandbox(id).await?;
        let mut state = self.state();
        state.containers.retain(|_, c| c.status.pod_sandbox_id != id);
        state.sandboxes.remove(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let state = self.state();
        let sandbox =
            state.sandboxes.get(id).ok_or_else(|| RuntimeError::SandboxNotFound(id.into()))?;
        Ok(sandbox.status.clone())
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandboxStatus>> {
        Ok(self
            .state()
            .sandboxes
            .values()
            .filter(|s| labels_match(&s.status.labels, &filter.label_selector))
            .map(|s| s.status.clone())
            .collect())
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let mut state = self.state();
        let sandbox = state
            .sandboxes
            .get(pod_sandbox_id)
            .ok_or_else(|| RuntimeError::SandboxNotFound(pod_sandbox_id.into()))?;
        if sandbox.status.state != PodSandboxState::Ready {
            return Err(RuntimeError::InvalidState(pod_sandbox_id.into()));
        }
        let exit = exit_rule(&config.name, &config.labels, &sandbox.annotations);
        let image_ref = state
            .images
            .values()
            .find(|i| i.repo_tags.contains(&normalize(&config.image)) || i.id == config.image)
            .map(|i| i.id.clone())
            .ok_or_else(|| RuntimeError::ImageNotFound(config.image.clone()))?;
        let mut labels = config.labels.clone();
        labels.insert(CONTAINER_NAME_LABEL.into(), config.name.clone());
        let id = new_id();
        let status = ContainerStatus {
            id: id.clone(),
            pod_sandbox_id: pod_sandbox_id.into(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            image_ref,
            state: ContainerState::Created,
            created_at: SystemTime::now(),
            started_at: None,
            finished_at: None,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            labels,
        };
        state.containers.insert(id.clone(), Container { status, exit });
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let exit = {
            let mut state = self.state();
            let container = state
                .containers
                .get_mut(id)
                .ok_or_else(|| RuntimeError::ContainerNotFound(id.into()))?;
            if container.status.state != ContainerState::Created {
                return Err(RuntimeError::InvalidState(id.into()));
            }
            container.status.state = ContainerState::Running;
            container.status.started_at = Some(SystemTime::now());
            container.exit
        };
        if let Some((after, code)) = exit {
            if after.is_zero() {
                self.shared.finish(id, code);
            } else {
                let shared: Weak<Shared> = Arc::downgrade(&self.shared);
                let id = id.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    if let Some(shared) = shared.upgrade() {
                        shared.finish(&id, code);
                    }
                });
            }
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Duration) -> Result<()> {
        if !self.state().containers.contains_key(id) {
            return Err(RuntimeError::ContainerNotFound(id.into()));
        }
        self.shared.finish(id, 0);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let mut state = self.state();
        if state.containers.get(id).is_some_and(|c| c.status.state == ContainerState::Running) {
            return Err(RuntimeError::InvalidState(id.into()));
        }
        state.containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        Ok(self
            .state()
            .containers
            .values()
            .filter(|c| {
                filter.pod_sandbox_id.as_ref().is_none_or(|id| *id == c.status.pod_sandbox_id)
                    && labels_match(&c.status.labels, &filter.label_selector)
            })
            .map(|c| c.status.clone())
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let state = self.state();
        let container =
            state.containers.get(id).ok_or_else(|| RuntimeError::ContainerNotFound(id.into()))?;
        Ok(container.status.clone())
    }

    fn container_events(&self) -> BoxStream<'static, ContainerEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.subscribers).push(tx);
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        }))
    }
}

/// `busybox` → `busybox:latest`: the tag a reference without one means.
fn normalize(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// A stable fake digest for an image reference.
fn digest(image: &str) -> String {
    let mut hex = String::with_capacity(64);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for byte in image.bytes().chain([round]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        hex.push_str(&format!("{hash:016x}"));
    }
    format!("sha256:{hex}")
}

#[async_trait]
impl ImageService for SimulatedRuntime {
    async fn pull_image(&self, image: &str) -> Result<String> {
        let tag = normalize(image);
        let id = digest(&tag);
        self.state().images.entry(tag.clone()).or_insert_with(|| Image {
            id: id.clone(),
            repo_tags: vec![tag],
            repo_digests: Vec::new(),
            size: IMAGE_SIZE,
        });
        Ok(id)
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let mut images: Vec<Image> = self.state().images.values().cloned().collect();
        images.sort_by(|a, b| a.repo_tags.cmp(&b.repo_tags));
        Ok(images)
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        let tag = normalize(image);
        Ok(self
            .state()
            .images
            .values()
            .find(|i| i.repo_tags.contains(&tag) || i.id == image)
            .cloned())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let tag = normalize(image);
        self.state().images.retain(|_, i| !(i.repo_tags.contains(&tag) || i.id == image));
        Ok(())
    }
}

/// The IPv4 addresses of a pod CIDR and which are taken.
struct PodIps {
    cidr: String,
    first: u32,
    last: u32,
    used: HashSet<u32>,
    /// Where the next search starts, so released IPs are not reused at once.
    next: u32,
}

impl PodIps {
    fn parse(cidr: &str) -> Result<Self> {
        let invalid = |why: &str| RuntimeError::InvalidPodCidr(cidr.into(), why.into());
        let (ip, prefix) = cidr.split_once('/').ok_or_else(|| invalid("expected IP/prefix"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| invalid("not an IPv4 address"))?;
        let prefix: u32 = prefix.parse().map_err(|_| invalid("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(invalid("prefix length must be 8-30"));
        }
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(ip) & mask;
        let broadcast = network | !mask;
        Ok(Self {
            cidr: cidr.into(),
            first: network + 2,
            last: broadcast - 1,
            used: HashSet::new(),
            next: network + 2,
        })
    }

    fn allocate(&mut self) -> Result<Ipv4Addr> {
        let size = self.last - self.first + 1;
        for step in 0..size {
            let candidate = self.first + (self.next - self.first + step) % size;
            if self.used.insert(candidate) {
                self.next = if candidate == self.last { self.first } else { candidate + 1 };
                return Ok(Ipv4Addr::from(candidate));
            }
        }
        Err(RuntimeError::PodIpsExhausted(self.cidr.clone()))
    }

    fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

#[cfg(test)]
mod tests;
