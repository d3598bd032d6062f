//! A compact field table of the definitions — for every type, its fields and their types —
//! built once on first use, for checks that walk objects against the schema (unknown fields).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::definitions::{self, V2_REF_PREFIX};
use crate::Resource;

/// What a field holds.
#[derive(Debug)]
enum FieldType {
    /// Another definition.
    Ref(&'static str),
    List(Box<FieldType>),
    Map(Box<FieldType>),
    /// A scalar, or anything the schema leaves open.
    Leaf,
}

/// One definition's fields; `None` for open types (free-form objects, RawExtension, …).
type Fields = Option<HashMap<&'static str, FieldType>>;

struct Table {
    types: HashMap<&'static str, Fields>,
    /// (group, version, kind) → definition name.
    kinds: HashMap<(String, String, String), &'static str>,
}

fn field_type(schema: &Value) -> FieldType {
    if let Some(reference) = schema["$ref"].as_str().and_then(|r| r.strip_prefix(V2_REF_PREFIX)) {
        // Leaked once per distinct name, so the table can hand out &'static str.
        return FieldType::Ref(Box::leak(reference.to_owned().into_boxed_str()));
    }
    match schema["type"].as_str() {
        Some("array") => FieldType::List(Box::new(field_type(&schema["items"]))),
        Some("object") if schema["additionalProperties"].is_object() => {
            FieldType::Map(Box::new(field_type(&schema["additionalProperties"])))
        }
        _ => FieldType::Leaf,
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let defs = definitions::load();
        let mut types = HashMap::new();
        for (name, raw) in defs.iter() {
            let schema: Value = serde_json::from_str(raw).unwrap_or_default();
            let fields = schema["properties"].as_object().map(|properties| {
                properties
                    .iter()
                    .map(|(field, schema)| {
                        (&*Box::leak(field.clone().into_boxed_str()), field_type(schema))
                    })
                    .collect()
            });
            types.insert(name, fields);
        }
        let mut kinds = HashMap::new();
        for resource in crate::RESOURCES {
            if let Some(name) = defs.by_kind(resource.group, resource.version, resource.kind)
                && let Some((&key, _)) = types.get_key_value(name.as_str())
            {
                let id = (
                    resource.group.to_owned(),
                    resource.version.to_owned(),
                    resource.kind.to_owned(),
                );
                kinds.insert(id, key);
            }
        }
        Table { types, kinds }
    })
}

/// Removes the fields of `object` that `resource`'s schema does not have, returning their
/// paths like `spec.template.spec.containers[0].imagee` (upstream's strict decoding names them
/// so). Upstream drops such fields when it does not refuse the object.
pub fn prune_unknown_fields(resource: &Resource, object: &mut Value) -> Vec<String> {
    let table = table();
    let id = (resource.group.to_owned(), resource.version.to_owned(), resource.kind.to_owned());
    let mut unknown = Vec::new();
    if let Some(name) = table.kinds.get(&id) {
        walk(table, name, object, "", &mut unknown, 0);
    }
    unknown
}

/// Objects deeper than this are not checked further (the decoder bounds nesting anyway).
const MAX_DEPTH: usize = 64;

fn walk(
    table: &Table,
    name: &str,
    value: &mut Value,
    path: &str,
    unknown: &mut Vec<String>,
    depth: usize,
) {
    let (Some(Some(fields)), Some(object)) = (table.types.get(name), value.as_object_mut()) else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    object.retain(|key, child| {
        let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match fields.get(key.as_str()) {
            None => {
                unknown.push(child_path);
                false
            }
            Some(field) => {
                walk_field(table, field, child, &child_path, unknown, depth + 1);
                true
            }
        }
    });
}

fn walk_field(
    table: &Table,
    field: &FieldType,
    value: &mut Value,
    path: &str,
    unknown: &mut Vec<String>,
    depth: usize,
) {
    match field {
        FieldType::Ref(name) => walk(table, name, value, path, unknown, depth),
        FieldType::List(item) => {
            for (i, element) in value.as_array_mut().into_iter().flatten().enumerate() {
                walk_field(table, item, element, &format!("{path}[{i}]"), unknown, depth + 1);
            }
        }
        FieldType::Map(item) => {
            for (key, element) in value.as_object_mut().into_iter().flatten() {
                walk_field(table, item, element, &format!("{path}.{key}"), unknown, depth + 1);
            }
        }
        FieldType::Leaf => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_named_by_path() {
        let deployments = crate::registry::find("apps", "v1", "deployments").unwrap();
        let mut object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"free": "form"}, "bogus": 1},
            "spec": {
                "replicas": 1,
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagee": "typo"}]}},
                "extra": true,
            },
        });
        let mut unknown = prune_unknown_fields(deployments, &mut object);
        unknown.sort();
        assert_eq!(
            unknown,
            ["metadata.bogus", "spec.extra", "spec.template.spec.containers[0].imagee"]
        );
        assert!(object["spec"].get("extra").is_none(), "unknown fields are dropped");
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "c", "image": "i"})
        );
        let configmaps = crate::registry::find("", "v1", "configmaps").unwrap();
        assert!(prune_unknown_fields(configmaps, &mut json!({"data": {"any": "key"}})).is_empty());
    }
}
