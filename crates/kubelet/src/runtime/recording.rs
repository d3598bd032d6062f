//! A runtime for unit tests: behaves like the simulated runtime and records every call, so a
//! test can assert e.g. "the kubelet stopped container X with a 30 s grace period".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::simulated::SimulatedRuntime;
use super::{
    ContainerConfig, ContainerEvent, ContainerFilter, ContainerRuntime, ContainerStatus, Image,
    ImageService, PodSandboxConfig, PodSandboxFilter, PodSandboxStatus, Result, RuntimeVersion,
};

/// One call the kubelet made; reads skip recording (lists, statuses, version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    UpdateRuntimeConfig { pod_cidr: String },
    RunPodSandbox { pod: String },
    StopPodSandbox { id: String },
    RemovePodSandbox { id: String },
    CreateContainer { sandbox: String, name: String, attempt: u32 },
    StartContainer { id: String },
    StopContainer { id: String, timeout: Duration },
    RemoveContainer { id: String },
    PullImage { image: String },
    RemoveImage { image: String },
}

#[derive(Clone, Default)]
pub struct RecordingRuntime {
    inner: SimulatedRuntime,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl RecordingRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
    }
}

#[async_trait]
impl ContainerRuntime for RecordingRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        self.inner.version().await
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        self.record(Call::UpdateRuntimeConfig { pod_cidr: pod_cidr.into() });
        self.inner.update_runtime_config(pod_cidr).await
    }

    fn needs_assigned_pod_cidr(&self) -> bool {
        self.inner.needs_assigned_pod_cidr()
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let pod = format!("{}/{}", config.metadata.namespace, config.metadata.name);
        self.record(Call::RunPodSandbox { pod });
        self.inner.run_pod_sandbox(config).await
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.record(Call::StopPodSandbox { id: id.into() });
        self.inner.stop_pod_sandbox(id).await
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.record(Call::RemovePodSandbox { id: id.into() });
        self.inner.remove_pod_sandbox(id).await
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        self.inner.pod_sandbox_status(id).await
    }

    async fn list_pod_sandboxes(&self, filter: &PodSandboxFilter) -> Result<Vec<PodSandboxStatus>> {
        self.inner.list_pod_sandboxes(filter).await
    }

    async fn create_container(
        &self,
        pod_sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        self.record(Call::CreateContainer {
            sandbox: pod_sandbox_id.into(),
            name: config.name.clone(),
            attempt: config.attempt,
        });
        self.inner.create_container(pod_sandbox_id, config, sandbox_config).await
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.record(Call::StartContainer { id: id.into() });
        self.inner.start_container(id).await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.record(Call::StopContainer { id: id.into(), timeout });
        self.inner.stop_container(id, timeout).await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.record(Call::RemoveContainer { id: id.into() });
        self.inner.remove_container(id).await
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        self.inner.list_containers(filter).await
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        self.inner.container_status(id).await
    }

    fn container_events(&self) -> BoxStream<'static, ContainerEvent> {
        self.inner.container_events()
    }
}

#[async_trait]
impl ImageService for RecordingRuntime {
    async fn pull_image(&self, image: &str) -> Result<String> {
        self.record(Call::PullImage { image: image.into() });
        self.inner.pull_image(image).await
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        self.inner.list_images().await
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        self.inner.image_status(image).await
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.record(Call::RemoveImage { image: image.into() });
        self.inner.remove_image(image).await
    }
}
