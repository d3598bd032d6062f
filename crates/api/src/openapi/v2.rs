//! The swagger 2.0 document of `/openapi/v2`, shaped like kube-apiserver's: every definition,
//! every path, and parameters shared by several operations lifted into `parameters`. It is
//! written out part by part, as JSON or as gnostic protobuf, never held as one tree.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::definitions::{self, Definitions, V2_REF_PREFIX};
use super::gnostic::Encoder;
use super::params::{Location, Param};
use super::paths::{self, Body, Operation, PathItem, Payload, Response};
use super::{ObjectWriter, TITLE, VERSION, bearer_token, fnv1a, object};
use crate::registry;

/// What the document is made of: the definitions and every path, in path order.
struct Parts {
    defs: Definitions,
    items: Vec<PathItem>,
}

impl Parts {
    fn new() -> Self {
        let defs = definitions::load();
        let group_versions = registry::group_versions();
        let mut groups = Vec::new();
        for (group, _) in &group_versions {
            if !groups.contains(group) {
                groups.push(*group);
            }
        }
        let mut items = paths::discovery_paths(&groups);
        for (group, version) in group_versions {
            items.extend(paths::group_version_paths(&defs, group, version));
        }
        items.sort_by(|a, b| a.path.cmp(&b.path));
        Parts { defs, items }
    }
}

fn info() -> Value {
    json!({"title": TITLE, "version": VERSION})
}

fn security() -> Value {
    json!([{"BearerToken": []}])
}

/// The document as JSON, members in upstream's (sorted) order.
pub(super) fn json() -> Vec<u8> {
    let parts = Parts::new();
    let mut shared = SharedParameters::count(&parts.items);
    // Paths first: rendering them decides which parameters are shared.
    let mut paths = Vec::new();
    let mut writer = ObjectWriter::new(&mut paths);
    for item in &parts.items {
        writer.value(&item.path, &shared.path_item(item));
    }
    writer.end();

    let mut out = Vec::with_capacity(paths.len() * 3);
    let mut doc = ObjectWriter::new(&mut out);
    let mut definitions = doc.object("definitions");
    for (name, raw) in parts.defs.iter() {
        definitions.raw(name, raw.as_bytes());
    }
    definitions.end();
    doc.value("info", &info());
    let mut parameters = shared.lifted;
    parameters.sort_keys();
    doc.value("parameters", &Value::Object(parameters));
    doc.raw("paths", &paths);
    doc.value("security", &security());
    doc.value("securityDefinitions", &bearer_token());
    doc.value("swagger", &json!("2.0"));
    doc.end();
    out
}

/// The document as gnostic's `openapi.v2.Document`.
pub(super) fn protobuf(encoder: &mut Encoder) -> Vec<u8> {
    let parts = Parts::new();
    let mut shared = SharedParameters::count(&parts.items);
    let paths = encoder.paths(parts.items.iter().map(|item| (&*item.path, shared.path_item(item))));
    let definitions = encoder
        .definitions(parts.defs.iter().filter_map(|(name, _)| Some((name, parts.defs.get(name)?))));
    let head = object([
        ("swagger", json!("2.0")),
        ("info", info()),
        ("parameters", Value::Object(shared.lifted)),
        ("security", security()),
        ("securityDefinitions", bearer_token()),
    ]);
    encoder.document(&head, paths, definitions)
}

/// A parameter as the document spells it: equal keys render to equal JSON.
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
enum ParamKey<'a> {
    NonBody(&'a str, Location, &'a str, &'a str),
    Body(&'a Payload, bool),
}

impl<'a> ParamKey<'a> {
    fn of(p: &'a Param) -> Self {
        ParamKey::NonBody(p.name, p.location, p.ty, &p.description)
    }
}

/// Like upstream, parameters used more than once live in the document's `parameters`, named
/// `<name>-<hash>`, and operations refer to them: the list options alone would otherwise
/// repeat ~7 KiB on every list and watch path.
struct SharedParameters<'a> {
    uses: HashMap<ParamKey<'a>, usize>,
    names: HashMap<ParamKey<'a>, String>,
    lifted: Map<String, Value>,
}

