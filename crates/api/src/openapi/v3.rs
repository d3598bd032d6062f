//! The OpenAPI 3.0 documents of `/openapi/v3/<group-version>`, one per served group-version,
//! each holding only the schemas its own operations reach, as kube-apiserver splits them.

use serde_json::{Map, Value, json};

use super::definitions::{self, V2_REF_PREFIX};
use super::params::{Location, Param};
use super::paths::{self, Operation, PathItem, Payload, Response};
use super::{ObjectWriter, TITLE, VERSION, bearer_token, fnv1a, object};

const V3_REF_PREFIX: &str = "#/components/schemas/";

/// Scalars that accept more than one JSON type; 3.0 says so with `oneOf` where 2.0 could
/// only say "string" (upstream's `OpenAPIV3OneOfTypes`).
const ONE_OF: &[(&str, &[&str])] = &[
    ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", &["integer", "string"]),
    ("io.k8s.apimachinery.pkg.api.resource.Quantity", &["string", "number"]),
];

/// Where a group-version's document is served below `/openapi/v3/`: `api/v1`, `apis/apps/v1`.
pub(super) fn path(group: &str, version: &str) -> String {
    match group {
        "" => format!("api/{version}"),
        _ => format!("apis/{group}/{version}"),
    }
}

/// The document of one group-version: its paths and the schemas they reach, written member by
/// member in upstream's (sorted) order.
pub(super) fn render(group: &'static str, version: &'static str) -> Vec<u8> {
    let defs = definitions::load();
    let mut items = paths::group_version_paths(&defs, group, version);
    items.sort_by(|a, b| a.path.cmp(&b.path));
    let names = defs.closure(items.iter().flat_map(PathItem::payload_definitions));

    let mut out = Vec::new();
    let mut doc = ObjectWriter::new(&mut out);
    let mut components = doc.object("components");
    let mut schemas = components.object("schemas");
    for name in &names {
        if let Some(schema) = defs.get(name) {
            let mut schema = definition(name, &schema);
            schema.sort_all_objects();
            schemas.value(name, &schema);
        }
    }
    schemas.end();
    components.value("securitySchemes", &bearer_token());
    components.end();
    doc.value("info", &json!({"title": TITLE, "version": VERSION}));
    doc.value("openapi", &json!("3.0.0"));
    let mut paths = doc.object("paths");
    for item in &items {
        let mut item_json = path_item(item);
        item_json.sort_all_objects();
        paths.value(&item.path, &item_json);
    }
    paths.end();
    doc.end();
    out
}

/// The content hash the index advertises, so clients may cache a document by its URL.
pub(super) fn hash(json: &[u8]) -> String {
    format!("{:016X}", fnv1a(json))
}

/// A swagger 2.0 definition as OpenAPI 3.0, the way kube-openapi renders it.
fn definition(name: &str, schema: &Value) -> Value {
    let mut out = convert(schema);
    if let (Some((_, types)), Value::Object(map)) =
        (ONE_OF.iter().find(|(n, _)| *n == name), &mut out)
    {
        map.remove("type");
        map.insert("oneOf".into(), types.iter().map(|t| json!({"type": t})).collect());
    }
    out
}

/// 3.0 ignores the siblings of a `$ref`, so a reference is wrapped in `allOf` to keep the
/// field's own description and extensions (kubectl explain prints both).
fn convert(schema: &Value) -> Value {
    let Value::Object(map) = schema else { return schema.clone() };
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "$ref" => {
                let name = value.as_str().unwrap_or_default().trim_start_matches(V2_REF_PREFIX);
                out.insert("allOf".into(), json!([{"$ref": format!("{V3_REF_PREFIX}{name}")}]));
                continue;
            }
            "properties" => match value {
                Value::Object(props) => {
                    props.iter().map(|(k, v)| (k.clone(), convert(v))).collect::<Map<_, _>>().into()
                }
                _ => value.clone(),
            },
            "items" | "additionalProperties" => convert(value),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn path_item(item: &PathItem) -> Value {
    let mut out = Map::new();
    if !item.parameters.is_empty() {
        out.insert("parameters".into(), item.parameters.iter().map(parameter).collect());
    }
    for op in &item.operations {
        out.insert(op.method.as_str().into(), operation(op));
    }
    Value::Object(out)
}

fn parameter(p: &Param) -> Value {
    let mut out = json!({
        "description": p.description,
        "in": p.location.as_str(),
        "name": p.name,
        "schema": {"type": p.ty, "uniqueItems": true},
    });
    if p.location == Location::Path {
        out["required"] = json!(true);
    }
    out
}

fn operation(op: &Operation) -> Value {
    let mut out = object([
        ("description", json!(op.description)),
        ("operationId", json!(op.id)),
        ("responses", responses(&op.responses, op.produces)),
        ("tags", json!([op.tag])),
    ]);
    if !op.parameters.is_empty() {
        out["parameters"] = op.parameters.iter().map(parameter).collect();
    }
    if let Some(body) = &op.body {
        out["requestBody"] = object([("content", content(&body.payload, body.content_types))]);
        if body.required {
            out["requestBody"]["required"] = json!(true);
        }
    }
    if !op.action.is_empty() {
        out["x-kubernetes-action"] = json!(op.action);
    }
    if let Some(gvk) = op.gvk {
        out["x-kubernetes-group-version-kind"] =
            json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version});
    }
    out
}

fn content(payload: &Payload, media_types: &[&str]) -> Value {
    let schema = match payload {
        Payload::Definition(name) => json!({"$ref": format!("{V3_REF_PREFIX}{name}")}),
        Payload::Text => json!({"type": "string"}),
    };
    media_types.iter().map(|t| (t.to_string(), object([("schema", schema.clone())]))).collect()
}

fn responses(responses: &[Response], produces: &[&str]) -> Value {
    let mut out = Map::new();
    for r in responses {
        let mut response = json!({"description": r.description});
        if let Some(payload) = &r.payload {
            response["content"] = content(payload, produces);
        }
        out.insert(r.code.into(), response);
    }
    Value::Object(out)
}
