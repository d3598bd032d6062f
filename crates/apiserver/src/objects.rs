//! Object metadata rules every write follows: names, uids, timestamps, generation, the
//! status/spec split, managed fields, and per-kind preparation on create.

use capstan_api::Resource;
use serde_json::{Map, Value, json};

use crate::status::{ApiError, ApiResult};

/// Now as Kubernetes writes timestamps: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn rfc3339_after(seconds: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata")?.as_object()
}

pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"].as_object_mut().expect("metadata was just made an object")
}

pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    metadata(object)?.get(field)?.as_str()
}

/// Resources whose objects carry `metadata.generation` (spec changes bump it).
pub fn tracks_generation(resource: &Resource) -> bool {
    resource.subresource("status").is_some() || resource.kind == "PodTemplate"
}

/// Whether the status subresource owns `status` (so the main resource may not write it).
pub fn has_status_subresource(resource: &Resource) -> bool {
    resource.subresource("status").is_some()
}

/// Checks the body's apiVersion/kind against the endpoint and fills them in when absent.
pub fn check_type(
    resource: &Resource,
    object: &mut Value,
    kind: &str,
    api_version: &str,
) -> ApiResult<()> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    };
    match map.get("apiVersion") {
        None | Some(Value::Null) => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(Value::String(v)) if v == api_version => {}
        Some(Value::String(v)) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        Some(_) => return Err(ApiError::bad_request("apiVersion must be a string")),
    }
    match map.get("kind") {
        None | Some(Value::Null) => {
            map.insert("kind".into(), json!(kind));
        }
        Some(Value::String(k)) if k == kind => {}
        Some(Value::String(k)) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({kind}) for {}",
                resource.plural
            )));
        }
        Some(_) => return Err(ApiError::bad_request("kind must be a string")),
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

/// `generateName` + five characters from upstream's alphabet (no vowels, no look-alikes).
pub fn generate_name(base: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    // Upstream truncates the base so the result stays a valid name.
    let base = if base.len() > 58 { &base[..58] } else { base };
    format!("{base}{suffix}")
}

/// Records a manager's update (create, PUT, non-apply patch, subresource write) of `old`
/// into `object` in its `metadata.managedFields`: the manager owns what it changed.
pub fn record_managed_fields(
    resource: &Resource,
    old: Option<&Value>,
    object: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let time = now_rfc3339();
    let manager =
        capstan_api::apply::Manager { name: manager, api_version, subresource, time: &time };
    let scope = capstan_api::apply::Scope { resource, subresource };
    capstan_api::apply::update(scope, old, object, &manager);
}

/// A manager name from the client's User-Agent, as upstream derives it (`kubectl-create` …).
pub fn manager_from_user_agent(user_agent: Option<&str>) -> String {
    let agent = user_agent.unwrap_or("unknown");
    let name = agent.split('/').next().unwrap_or(agent);
    name.chars().take(128).collect()
}

/// Everything but metadata and status: what a generation bump watches.
pub fn spec_part(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    spec
}

/// Per-kind preparation of a new object (upstream's PrepareForCreate).
pub fn prepare_for_create(resource: &Resource, object: &mut Value) {
    match resource.kind {
        "Namespace" => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        "Pod" => {
            let qos = pod_qos_class(object);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicationController"
        | "Job"
        | "CronJob"
        | "PodDisruptionBudget"
        | "ResourceQuota" => {
            if let Some(map) = object.as_object_mut() {
                map.remove("status");
            }
        }
        _ => {}
    }
}

/// Upstream's QoS class: Guaranteed when every container has equal cpu and memory requests
/// and limits, BestEffort when none has any, Burstable otherwise.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| pod.get("spec")?.get(*f)?.as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let resources = c.get("resources");
        let requests = resources.and_then(|r| r.get("requests")).and_then(Value::as_object);
        let limits = resources.and_then(|r| r.get("limits")).and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_keep_the_base_and_add_five_characters() {
        let name = generate_name("web-");
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert!(capstan_api::selector::dns1123_subdomain_errors(&name).is_empty());
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let pod = |resources: Value| json!({"spec": {"containers": [{"name": "c", "resources": resources}]}});
        assert_eq!(pod_qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            pod_qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(pod_qos_class(&pod(json!({"requests": {"cpu": "1"}}))), "Burstable");
    }

    #[test]
    fn type_mismatches_are_bad_requests() {
        let cm = capstan_api::registry::find("", "v1", "configmaps").unwrap();
        let mut wrong = json!({"apiVersion": "apps/v1", "kind": "ConfigMap"});
        assert!(
            check_type(cm, &mut wrong, "ConfigMap", "v1")
                .unwrap_err()
                .message
                .contains("does not match")
        );
        let mut bare = json!({"metadata": {"name": "x"}});
        check_type(cm, &mut bare, "ConfigMap", "v1").unwrap();
        assert_eq!(bare["kind"], "ConfigMap");
        assert!(check_type(cm, &mut json!([1]), "ConfigMap", "v1").is_err());
    }
}
