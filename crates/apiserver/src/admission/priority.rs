//! Priority admission: a pod's `priorityClassName` becomes its integer `priority` (and
//! preemption policy); pods without one get the global default class, or priority 0.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

fn global_default(server: &Arc<ApiServer>) -> ApiResult<Option<Value>> {
    let classes =
        capstan_api::registry::find("scheduling.k8s.io", "v1", "priorityclasses").expect("served");
    let cache = server.cache_for(classes)?;
    Ok(cache
        .range(&classes.key_prefix(), None)
        .into_iter()
        .map(|c| c.value())
        .filter(|c| c["globalDefault"] == true)
        .min_by_key(|c| c["value"].as_i64().unwrap_or(0)))
}

pub async fn admit(server: &Arc<ApiServer>, pod: &mut Value) -> ApiResult<()> {
    if !pod["spec"].is_object() {
        return Ok(());
    }
    let class = match pod["spec"]["priorityClassName"].as_str().filter(|n| !n.is_empty()) {
        Some(name) => {
            let found = server.cached("scheduling.k8s.io", "priorityclasses", None, name).await?;
            let Some(found) = found else {
                return Err(ApiError::forbidden(format!(
                    "no PriorityClass with name {name} was found"
                )));
            };
            Some(found.value())
        }
        None => global_default(server)?,
    };
    let (priority, policy) = match &class {
        Some(class) => (
            class["value"].as_i64().unwrap_or(0),
            class["preemptionPolicy"].as_str().unwrap_or("PreemptLowerPriority").to_owned(),
        ),
        None => (0, "PreemptLowerPriority".to_owned()),
    };
    if let Some(given) = pod["spec"]["priority"].as_i64()
        && given != priority
    {
        return Err(ApiError::forbidden(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        )));
    }
    if let Some(class) = &class
        && pod["spec"]["priorityClassName"].is_null()
    {
        pod["spec"]["priorityClassName"] = class["metadata"]["name"].clone();
    }
    pod["spec"]["priority"] = json!(priority);
    if pod["spec"]["preemptionPolicy"].is_null() {
        pod["spec"]["preemptionPolicy"] = json!(policy);
    }
    Ok(())
}

/// Only one PriorityClass may be the global default.
pub async fn admit_class(server: &Arc<ApiServer>, class: &mut Value) -> ApiResult<()> {
    if class["globalDefault"] == true
        && let Some(existing) = global_default(server)?
    {
        let existing = existing["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let name = class["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        return Err(ApiError::invalid(
            "scheduling.k8s.io",
            "PriorityClass",
            &name,
            vec![(
                "globalDefault".into(),
                "FieldValueInvalid".into(),
                format!(
                    "Invalid value: true: PriorityClass {existing} is already marked as default. Only one default can exist"
                ),
            )],
        ));
    }
    Ok(())
}
