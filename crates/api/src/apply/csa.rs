//! Moving from client-side to server-side apply, as upstream's API server eases it for
//! kubectl: `kubectl apply --server-side` may take over fields that client-side apply set
//! (they are in the last-applied annotation with the value the object still has), and keeps
//! the annotation current on objects that have one, so a later client-side apply still works.
//! kubectl then hands `kubectl-client-side-apply`'s remaining fields to its own Apply entry.

use std::borrow::Cow;

use serde_json::Value;

use super::{Conflict, FieldSet, Manager, Scope, compare, typed};

/// The manager whose applies get this treatment: kubectl's default for `--server-side`.
const KUBECTL: &str = "kubectl";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Upstream's limit on all annotations of an object together.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

fn last_applied(object: &Value) -> Option<&str> {
    object["metadata"]["annotations"][LAST_APPLIED].as_str().filter(|s| !s.is_empty())
}

/// The configuration kubectl applies, with the last-applied annotation set to it when the
/// live object carries one.
pub(super) fn with_last_applied<'c>(
    live: Option<&Value>,
    config: &'c Value,
    manager: &Manager<'_>,
) -> Cow<'c, Value> {
    if manager.name != KUBECTL || live.and_then(last_applied).is_none() {
        return Cow::Borrowed(config);
    }
    let mut recorded = config.clone();
    if let Some(annotations) =
        recorded["metadata"].get_mut("annotations").and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty()
            && let Some(meta) = recorded["metadata"].as_object_mut()
        {
            meta.remove("annotations");
        }
    }
    let text = recorded.to_string();
    if text.len() > ANNOTATIONS_LIMIT {
        return Cow::Borrowed(config);
    }
    let mut config = config.clone();
    if !config["metadata"].is_object() {
        config["metadata"] = serde_json::json!({});
    }
    if !config["metadata"]["annotations"].is_object() {
        config["metadata"]["annotations"] = serde_json::json!({});
    }
    config["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
    Cow::Owned(config)
}

/// Whether kubectl's apply may take these conflicting fields over because client-side apply
/// set them and they still hold the value it applied. `Err` carries the conflicts that
/// remain.
pub(super) fn allowed_conflicts(
    scope: Scope<'_>,
    live: Option<&Value>,
    manager: &Manager<'_>,
    conflicts: &[Conflict],
) -> Result<(), Vec<Conflict>> {
    let applied = live.and_then(last_applied).and_then(|text| serde_json::from_str(text).ok());
    let (Some(live), Some(applied)) = (live, applied) else {
        return Err(conflicts.to_vec());
    };
    if manager.name != KUBECTL {
        return Err(conflicts.to_vec());
    }
    let root = scope.root();
    let mut applied_set = FieldSet::new();
    typed().collect(&scope.tracked(&applied), root, &mut applied_set);
    let differing = compare(&scope, root, live, &applied).changed();
    let mut allowed = applied_set.difference(&differing);
    // The annotation itself follows every kubectl apply (see `with_last_applied`).
    allowed.insert(&["f:metadata", "f:annotations", &format!("f:{LAST_APPLIED}")]);
    let remaining: Vec<Conflict> =
        conflicts.iter().filter(|c| !allowed.contains(&c.path)).cloned().collect();
    if remaining.is_empty() { Ok(()) } else { Err(remaining) }
}
