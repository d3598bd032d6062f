//! The pod worker: drives one pod's sandbox and containers toward its spec through the runtime
//! (start, restart with back-off, stop on deletion honouring the grace period) and generates
//! the pod's status from what the runtime then holds.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};

use crate::environment;
use crate::pod_files::{PodFiles, PreparedPod};
use crate::pod_status::{self, Observed, Waiting};
use crate::runtime::simulated::CONTAINER_TYPE_LABEL;
use crate::runtime::{
    CONTAINER_NAME_LABEL, ContainerConfig, ContainerFilter, ContainerRuntime, ContainerState,
    ContainerStatus, ImageService, Mount, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL,
    PodSandboxConfig, PodSandboxFilter, PodSandboxMetadata, PodSandboxState, PodSandboxStatus,
    RuntimeError,
};

/// Upstream's crash-loop back-off: 10 s, doubling, at most 5 minutes.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const DEFAULT_GRACE_PERIOD: i64 = 30;
/// How soon a failed image pull is retried.
const IMAGE_PULL_RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("pod {0} has no uid")]
    NoUid(String),
}

/// What one sync of a pod came to.
#[derive(Debug)]
pub struct SyncResult {
    pub status: PodStatus,
    /// The pod is being deleted and nothing of it runs any more: the API object may go.
    pub ready_to_delete: bool,
    /// When the pod needs another look even if nothing changes (a back-off ending).
    pub requeue_after: Option<Duration>,
}

/// Runs the pods of one node.
pub struct PodWorker {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub images: Arc<dyn ImageService>,
    /// The node's IP: hostIP of every pod, podIP of host-network pods.
    pub host_ip: IpAddr,
    /// The runtime's name, the scheme of reported container IDs.
    pub runtime_name: String,
    /// Volumes, API-sourced environment and tokens: for runtimes whose containers read them
    /// (Docker), not for simulated ones.
    pub files: Option<Arc<PodFiles>>,
}

fn uid_selector(uid: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(POD_UID_LABEL.to_owned(), uid.to_owned())])
}

/// The back-off before restart number `restarts + 1` (the first restart is immediate).
pub fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    BACKOFF_INITIAL.saturating_mul(1 << (restarts - 1).min(16)).min(BACKOFF_MAX)
}

