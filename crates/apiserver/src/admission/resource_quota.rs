//! ResourceQuota admission: a new object is refused (403) when it would take its namespace
//! past any quota's hard limit, or when a quota tracks compute the pod does not declare.

use std::sync::Arc;

use capstan_api::Resource;
use capstan_api::quantity::{format_millis, parse_millis};
use capstan_api::quota::{self, Usage};
use serde_json::Value;

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

/// The namespace's current usage of the keys in `keys`, from the (caught-up) cache.
fn namespace_usage(server: &Arc<ApiServer>, namespace: &str) -> ApiResult<Usage> {
    let mut usage = Usage::new();
    let mut seen = std::collections::HashSet::new();
    for resource in capstan_api::RESOURCES.iter().filter(|r| r.namespaced) {
        // Resources sharing storage are counted once.
        if !seen.insert(resource.storage_plural.unwrap_or(resource.plural))
            || resource.storage_plural.is_some()
        {
            continue;
        }
        let cache = server.cache_for(resource)?;
        for object in cache.range(&resource.namespace_prefix(namespace), None) {
            quota::add(&mut usage, &quota::usage_of(resource, &object.value()));
        }
    }
    Ok(usage)
}

pub async fn admit(server: &Arc<ApiServer>, resource: &Resource, object: &Value) -> ApiResult<()> {
    let Some(namespace) = object["metadata"]["namespace"].as_str() else { return Ok(()) };
    let quotas_resource = capstan_api::registry::find("", "v1", "resourcequotas").expect("served");
    let quotas: Vec<Value> = server
        .cache_for(quotas_resource)?
        .range(&quotas_resource.namespace_prefix(namespace), None)
        .iter()
        .map(|q| q.value())
        .collect();
    if quotas.is_empty() {
        return Ok(());
    }
    server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
    let requested = quota::usage_of(resource, object);
    let used = namespace_usage(server, namespace)?;
    for q in &quotas {
        let name = q["metadata"]["name"].as_str().unwrap_or_default();
        let Some(hard) = q["spec"]["hard"].as_object() else { continue };
        let mut over = Vec::new();
        for (key, limit) in hard {
            let Some(limit) = limit.as_str().and_then(parse_millis) else { continue };
            // A pod under a compute quota must say what it needs.
            if resource.kind == "Pod"
                && (key.starts_with("requests.")
                    || key.starts_with("limits.")
                    || key == "cpu"
                    || key == "memory")
                && !requested.contains_key(key)
            {
                return Err(ApiError::forbidden(format!(
                    "failed quota: {name}: must specify {key}"
                )));
            }
            let Some(ask) = requested.get(key) else { continue };
            let now = used.get(key).copied().unwrap_or(0);
            if now + ask > limit {
                over.push((key.clone(), *ask, now, limit));
            }
        }
        if !over.is_empty() {
            let list = |pick: fn(&(String, i128, i128, i128)) -> i128| {
                over.iter()
                    .map(|o| format!("{}={}", o.0, format_millis(pick(o))))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(ApiError::forbidden(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                list(|o| o.1),
                list(|o| o.2),
                list(|o| o.3)
            )));
        }
    }
    Ok(())
}
