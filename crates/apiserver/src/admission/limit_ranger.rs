//! LimitRanger admission: containers without requests or limits get their namespace's
//! LimitRange defaults, and containers outside a LimitRange's min/max are refused (403).

use std::sync::Arc;

use capstan_api::quantity::parse_millis;
use serde_json::{Map, Value};

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

fn container_items(range: &Value) -> impl Iterator<Item = &Value> {
    range["spec"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "Container")
}

fn quantity(value: &Value) -> Option<i128> {
    value.as_str().and_then(parse_millis)
}

pub fn admit(server: &Arc<ApiServer>, pod: &mut Value) -> ApiResult<()> {
    let Some(namespace) = pod["metadata"]["namespace"].as_str().map(str::to_owned) else {
        return Ok(());
    };
    let ranges_resource = capstan_api::registry::find("", "v1", "limitranges").expect("served");
    let ranges: Vec<Value> = server
        .cache_for(ranges_resource)?
        .range(&ranges_resource.namespace_prefix(&namespace), None)
        .iter()
        .map(|r| r.value())
        .collect();
    for range in &ranges {
        for item in container_items(range) {
            // Upstream's LimitRange defaults: a default limit falls back to max, a default
            // request to the default limit.
            let limits = item["default"]
                .as_object()
                .or_else(|| item["max"].as_object())
                .cloned()
                .unwrap_or_default();
            let requests =
                item["defaultRequest"].as_object().cloned().unwrap_or_else(|| limits.clone());
            for field in ["initContainers", "containers"] {
                let containers = pod["spec"].get_mut(field).and_then(Value::as_array_mut);
                for container in containers.into_iter().flatten() {
                    apply_defaults(container, "limits", &limits);
                    apply_defaults(container, "requests", &requests);
                    check_bounds(container, item)?;
                }
            }
        }
    }
    Ok(())
}

fn apply_defaults(container: &mut Value, which: &str, defaults: &Map<String, Value>) {
    if defaults.is_empty() || !container.is_object() {
        return;
    }
    if !container["resources"].is_object() {
        container["resources"] = Value::Object(Map::new());
    }
    if !container["resources"][which].is_object() {
        container["resources"][which] = Value::Object(Map::new());
    }
    if let Some(current) = container["resources"][which].as_object_mut() {
        for (name, value) in defaults {
            current.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
}

fn check_bounds(container: &Value, item: &Value) -> ApiResult<()> {
    for (name, max) in item["max"].as_object().into_iter().flatten() {
        let Some(max_millis) = quantity(max) else { continue };
        match quantity(&container["resources"]["limits"][name]) {
            None => {
                return Err(ApiError::forbidden(format!(
                    "maximum {name} usage per Container is {}.  No limit is specified",
                    max.as_str().unwrap_or_default()
                )));
            }
            Some(limit) if limit > max_millis => {
                return Err(ApiError::forbidden(format!(
                    "maximum {name} usage per Container is {}, but limit is {}",
                    max.as_str().unwrap_or_default(),
                    container["resources"]["limits"][name].as_str().unwrap_or_default()
                )));
            }
            Some(_) => {}
        }
    }
    for (name, min) in item["min"].as_object().into_iter().flatten() {
        let Some(min_millis) = quantity(min) else { continue };
        let request = quantity(&container["resources"]["requests"][name]);
        if request.is_none_or(|r| r < min_millis) {
            return Err(ApiError::forbidden(format!(
                "minimum {name} usage per Container is {}, but request is {}",
                min.as_str().unwrap_or_default(),
                container["resources"]["requests"][name].as_str().unwrap_or("not specified")
            )));
        }
    }
    Ok(())
}
