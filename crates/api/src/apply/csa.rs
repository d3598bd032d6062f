//! Moving from client-side to server-side apply, as upstream's API server eases it for
//! kubectl: `kubectl apply --server-side` may take over fields that client-side apply set
//! (they are in the last-applied annotation with the value the object still has), and keeps
//! the annotation current on objects that have one, so a later client-side apply still works.
//! kubectl then hands the fields of the manager owning the annotation
//! (`kubectl-client-side-apply`) to its own Apply entry with a JSON patch of managedFields.

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

/// Sets the last-applied annotation of `applied` (the result of kubectl's apply) to the
/// configuration when the live object carries one. The annotation's owner does not change,
/// so kubectl can still find client-side apply's manager by it.
pub(super) fn keep_last_applied(
    live: Option<&Value>,
    config: &Value,
    applied: &mut Value,
    manager: &Manager<'_>,
) {
    if manager.name != KUBECTL || live.and_then(last_applied).is_none() {
        return;
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
    if text.len() > ANNOTATIONS_LIMIT || !applied["metadata"].is_object() {
        return;
    }
    if !applied["metadata"]["annotations"].is_object() {
        applied["metadata"]["annotations"] = serde_json::json!({});
    }
    applied["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
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
    let allowed = applied_set.difference(&differing);
    let remaining: Vec<Conflict> =
        conflicts.iter().filter(|c| !allowed.contains(&c.path)).cloned().collect();
    if remaining.is_empty() { Ok(()) } else { Err(remaining) }
}
