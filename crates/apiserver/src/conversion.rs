//! Conversion between a resource's served form and its storage form, for resources stored by
//! another: events.k8s.io/v1 Events live in core/v1 Event storage, so `kubectl get events`
//! shows what kube-rs' recorder wrote and the reverse.

use capstan_api::Resource;
use serde_json::{Map, Value};

/// events.k8s.io/v1 field ↔ core/v1 field, for the fields whose names differ.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

pub fn needs_conversion(resource: &Resource) -> bool {
    resource.storage_plural.is_some()
}

fn rename(
    object: Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    let Value::Object(mut map) = object else { return object };
    let mut renamed = Map::new();
    for (from, to) in pairs {
        if let Some(v) = map.remove(from) {
            renamed.insert(to.to_owned(), v);
        }
    }
    map.extend(renamed);
    map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    Value::Object(map)
}

/// The storage form of an object written through `resource`.
pub fn to_storage(resource: &Resource, object: Value) -> Value {
    if !needs_conversion(resource) {
        return object;
    }
    rename(object, EVENT_FIELDS.iter().copied(), "v1")
}

/// The form `resource` serves of a stored object.
pub fn from_storage(resource: &Resource, object: Value) -> Value {
    if !needs_conversion(resource) {
        return object;
    }
    rename(
        object,
        EVENT_FIELDS.iter().map(|(served, stored)| (*stored, *served)),
        &resource.api_version(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_convert_both_ways() {
        let new_events = capstan_api::registry::find("events.k8s.io", "v1", "events").unwrap();
        let served = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "web"}, "note": "pulled", "reason": "Pulled",
            "reportingController": "kubelet", "type": "Normal",
        });
        let stored = to_storage(new_events, served.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["message"], "pulled");
        assert_eq!(stored["reportingComponent"], "kubelet");
        assert!(stored.get("note").is_none());
        assert_eq!(from_storage(new_events, stored), served);
        let core = capstan_api::registry::find("", "v1", "events").unwrap();
        assert_eq!(to_storage(core, json!({"message": "m"})), json!({"message": "m"}));
    }
}
