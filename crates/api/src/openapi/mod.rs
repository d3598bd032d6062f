//! The OpenAPI documents kubectl and client-go read: `/openapi/v2` (JSON and gnostic protobuf)
//! and `/openapi/v3` (an index plus one document per group-version), built from the registry
//! and upstream's schema definitions.
//!
//! kubectl relies on them for more than `explain`: it sends `fieldValidation=Strict` only when
//! the v3 PATCH operation of the kind lists that parameter, it validates `kind: List` input
//! client side against the v2 protobuf, and `apply` reads patch strategies from v3.
//!
//! Each document is rendered once, on first request, and kept as bytes: nothing is built at
//! startup and no parsed tree stays resident.

pub(crate) mod definitions;
mod gnostic;
mod params;
mod paths;
mod schema;
mod v2;
mod v3;

pub use schema::prune_unknown_fields;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// What client-go sends in `Accept` to get `/openapi/v2` as protobuf.
pub const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The `Content-Type` to answer that request with. It is kube-apiserver's spelling: `@` is not
/// allowed in a media type, and client-go fails on a response labelled `V2_PROTOBUF_ACCEPT`
/// ("mime: unexpected content after media subtype").
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether an `Accept` header asks for `/openapi/v2` as protobuf, in either spelling.
pub fn accepts_v2_protobuf(accept: &str) -> bool {
    accept.contains(V2_PROTOBUF_ACCEPT) || accept.contains(V2_PROTOBUF_CONTENT_TYPE)
}

const TITLE: &str = "Kubernetes";
/// The Kubernetes release whose API (and schemas) capstan serves.
const VERSION: &str = "v1.33.0";

/// The security scheme both versions declare: a bearer token in `Authorization`.
fn bearer_token() -> Value {
    json!({"BearerToken": {
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    }})
}

/// A JSON object from owned parts (`json!` would serialize a copy of each).
fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Object(entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// `/openapi/v2` as JSON.
pub fn v2_json() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(v2::json)
}

/// `/openapi/v2` as gnostic's `openapi.v2.Document` protobuf (`V2_PROTOBUF_CONTENT_TYPE`).
pub fn v2_protobuf() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| v2::protobuf(&mut gnostic::Encoder::default()))
}

/// One served group-version's v3 document, rendered on its first request.
struct V3Slot {
    group: &'static str,
    version: &'static str,
    path: String,
    json: OnceLock<Vec<u8>>,
}

impl V3Slot {
    fn json(&self) -> &[u8] {
        self.json.get_or_init(|| v3::render(self.group, self.version))
    }
}

fn v3_slots() -> &'static [V3Slot] {
    static SLOTS: OnceLock<Vec<V3Slot>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        crate::registry::group_versions()
            .into_iter()
            .map(|(group, version)| V3Slot {
                group,
                version,
                path: v3::path(group, version),
                json: OnceLock::new(),
            })
            .collect()
    })
}

/// Hashes of every v3 document, in slot order. Computing them renders each document, but only
/// the ones clients then ask for are kept: kubectl reads one or two of a dozen.
fn v3_hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        v3_slots()
            .iter()
            .map(|slot| match slot.json.get() {
                Some(json) => v3::hash(json),
                None => v3::hash(&v3::render(slot.group, slot.version)),
            })
            .collect()
    })
}

/// The `/openapi/v3` index: every served group-version with the URL of its document, e.g.
/// `{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=…"}}}`.
pub fn v3_index() -> Vec<u8> {
    let paths: Map<String, Value> = v3_slots()
        .iter()
        .zip(v3_hashes())
        .map(|(slot, hash)| {
            let url = format!("/openapi/v3/{}?hash={hash}", slot.path);
            (slot.path.clone(), json!({"serverRelativeURL": url}))
        })
        .collect();
    let mut index = json!({"paths": paths});
    index.sort_all_objects();
    serde_json::to_vec(&index).unwrap_or_default()
}

/// The document of one group-version, by its path below `/openapi/v3/` (`api/v1`,
/// `apis/apps/v1`; a leading `/` is ignored). `None` for anything not served.
pub fn v3_document(path: &str) -> Option<&'static [u8]> {
    v3_slot(path).map(|i| v3_slots()[i].json())
}

/// The hash the index advertises for a document; a request whose `hash` query matches it may
/// be answered as immutable (upstream sets `Cache-Control: public, immutable`).
pub fn v3_hash(path: &str) -> Option<&'static str> {
    v3_slot(path).map(|i| v3_hashes()[i].as_str())
}

fn v3_slot(path: &str) -> Option<usize> {
    let path = path.trim_start_matches('/');
    v3_slots().iter().position(|slot| slot.path == path)
}

/// Writes a JSON object one member at a time, so a document is never held as one tree.
struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.extend_from_slice(Value::from(key).to_string().as_bytes());
        self.out.push(b':');
    }

    fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        self.out.extend_from_slice(value.to_string().as_bytes());
    }

    /// A member whose value is JSON text already.
    fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(json);
    }

    /// A member that is itself an object, written through the returned writer.
    fn object(&mut self, key: &str) -> ObjectWriter<'_> {
        self.key(key);
        ObjectWriter::new(self.out)
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// FNV-1a, 64 bits: a content hash for cache keys and parameter names, not for security.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