/// Whether a container that exited with `exit_code` starts again under `policy`.
fn restarts(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

impl PodWorker {
    /// One level-triggered pass over `pod`: act on the runtime, then report.
    pub async fn sync(&self, pod: &Pod) -> Result<SyncResult, SyncError> {
        let uid = pod.metadata.uid.clone().ok_or_else(|| SyncError::NoUid(pod_name(pod)))?;
        let mut sandboxes = self
            .runtime
            .list_pod_sandboxes(&PodSandboxFilter { label_selector: uid_selector(&uid) })
            .await?;
        sandboxes.sort_by_key(|s| (s.metadata.attempt, s.created_at));
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let ended = pod_status::is_terminal(pod.status.as_ref().and_then(|s| s.phase.as_deref()));
        if deleting || ended {
            self.kill_pod(pod, &sandboxes).await?;
            let latest = sandboxes.last();
            let containers = match latest {
                Some(sandbox) => self.containers_in(&sandbox.id).await?,
                None => Vec::new(),
            };
            let sandbox = match latest {
                Some(s) => Some(self.runtime.pod_sandbox_status(&s.id).await?),
                None => None,
            };
            let status = self.status(pod, sandbox.as_ref(), &containers, &HashMap::new(), true);
            return Ok(SyncResult { status, ready_to_delete: deleting, requeue_after: None });
        }

        let sandbox = match sandboxes.last().filter(|s| s.state == PodSandboxState::Ready) {
            Some(sandbox) => sandbox.clone(),
            None => {
                // A sandbox that died took its containers with it: start over in a new one.
                self.kill_pod(pod, &sandboxes).await?;
                let attempt = sandboxes.last().map_or(0, |s| s.metadata.attempt + 1);
                let id = self.runtime.run_pod_sandbox(&sandbox_config(pod, &uid, attempt)).await?;
                self.runtime.pod_sandbox_status(&id).await?
            }
        };
        let config = sandbox_config(pod, &uid, sandbox.metadata.attempt);
        let containers = self.containers_in(&sandbox.id).await?;
        let mut pass = Pass { waiting: HashMap::new(), requeue_after: None };
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let prepared = match &self.files {
            Some(files) => match files.prepare(pod, sandbox.ip, self.host_ip).await {
                Ok((prepared, refresh)) => {
                    if let Some(refresh) = refresh {
                        pass.requeue(refresh);
                    }
                    Ok(Some(prepared))
                }
                Err(message) => {
                    pass.requeue(IMAGE_PULL_RETRY);
                    Err(message)
                }
            },
            None => Ok(None),
        };
        let target =
            Target { pod, sandbox: &sandbox, config: &config, prepared: prepared.as_ref() };

        let mut initialized = true;
        for container in spec.init_containers.iter().flatten() {
            let sidecar = container.restart_policy.as_deref() == Some("Always");
            let latest = latest(&containers, &container.name);
            let done = match latest {
                Some(c) if c.state == ContainerState::Running => sidecar,
                Some(c) if c.state == ContainerState::Exited && c.exit_code == 0 && !sidecar => {
                    true
                }
                Some(c) if c.state == ContainerState::Exited => {
                    if sidecar || restarts(policy, c.exit_code) {
                        let kind = if sidecar { "sidecar" } else { "init" };
                        self.restart(&target, container, c, kind, &mut pass).await?;
                    }
                    false
                }
                _ => {
                    let kind = if sidecar { "sidecar" } else { "init" };
                    match self.start(&target, container, latest, 0, kind, &mut pass).await? {
                        Some(_) if sidecar => true,
                        // An init container that is already done lets the next one start now.
                        Some(id) => {
                            let status = self.runtime.container_status(&id).await?;
                            status.state == ContainerState::Exited && status.exit_code == 0
                        }
                        None => false,
                    }
                }
            };
            if !done {
                initialized = false;
                break;
            }
        }
        if initialized {
            for container in &spec.containers {
                match latest(&containers, &container.name) {
                    Some(c) if c.state == ContainerState::Running => {}
                    Some(c) if c.state == ContainerState::Exited => {
                        if restarts(policy, c.exit_code) {
                            self.restart(&target, container, c, "", &mut pass).await?;
                        }
                    }
                    latest => {
                        self.start(&target, container, latest, 0, "", &mut pass).await?;
                    }
                }
            }
        }

        let containers = self.containers_in(&sandbox.id).await?;
        let status = self.status(pod, Some(&sandbox), &containers, &pass.waiting, false);
        if pod_status::is_terminal(status.phase.as_deref()) {
            // Nothing will run here again; the network goes, the reported IP stays.
            self.runtime.stop_pod_sandbox(&sandbox.id).await?;
        }
        Ok(SyncResult { status, ready_to_delete: false, requeue_after: pass.requeue_after })
    }

    fn status(
        &self,
        pod: &Pod,
        sandbox: Option<&PodSandboxStatus>,
        containers: &[ContainerStatus],
        waiting: &HashMap<String, Waiting>,
        terminating: bool,
    ) -> PodStatus {
        pod_status::generate(
            pod,
            &Observed {
                sandbox,
                containers,
                waiting,
                runtime_name: &self.runtime_name,
                host_ip: self.host_ip,
                terminating,
                now: SystemTime::now(),
            },
        )
    }

    async fn containers_in(&self, sandbox: &str) -> Result<Vec<ContainerStatus>, SyncError> {
        let filter = ContainerFilter { pod_sandbox_id: Some(sandbox.into()), ..Default::default() };
        let mut containers = self.runtime.list_containers(&filter).await?;
        if let Some(files) = &self.files {
            // What an exited container wrote to its terminationMessagePath.
            for c in containers.iter_mut().filter(|c| c.state == ContainerState::Exited) {
                let uid = c.labels.get(POD_UID_LABEL).cloned().unwrap_or_default();
                let message = files.dirs.termination_message(&uid, &c.name, c.attempt);
                if !message.is_empty() {
                    c.message = message;
                }
            }
        }
        Ok(containers)
    }

    /// Stops every running container of the pod within its grace period, then its sandboxes.
    async fn kill_pod(&self, pod: &Pod, sandboxes: &[PodSandboxStatus]) -> Result<(), SyncError> {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(DEFAULT_GRACE_PERIOD)
            .max(0);
        let timeout = Duration::from_secs(grace as u64);
        for sandbox in sandboxes {
            let running: Vec<ContainerStatus> = self
                .containers_in(&sandbox.id)
                .await?
                .into_iter()
                .filter(|c| c.state == ContainerState::Running)
                .collect();
            // Containers share one grace period, as upstream: stop them all at once.
            let stops = running.iter().map(|c| self.runtime.stop_container(&c.id, timeout));
            for result in futures::future::join_all(stops).await {
                match result {
                    Ok(()) | Err(RuntimeError::ContainerNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if sandbox.state == PodSandboxState::Ready {
                self.runtime.stop_pod_sandbox(&sandbox.id).await?;
            }
        }
        Ok(())
    }

    /// Removes everything the runtime holds for pod `uid`; called once the API object is gone.
    pub async fn remove_pod(&self, uid: &str) -> Result<(), SyncError> {
        let filter = PodSandboxFilter { label_selector: uid_selector(uid) };
        for sandbox in self.runtime.list_pod_sandboxes(&filter).await? {
            if sandbox.state == PodSandboxState::Ready {
                self.runtime.stop_pod_sandbox(&sandbox.id).await?;
            }
            for container in self.containers_in(&sandbox.id).await? {
                self.runtime.remove_container(&container.id).await?;
            }
            self.runtime.remove_pod_sandbox(&sandbox.id).await?;
        }
        if let Some(files) = &self.files {
            files.remove_pod(uid);
        }
        Ok(())
    }

    /// Restarts an exited container once its back-off has passed; until then it waits in
    /// CrashLoopBackOff.
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        &self,
        target: &Target<'_>,
        container: &Container,
        exited: &ContainerStatus,
        kind: &str,
        pass: &mut Pass,
    ) -> Result<(), SyncError> {
        let delay = backoff(exited.attempt);
        let since = exited.finished_at.unwrap_or(exited.created_at);
        let wait = (since + delay).duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            let pod = target.pod;
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            pass.waiting.insert(
                container.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {}s restarting failed container={} pod={}_{}({uid})",
                        delay.as_secs(),
                        container.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                    ),
                },
            );
            pass.requeue(wait);
            return Ok(());
        }
        let started = self.start(target, container, None, exited.attempt + 1, kind, pass).await?;
        if started.is_some() {
            // Keep the exited attempt for lastState; older ones go.
            for old in self.containers_in(&target.sandbox.id).await? {
                if old.name == container.name && old.attempt < exited.attempt {
                    self.runtime.remove_container(&old.id).await?;
                }
            }
        }
        Ok(())
    }

    /// Pulls the image as the pull policy says and creates and starts the container (or starts
    /// a created one); a failure leaves the container waiting with the reason. Returns the
    /// started container's id.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        target: &Target<'_>,
        container: &Container,
        created: Option<&ContainerStatus>,
        attempt: u32,
        kind: &str,
        pass: &mut Pass,
    ) -> Result<Option<String>, SyncError> {
        let name = &container.name;
        let id = match created.filter(|c| c.state == ContainerState::Created) {
            Some(c) => c.id.clone(),
            None => {
                let image = container.image.clone().unwrap_or_default();
                if let Err(waiting) = self.ensure_image(container, &image).await {
                    pass.waiting.insert(name.clone(), waiting);
                    pass.requeue(IMAGE_PULL_RETRY);
                    return Ok(None);
                }
                let config = target.config;
                let prepared = match target.prepared {
                    Ok(prepared) => prepared.as_ref(),
                    Err(message) => {
                        // Upstream's container waits in ContainerCreating until its volumes mount.
                        let reason = "ContainerCreating".into();
                        let waiting = Waiting { reason, message: message.clone() };
                        pass.waiting.insert(name.clone(), waiting);
                        return Ok(None);
                    }
                };
                let mut container_config =
                    container_config(container, attempt, kind, &config.metadata);
                if let Some(prepared) = prepared
                    && let Err(message) =
                        self.add_files(target.pod, container, prepared, &mut container_config)
                {
                    pass.waiting.insert(
                        name.clone(),
                        Waiting { reason: "CreateContainerConfigError".into(), message },
                    );
                    pass.requeue(IMAGE_PULL_RETRY);
                    return Ok(None);
                }
                let sandbox = &target.sandbox.id;
                match self.runtime.create_container(sandbox, &container_config, config).await {
                    Ok(id) => id,
                    Err(e) => {
                        pass.fail(name, "CreateContainerError", e);
                        return Ok(None);
                    }
                }
            }
        };
        if let Err(e) = self.runtime.start_container(&id).await {
            pass.fail(name, "RunContainerError", e);
            return Ok(None);
        }
        Ok(Some(id))
    }

    /// The environment, volume mounts and termination-message file of a container of a
    /// prepared pod.
    fn add_files(
        &self,
        pod: &Pod,
        container: &Container,
        prepared: &PreparedPod,
        config: &mut ContainerConfig,
    ) -> Result<(), String> {
        let Some(files) = &self.files else { return Ok(()) };
        config.env = environment::container_env(pod, container, &prepared.inputs)?;
        config.command =
            config.command.iter().map(|c| environment::expand(c, &config.env)).collect();
        config.args = config.args.iter().map(|a| environment::expand(a, &config.env)).collect();
        config.mounts = mounts(container, prepared)?;
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let log = files.dirs.termination_log(uid, &container.name, config.attempt);
        create_termination_log(&log)
            .map_err(|e| format!("creating the termination log {}: {e}", log.display()))?;
        let path = container.termination_message_path.clone();
        config.mounts.push(Mount {
            host_path: log,
            container_path: path.unwrap_or_else(|| "/dev/termination-log".into()),
            read_only: false,
        });
        Ok(())
    }

    async fn ensure_image(&self, container: &Container, image: &str) -> Result<(), Waiting> {
        let policy = container.image_pull_policy.clone().unwrap_or_else(|| {
            let tag = image.rsplit('/').next().unwrap_or(image);
            if tag.contains(':') && !tag.ends_with(":latest") || image.contains('@') {
                "IfNotPresent".into()
            } else {
                "Always".into()
            }
        });
        let present = match policy.as_str() {
            "Always" => false,
            _ => self.images.image_status(image).await.ok().flatten().is_some(),
        };
        if present {
            return Ok(());
        }
        if policy == "Never" {
            return Err(Waiting {
                reason: "ErrImageNeverPull".into(),
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            });
        }
        match self.images.pull_image(image).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Waiting { reason: "ErrImagePull".into(), message: e.to_string() }),
        }
    }
}

