//! ResourceQuota admission: a new object is refused (403) when it would take its namespace
//! past any quota's hard limit, or when a quota tracks compute the pod does not declare.

use std::sync::Arc;

use capstan_api::Resource;
use capstan_api::quantity::{format_millis, parse_millis};
use capstan_api::quota::{self, Usage};
use serde_json::Value;

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

/// The namespace's current usage of the keys in `keys`, from the (caught-up) cache and, for
/// resources it does not keep, the store.
async fn namespace_usage(server: &Arc<ApiServer>, namespace: &str) -> ApiResult<Usage> {
    let mut usage = Usage::new();
    let mut seen = std::collections::HashSet::new();
    for resource in capstan_api::RESOURCES.iter().filter(|r| r.namespaced) {
        // Resources sharing storage are counted once.
        if !seen.insert(resource.storage_plural.unwrap_or(resource.plural))
            || resource.storage_plural.is_some()
        {
            continue;
        }
        for object in server.objects_under(resource, &resource.namespace_prefix(namespace)).await? {
            quota::add(&mut usage, &quota::usage_of(resource, &object.value()));
        }
    }
    Ok(usage)
}

/// Attempts at charging the quotas before giving up when other writers keep winning the race.
const CHARGE_ATTEMPTS: usize = 16;

/// Checks `object` against every quota of its namespace and charges what it uses to their
/// `status.used`, compare-and-swap on each quota, so concurrent creates (on this server or
/// another one sharing the store) cannot together exceed a limit. The quota controller
/// recomputes usage from the objects themselves, correcting charges for writes that failed.
pub async fn admit(server: &Arc<ApiServer>, resource: &Resource, object: &Value) -> ApiResult<()> {
    let Some(namespace) = object["metadata"]["namespace"].as_str() else { return Ok(()) };
    let quotas_resource = capstan_api::registry::find("", "v1", "resourcequotas").expect("served");
    let has_quotas = !server
        .cache_for(quotas_resource)?
        .range(&quotas_resource.namespace_prefix(namespace), None)
        .is_empty();
    if !has_quotas {
        return Ok(());
    }
    let requested = quota::usage_of(resource, object);
    let mut contended = String::new();
    for _ in 0..CHARGE_ATTEMPTS {
        let request = capstan_store::ListRequest {
            prefix: quotas_resource.namespace_prefix(namespace),
            start_key: None,
            revision: None,
            limit: None,
        };
        let stored =
            server.store.list(request).await.map_err(|e| ApiError::timeout(e.to_string()))?;
        if stored.kvs.is_empty() {
            return Ok(());
        }
        server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
        let counted = namespace_usage(server, namespace).await?;
        let mut charges = Vec::new();
        for kv in &stored.kvs {
            let Ok(q) = serde_json::from_slice::<Value>(&kv.value) else { continue };
            if let Some(charged) = check(resource, &q, &requested, &counted)? {
                charges.push((kv, charged));
            }
        }
        if charges.is_empty() {
            return Ok(());
        }
        let mut lost_race = false;
        for (kv, charged) in charges {
            let bytes =
                serde_json::to_vec(&charged).map_err(|e| ApiError::internal(e.to_string()))?;
            match server.store.update(&kv.key, bytes.into(), kv.mod_revision).await {
                Ok(_) => {}
                Err(
                    capstan_store::StoreError::Conflict { .. }
                    | capstan_store::StoreError::NotFound(_),
                ) => {
                    contended = charged["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                    lost_race = true;
                    break;
                }
                Err(e) => return Err(ApiError::timeout(e.to_string())),
            }
        }
        if !lost_race {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        "",
        "resourcequotas",
        &contended,
        "the object has been modified; please apply your changes to the latest version and try again",
    ))
}

/// The quota with `requested` added to its `status.used`, or `None` when it tracks none of
/// it; 403 when it would go over a hard limit. Usage the quota controller has not recorded
/// yet is counted from the objects themselves.
fn check(
    resource: &Resource,
    q: &Value,
    requested: &Usage,
    counted: &Usage,
) -> ApiResult<Option<Value>> {
    let name = q["metadata"]["name"].as_str().unwrap_or_default();
    let Some(hard) = q["spec"]["hard"].as_object() else { return Ok(None) };
    let mut over = Vec::new();
    let mut charged = q.clone();
    let mut tracked = false;
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
            return Err(ApiError::forbidden(format!("failed quota: {name}: must specify {key}")));
        }
        let Some(ask) = requested.get(key) else { continue };
        let recorded = q["status"]["used"][key].as_str().and_then(parse_millis);
        let now = recorded.unwrap_or(0).max(counted.get(key).copied().unwrap_or(0));
        if now + ask > limit {
            over.push((key.clone(), *ask, now, limit));
            continue;
        }
        tracked = true;
        if !charged["status"].is_object() {
            charged["status"] = serde_json::json!({});
        }
        if !charged["status"]["used"].is_object() {
            charged["status"]["used"] = serde_json::json!({});
        }
        charged["status"]["used"][key] = Value::String(format_millis(now + ask));
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
    Ok(tracked.then_some(charged))
}
