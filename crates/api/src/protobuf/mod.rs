//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to the
//! JSON object a JSON client would have sent for the same Go object.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown` envelope naming the kind and carrying
//! the object's message (upstream's `generated.proto`). The schemas come from
//! `data/protobuf-messages.json`; the walk is hand-written so that malformed or hostile input
//! is an error and never a panic, a huge allocation or a deep recursion.

mod decode;
mod schema;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use schema::Schema;
use wire::{Reader, WireValue, malformed};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What every protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nesting deeper than any Kubernetes object (a Pod spec is about ten levels) is refused, so a
/// crafted body cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The envelope names a kind without a schema here (a custom resource, a kind capstan does
    /// not serve); upstream answers protobuf for custom resources with 415 too.
    #[error("protobuf is not supported for kind {kind:?} in {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("protobuf bodies with content encoding {0:?} are not supported")]
    UnsupportedEncoding(String),
    #[error("the request body is not a valid protobuf object: {0}")]
    Malformed(String),
}

/// Decodes a whole protobuf body into the object's JSON, `kind` and `apiVersion` first as
/// client-go writes them.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    decode_at(body, 0)
}

/// Whether a kind has a schema (every registry kind must).
pub fn supports(api_version: &str, kind: &str) -> bool {
    Schema::get().kind(api_version, kind).is_some()
}

/// A body or an embedded object (RawExtension) at a nesting depth.
fn decode_at(body: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the k8s\\0 prefix"))?;
    let unknown = Unknown::parse(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(DecodeError::UnsupportedEncoding(unknown.content_encoding));
    }
    if unknown.kind.is_empty() {
        return Err(malformed("the envelope names no kind"));
    }
    let mut object = Map::new();
    object.insert("kind".into(), Value::String(unknown.kind.clone()));
    object.insert("apiVersion".into(), Value::String(unknown.api_version.clone()));
    match unknown.content_type.as_str() {
        "" | MEDIA_TYPE => {
            let schema = Schema::get();
            let Some(message) = schema.kind(&unknown.api_version, &unknown.kind) else {
                let (api_version, kind) = (unknown.api_version, unknown.kind);
                return Err(DecodeError::UnknownKind { api_version, kind });
            };
            object.extend(decode::Decoder { schema }.message(message, unknown.raw, depth)?);
        }
        other if other.starts_with("application/json") => {
            let Value::Object(fields) = decode::raw_json(unknown.raw, depth)? else {
                return Err(malformed("the embedded JSON is not an object"));
            };
            object.extend(fields);
        }
        other => return Err(malformed(format!("unsupported embedded content type {other:?}"))),
    }
    Ok(Value::Object(object))
}

/// `runtime.Unknown`: `typeMeta` (1: apiVersion, 2: kind), `raw` (2), `contentEncoding` (3),
/// `contentType` (4).
#[derive(Default)]
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

impl<'a> Unknown<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut unknown = Unknown::default();
        let mut reader = Reader::new(buf);
        while !reader.is_empty() {
            match reader.field()? {
                (1, WireValue::Bytes(type_meta)) => {
                    let mut reader = Reader::new(type_meta);
                    while !reader.is_empty() {
                        match reader.field()? {
                            (1, WireValue::Bytes(v)) => unknown.api_version = text(v),
                            (2, WireValue::Bytes(v)) => unknown.kind = text(v),
                            _ => {}
                        }
                    }
                }
                (2, WireValue::Bytes(raw)) => unknown.raw = raw,
                (3, WireValue::Bytes(v)) => unknown.content_encoding = text(v),
                (4, WireValue::Bytes(v)) => unknown.content_type = text(v),
                (1..=4, v) => {
                    return Err(malformed(format!("envelope field is {}", v.type_name())));
                }
                _ => {}
            }
        }
        Ok(unknown)
    }
}

/// Go strings are bytes; encoding/json writes invalid UTF-8 as U+FFFD, and so do we.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
