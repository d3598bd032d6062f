//! Defaulting of the core/v1 kinds that are neither workloads nor Service networking:
//! Secrets, Namespaces, Nodes and LimitRanges.

use serde_json::{Map, Value, json};

use super::{default_string, items, pointer_field, struct_field};

/// The label every Namespace carries with its own name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub(super) fn secret(secret: &mut Map<String, Value>) {
    default_string(secret, "type", "Opaque");
}

pub(super) fn namespace(namespace: &mut Map<String, Value>) {
    label_with_name(namespace);
    if let Some(status) = struct_field(namespace, "status") {
        default_string(status, "phase", "Active");
    }
}

/// Sets the name label, overwriting a different value as upstream does; a nameless namespace
/// (generateName) is labelled once its name is known.
pub(super) fn label_with_name(namespace: &mut Map<String, Value>) {
    let Some(meta) = pointer_field(namespace, "metadata") else { return };
    let Some(name) = meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        return;
    };
    let name = json!(name);
    if let Some(labels) = struct_field(meta, "labels") {
        labels.insert(NAME_LABEL.into(), name);
    }
}

/// A node reporting capacity but no allocatable can allocate all of it.
pub(super) fn node(node: &mut Map<String, Value>) {
    let Some(status) = pointer_field(node, "status") else { return };
    if status.get("allocatable").is_none_or(Value::is_null)
        && let Some(capacity) =
            status.get("capacity").filter(|c| c.as_object().is_some_and(|c| !c.is_empty())).cloned()
    {
        status.insert("allocatable".into(), capacity);
    }
}

/// A Container limit's default comes from its max, its default request from its default,
/// then from its min.
pub(super) fn limit_range(limit_range: &mut Map<String, Value>) {
    let Some(spec) = pointer_field(limit_range, "spec") else { return };
    for item in items(spec, "limits") {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        fill_missing(item, "default", "max");
        fill_missing(item, "defaultRequest", "default");
        fill_missing(item, "defaultRequest", "min");
    }
}

/// Copies the quantities of `from` that `into` lacks; an empty result stays unset.
fn fill_missing(item: &mut Map<String, Value>, into: &str, from: &str) {
    let Some(source) = item.get(from).and_then(Value::as_object).cloned() else { return };
    if source.is_empty() {
        return;
    }
    if item.get(into).is_none_or(Value::is_null) {
        item.insert(into.to_owned(), json!({}));
    }
    if let Some(target) = item.get_mut(into).and_then(Value::as_object_mut) {
        for (resource, quantity) in source {
            target.entry(resource).or_insert(quantity);
        }
    }
}