/// Where one sync starts containers.
struct Target<'a> {
    pod: &'a Pod,
    sandbox: &'a PodSandboxStatus,
    config: &'a PodSandboxConfig,
    /// The pod's volumes and environment sources, when the runtime runs real containers, or
    /// why they are not ready (containers already running go on; new ones wait).
    prepared: Result<&'a Option<PreparedPod>, &'a String>,
}

/// The container's volume mounts as host paths (a subPath below its volume).
fn mounts(container: &Container, prepared: &PreparedPod) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some((host, read_only)) = prepared.volumes.get(&mount.name) else {
            return Err(format!("volume {:?} is not available on this node", mount.name));
        };
        let mut host_path = host.clone();
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let below = std::path::Path::new(sub)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !below {
                return Err(format!("subPath {sub:?} must stay below its volume"));
            }
            host_path = host_path.join(sub);
        }
        mounts.push(Mount {
            host_path,
            container_path: mount.mount_path.clone(),
            read_only: *read_only || mount.read_only == Some(true),
        });
    }
    Ok(mounts)
}

/// An empty, world-writable file (the container may run as any user) for one attempt.
fn create_termination_log(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
}

/// What one sync learned on the way: why containers wait, and when to look again.
struct Pass {
    waiting: HashMap<String, Waiting>,
    requeue_after: Option<Duration>,
}

