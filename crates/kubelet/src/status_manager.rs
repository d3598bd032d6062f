//! Writes pod statuses the pod worker generated, only when they differ from what the API
//! holds (upstream's status manager).

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, PostParams};

/// Replaces `pod`'s status with `status` unless it already is that; a conflict (the pod
/// changed meanwhile) surfaces as an error and the pod is synced again.
pub async fn write(api: &Api<Pod>, pod: &Pod, status: PodStatus) -> Result<bool, kube::Error> {
    if pod.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let mut updated = pod.clone();
    updated.status = Some(status);
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    api.replace_status(name, &PostParams::default(), &updated).await?;
    Ok(true)
}
