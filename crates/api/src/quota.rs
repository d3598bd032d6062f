//! What an object counts against a ResourceQuota (object counts, pod compute requests and
//! limits), shared by quota admission and the quota status controller.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Resource;
use crate::quantity::parse_millis;

/// Usage in milli-units per quota key (`pods`, `requests.cpu`, `count/deployments.apps`, …).
pub type Usage = BTreeMap<String, i128>;

/// Object-count keys with their own names, as upstream has them.
fn legacy_count_key(resource: &Resource) -> Option<&'static str> {
    if !resource.group.is_empty() {
        return None;
    }
    Some(match resource.plural {
        "pods" => "pods",
        "services" => "services",
        "configmaps" => "configmaps",
        "secrets" => "secrets",
        "replicationcontrollers" => "replicationcontrollers",
        "resourcequotas" => "resourcequotas",
        "persistentvolumeclaims" => "persistentvolumeclaims",
        _ => return None,
    })
}

/// `count/<plural>` for core kinds, `count/<plural>.<group>` otherwise.
fn count_key(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("count/{}", resource.plural)
    } else {
        format!("count/{}.{}", resource.plural, resource.group)
    }
}

/// Pods that finished no longer count.
fn counts(resource: &Resource, object: &Value) -> bool {
    resource.kind != "Pod"
        || !matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// A pod's effective requests or limits: the larger of its containers' sum and any single init
/// container, plus overhead (upstream's PodRequests).
fn pod_resources(pod: &Value, which: &str) -> BTreeMap<String, i128> {
    let sum_of = |field: &str| {
        let mut total: BTreeMap<String, i128> = BTreeMap::new();
        for container in pod["spec"][field].as_array().into_iter().flatten() {
            for (name, q) in container["resources"][which].as_object().into_iter().flatten() {
                if let Some(m) = q
                    .as_str()
                    .and_then(parse_millis)
                    .or_else(|| q.as_i64().map(|n| i128::from(n) * 1000))
                {
                    *total.entry(name.clone()).or_default() += m;
                }
            }
        }
        total
    };
    let mut result = sum_of("containers");
    for container in pod["spec"]["initContainers"].as_array().into_iter().flatten() {
        for (name, q) in container["resources"][which].as_object().into_iter().flatten() {
            if let Some(m) = q.as_str().and_then(parse_millis) {
                let entry = result.entry(name.clone()).or_default();
                *entry = (*entry).max(m);
            }
        }
    }
    for (name, q) in pod["spec"]["overhead"].as_object().into_iter().flatten() {
        if let Some(m) = q.as_str().and_then(parse_millis) {
            *result.entry(name.clone()).or_default() += m;
        }
    }
    result
}

/// Everything `object` adds to its namespace's usage.
pub fn usage_of(resource: &Resource, object: &Value) -> Usage {
    let mut usage = Usage::new();
    if !counts(resource, object) {
        return usage;
    }
    usage.insert(count_key(resource), 1000);
    if let Some(key) = legacy_count_key(resource) {
        usage.insert(key.to_owned(), 1000);
    }
    if resource.kind == "Service" {
        match object["spec"]["type"].as_str() {
            Some("NodePort") => {
                usage.insert("services.nodeports".into(), 1000);
            }
            Some("LoadBalancer") => {
                usage.insert("services.loadbalancers".into(), 1000);
                usage.insert("services.nodeports".into(), 1000);
            }
            _ => {}
        }
    }
    if resource.kind == "Pod" {
        for (name, millis) in pod_resources(object, "requests") {
            usage.insert(format!("requests.{name}"), millis);
            if name == "cpu" || name == "memory" {
                usage.insert(name, millis);
            }
        }
        for (name, millis) in pod_resources(object, "limits") {
            usage.insert(format!("limits.{name}"), millis);
        }
    }
    usage
}

/// Adds `more` into `total`.
pub fn add(total: &mut Usage, more: &Usage) {
    for (key, value) in more {
        *total.entry(key.clone()).or_default() += value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_count_their_compute_and_themselves() {
        let pods = crate::registry::find("", "v1", "pods").unwrap();
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}}},
                {"resources": {"requests": {"cpu": "250m"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
        }});
        let usage = usage_of(pods, &pod);
        assert_eq!(usage["pods"], 1000);
        assert_eq!(usage["count/pods"], 1000);
        assert_eq!(usage["requests.cpu"], 2000, "the init container's larger request wins");
        assert_eq!(usage["cpu"], 2000);
        assert_eq!(usage["requests.memory"], 64 * 1024 * 1024 * 1000);
        assert_eq!(usage["limits.cpu"], 1000);
        let done = json!({"status": {"phase": "Succeeded"}});
        assert!(usage_of(pods, &done).is_empty());
        let deployments = crate::registry::find("apps", "v1", "deployments").unwrap();
        assert_eq!(usage_of(deployments, &json!({}))["count/deployments.apps"], 1000);
    }
}
