//! DefaultTolerationSeconds admission: pods tolerate `not-ready` and `unreachable` nodes for
//! a while (300 s by default) before the node lifecycle controller evicts them.

use serde_json::{Value, json};

use super::AdmissionConfig;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

pub fn admit(config: &AdmissionConfig, pod: &mut Value) {
    if !pod["spec"].is_object() {
        return;
    }
    let mut tolerations: Vec<Value> =
        pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    // A toleration that already covers the taint (by key, or all keys with Exists) wins.
    let covers = |t: &Value, key: &str| {
        let effect_ok = t["effect"].is_null() || t["effect"] == "" || t["effect"] == "NoExecute";
        let key_ok =
            t["key"] == key || (t["key"].is_null() || t["key"] == "") && t["operator"] == "Exists";
        effect_ok && key_ok
    };
    for (key, seconds) in [
        (NOT_READY, config.not_ready_toleration_seconds),
        (UNREACHABLE, config.unreachable_toleration_seconds),
    ] {
        if !tolerations.iter().any(|t| covers(t, key)) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
    pod["spec"]["tolerations"] = Value::Array(tolerations);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_both_tolerations_unless_they_have_them() {
        let config = AdmissionConfig::default();
        let mut pod = json!({"spec": {"containers": []}});
        admit(&config, &mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["spec"]["tolerations"][0]["tolerationSeconds"], 300);
        let mut own = json!({"spec": {"tolerations": [{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        admit(&config, &mut own);
        let tolerations = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0]["tolerationSeconds"], 5);
        let mut everything = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        admit(&config, &mut everything);
        assert_eq!(everything["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