impl<'a> SharedParameters<'a> {
    fn count(items: &'a [PathItem]) -> Self {
        let mut uses: HashMap<ParamKey<'a>, usize> = HashMap::new();
        for item in items {
            let ops = item.operations.iter();
            let params = item.parameters.iter().chain(ops.clone().flat_map(|op| &op.parameters));
            let bodies = ops.filter_map(|op| op.body.as_ref());
            let keys = params
                .map(ParamKey::of)
                .chain(bodies.map(|b| ParamKey::Body(&b.payload, b.required)));
            for key in keys {
                *uses.entry(key).or_default() += 1;
            }
        }
        SharedParameters { uses, names: HashMap::new(), lifted: Map::new() }
    }

    /// The parameter itself, or a reference to its shared copy.
    fn render(&mut self, key: ParamKey<'a>, render: impl FnOnce() -> Value) -> Value {
        if self.uses.get(&key).copied().unwrap_or(0) < 2 {
            return render();
        }
        let name = match self.names.get(&key) {
            Some(name) => name.clone(),
            None => {
                let value = render();
                let hash = fnv1a(value.to_string().as_bytes()) as u32;
                let name = format!("{}-{hash:08x}", value["name"].as_str().unwrap_or("param"));
                self.lifted.insert(name.clone(), value);
                self.names.insert(key, name.clone());
                name
            }
        };
        json!({"$ref": format!("#/parameters/{name}")})
    }

    fn parameters(&mut self, params: &'a [Param]) -> Vec<Value> {
        params.iter().map(|p| self.render(ParamKey::of(p), || parameter(p))).collect()
    }

    fn path_item(&mut self, item: &'a PathItem) -> Value {
        let mut out = Map::new();
        for op in &item.operations {
            out.insert(op.method.as_str().into(), self.operation(op));
        }
        if !item.parameters.is_empty() {
            out.insert("parameters".into(), Value::Array(self.parameters(&item.parameters)));
        }
        out.sort_keys();
        Value::Object(out)
    }

    fn operation(&mut self, op: &'a Operation) -> Value {
        let mut parameters: Vec<Value> = Vec::new();
        if let Some(b) = &op.body {
            parameters.push(self.render(ParamKey::Body(&b.payload, b.required), || body(b)));
        }
        parameters.extend(self.parameters(&op.parameters));
        let consumes = op.body.as_ref().map_or(&["*/*"][..], |b| b.content_types);
        let mut out = object([
            ("consumes", json!(consumes)),
            ("description", json!(op.description)),
            ("operationId", json!(op.id)),
        ]);
        if !parameters.is_empty() {
            out["parameters"] = Value::Array(parameters);
        }
        out["produces"] = json!(op.produces);
        out["responses"] = responses(&op.responses);
        out["schemes"] = json!(["https"]);
        out["tags"] = json!([op.tag]);
        if !op.action.is_empty() {
            out["x-kubernetes-action"] = json!(op.action);
        }
        if let Some(gvk) = op.gvk {
            out["x-kubernetes-group-version-kind"] =
                json!({"group": gvk.group, "kind": gvk.kind, "version": gvk.version});
        }
        out
    }
}

fn body(body: &Body) -> Value {
    let mut out = json!({"in": "body", "name": "body"});
    if body.required {
        out["required"] = json!(true);
    }
    out["schema"] = schema(&body.payload);
    out
}

fn parameter(p: &Param) -> Value {
    let mut out = json!({"description": p.description, "in": p.location.as_str(), "name": p.name});
    if p.location == Location::Path {
        out["required"] = json!(true);
    }
    out["type"] = json!(p.ty);
    out["uniqueItems"] = json!(true);
    out
}

fn schema(payload: &Payload) -> Value {
    match payload {
        Payload::Definition(name) => json!({"$ref": format!("{V2_REF_PREFIX}{name}")}),
        Payload::Text => json!({"type": "string"}),
    }
}

fn responses(responses: &[Response]) -> Value {
    let mut out = Map::new();
    for r in responses {
        let mut response = json!({"description": r.description});
        if let Some(payload) = &r.payload {
            response["schema"] = schema(payload);
        }
        out.insert(r.code.into(), response);
    }
    Value::Object(out)
}
