//! Admission: the plugins that may change or refuse an object after decoding and before it is
//! stored, in upstream's order. Each plugin is a small module with one `admit` function.

mod limit_ranger;
pub mod node_restriction;
mod priority;
mod resource_quota;
mod service_account;
mod toleration_seconds;

use std::sync::Arc;

use capstan_api::Resource;
use serde_json::Value;

use crate::ApiServer;
use crate::status::ApiResult;

/// Settings of the admission plugins that have flags.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionConfig {
    /// `--default-not-ready-toleration-seconds`.
    pub not_ready_toleration_seconds: i64,
    /// `--default-unreachable-toleration-seconds`.
    pub unreachable_toleration_seconds: i64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self { not_ready_toleration_seconds: 300, unreachable_toleration_seconds: 300 }
    }
}

/// Admits a new object (NamespaceLifecycle runs earlier, in the create handler) and validates
/// it after the plugins that change it.
pub async fn admit_create(
    server: &Arc<ApiServer>,
    resource: &Resource,
    object: &mut Value,
) -> ApiResult<()> {
    admit_in_order(server, resource, object).await.map_err(|mut e| {
        // Upstream names the refused object: `pods "web" is forbidden: …`.
        if e.code == axum::http::StatusCode::FORBIDDEN {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let what = crate::status::qualified(resource.group, resource.plural);
            e.message = format!("{what} \"{name}\" is forbidden: {}", e.message);
        }
        e
    })
}

async fn admit_in_order(
    server: &Arc<ApiServer>,
    resource: &Resource,
    object: &mut Value,
) -> ApiResult<()> {
    if resource.group.is_empty() && resource.kind == "Pod" {
        limit_ranger::admit(server, object)?;
        service_account::admit(server, object).await?;
        priority::admit(server, object).await?;
        toleration_seconds::admit(&server.config.admission, object);
    }
    if resource.group == "scheduling.k8s.io" && resource.kind == "PriorityClass" {
        priority::admit_class(server, object).await?;
    }
    // Upstream validates between mutating and validating admission, so an invalid object is
    // refused before the quota is charged for it.
    crate::validation::check_create(resource, object)?;
    if resource.namespaced {
        resource_quota::admit(server, resource, object).await?;
    }
    Ok(())
}