impl Pass {
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }

    fn fail(&mut self, container: &str, reason: &str, error: RuntimeError) {
        self.waiting.insert(
            container.into(),
            Waiting { reason: reason.into(), message: error.to_string() },
        );
        self.requeue(BACKOFF_INITIAL);
    }
}

fn latest<'a>(containers: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    containers.iter().filter(|c| c.name == name).max_by_key(|c| (c.attempt, c.created_at))
}

pub fn sandbox_config(pod: &Pod, uid: &str, attempt: u32) -> PodSandboxConfig {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let mut labels = pod.metadata.labels.clone().unwrap_or_default();
    labels.insert(POD_UID_LABEL.into(), uid.into());
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_NAMESPACE_LABEL.into(), namespace.clone());
    PodSandboxConfig {
        hostname: spec.and_then(|s| s.hostname.clone()).unwrap_or_else(|| name.clone()),
        metadata: PodSandboxMetadata { name, namespace, uid: uid.into(), attempt },
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        labels,
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
    }
}

fn container_config(
    container: &Container,
    attempt: u32,
    kind: &str,
    pod: &PodSandboxMetadata,
) -> ContainerConfig {
    let mut labels = BTreeMap::from([
        (POD_UID_LABEL.to_owned(), pod.uid.clone()),
        (POD_NAME_LABEL.to_owned(), pod.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), pod.namespace.clone()),
        (CONTAINER_NAME_LABEL.to_owned(), container.name.clone()),
    ]);
    if !kind.is_empty() {
        labels.insert(CONTAINER_TYPE_LABEL.into(), kind.into());
    }
    ContainerConfig {
        name: container.name.clone(),
        attempt,
        image: container.image.clone().unwrap_or_default(),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        env: container
            .env
            .iter()
            .flatten()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect(),
        working_dir: container.working_dir.clone(),
        mounts: Vec::new(),
        labels,
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
