//! Unknown-field detection (`fieldValidation`) over the per-field schema table that strategic
//! merge patch also uses (built once from the OpenAPI definitions).

use serde_json::Value;

use crate::Resource;
use crate::strategic::schema::{Schema, Shape, schema};

/// Removes the fields of `object` that `resource`'s schema does not have, returning their
/// paths like `spec.template.spec.containers[0].imagee` (upstream's strict decoding names them
/// so). Upstream drops such fields when it does not refuse the object.
pub fn prune_unknown_fields(resource: &Resource, object: &mut Value) -> Vec<String> {
    let table = schema();
    let mut unknown = Vec::new();
    let root = table
        .definition_for_kind(resource.group, resource.version, resource.kind)
        .and_then(|name| table.lookup(name));
    if let Some(root) = root {
        walk(table, &root, object, "", &mut unknown, 0);
    }
    unknown
}

/// Objects deeper than this are not checked further (the decoder bounds nesting anyway).
const MAX_DEPTH: usize = 64;

fn walk(
    table: &Schema,
    shape: &Shape,
    value: &mut Value,
    path: &str,
    unknown: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match shape {
        Shape::Struct(index) => {
            let Some(object) = value.as_object_mut() else { return };
            object.retain(|key, child| {
                let child_path =
                    if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match table.known_field(*index, key) {
                    None => {
                        unknown.push(child_path);
                        false
                    }
                    Some(field) => {
                        walk(table, field, child, &child_path, unknown, depth + 1);
                        true
                    }
                }
            });
        }
        Shape::List(items) => {
            for (i, element) in value.as_array_mut().into_iter().flatten().enumerate() {
                walk(table, items, element, &format!("{path}[{i}]"), unknown, depth + 1);
            }
        }
        Shape::Map(values) => {
            for (key, element) in value.as_object_mut().into_iter().flatten() {
                walk(table, values, element, &format!("{path}.{key}"), unknown, depth + 1);
            }
        }
        Shape::Scalar | Shape::Any => {}
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
