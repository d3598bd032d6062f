//! Strategic merge patch (`application/strategic-merge-patch+json`), with the semantics of
//! upstream's `k8s.io/apimachinery/pkg/util/strategicpatch` as the API server applies it.
//!
//! Each field is patched as its schema says: objects merge key by key and `null` deletes a
//! key; lists with patch strategy `merge` merge their items by the field's merge key (or as
//! sets, for scalars) while other lists are replaced. The patch can carry directives:
//! `$patch: replace|merge|delete` on objects and list items, `$setElementOrder/<list>`,
//! `$retainKeys` and `$deleteFromPrimitiveList/<list>`. Fields the schema does not know are
//! patched like a JSON merge patch. The metadata comes from the embedded OpenAPI definitions
//! (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`).

mod merge;
pub(crate) mod schema;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::Resource;

/// Patches nested deeper than this are refused; JSON bodies are bounded below it anyway.
pub const MAX_DEPTH: usize = 100;

/// Why a strategic merge patch does not apply. Nothing is changed when it does not.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{what} must be a JSON object, not {found}")]
    NotAnObject { what: &'static str, found: &'static str },
    #[error("no schema is known for {0:?}")]
    UnknownDefinition(String),
    #[error(
        "{path}: unknown patch directive \"$patch\": {value}; expected \"replace\", \"merge\" or \"delete\""
    )]
    UnknownDirective { path: String, value: String },
    #[error("{path}: {directive} is malformed: {reason}")]
    MalformedDirective { path: String, directive: String, reason: &'static str },
    #[error("{path}: {directive} does not apply here: {reason}")]
    MisplacedDirective { path: String, directive: String, reason: &'static str },
    #[error("{path}: the items of this list are merged by \"{key}\", but an item has none: {item}")]
    MissingMergeKey { path: String, key: String, item: String },
    #[error("{path}: expected {expected}, got {found}")]
    TypeMismatch { path: String, expected: &'static str, found: &'static str },
    #[error("{path}: the items of a merged list must all have one type, and not be lists")]
    MixedList { path: String },
    #[error("{path}: the items of the patch list are not in the order of {directive}")]
    OrderMismatch { path: String, directive: String },
    #[error("{path}: field \"{field}\" is patched but missing from $retainKeys")]
    NotRetained { path: String, field: String },
    #[error("{path}: the patch nests deeper than {MAX_DEPTH} levels")]
    TooDeep { path: String },
}

impl PatchError {
    /// Whether the patch itself is malformed (upstream answers 400 Bad Request) rather than
    /// well formed but not applicable to this object (422).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::NotAnObject { .. } | Self::MalformedDirective { .. } | Self::NotRetained { .. }
        )
    }
}

/// Applies `patch` to `original`, an object of the type named `definition` (a schema name
/// such as `io.k8s.api.apps.v1.Deployment`), and returns the patched object.
pub fn apply(original: &Value, patch: &Value, definition: &str) -> Result<Value, PatchError> {
    let schema = schema::schema();
    let shape = schema
        .lookup(definition)
        .ok_or_else(|| PatchError::UnknownDefinition(definition.to_owned()))?;
    let Value::Object(patch) = patch else {
        return Err(PatchError::NotAnObject {
            what: "a strategic merge patch",
            found: kind(patch),
        });
    };
    let Value::Object(original) = original else {
        return Err(PatchError::NotAnObject { what: "the patched object", found: kind(original) });
    };
    let merger = merge::Merger::new(schema);
    let merged = merger.map(original.clone(), patch.clone(), &shape, &merge::Path::root())?;
    Ok(Value::Object(merged))
}

/// The schema name of the objects read and written at `resource` (or at one of its
/// subresources: `scale` is `io.k8s.api.autoscaling.v1.Scale`, `status` the parent's type).
pub fn definition_for(resource: &Resource, subresource: Option<&str>) -> Option<&'static str> {
    match subresource.and_then(|name| resource.subresource(name)) {
        Some(sub) => {
            let (group, version) = sub.group_version.unwrap_or((resource.group, resource.version));
            definition_for_kind(group, version, sub.kind)
        }
        None => definition_for_kind(resource.group, resource.version, resource.kind),
    }
}

/// The schema name carrying `x-kubernetes-group-version-kind` for this kind.
pub fn definition_for_kind(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    schema::schema().definition_for_kind(group, version, kind)
}

/// A JSON value's type, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
