//! Server-side apply and field ownership, with the semantics of upstream's
//! structured-merge-diff as the API server runs it.
//!
//! Every write records which fields its manager set in `metadata.managedFields`. An update
//! takes over the fields it changed; an apply owns exactly the fields of its configuration,
//! merges them into the live object by the schema's list and map types, removes the fields it
//! applied before and no manager owns any more, and fails with conflicts when it would change
//! a field another manager owns (unless forced, which takes the field over).

mod csa;
pub mod fieldset;
mod managed;
mod typed;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use fieldset::FieldSet;
pub use managed::{Entry, ManagedFields, Manager, Operation};

use crate::Resource;
use crate::strategic::schema::{FieldInfo, schema};
use typed::{Comparison, Typed};

/// Metadata the server sets: never owned by a manager.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// One field another manager owns and an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager, as upstream prints it (`"kubectl" using apps/v1`).
    pub manager: String,
    /// The field, as upstream prints it (`.spec.replicas`).
    pub field: String,
    /// The field's path elements (`f:spec`, `f:replicas`).
    pub path: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Upstream's message for a failed apply: one conflict on one line, several grouped by
/// manager.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for c in conflicts.iter().filter(|c| c.manager == manager) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// What one endpoint writes: the resource, and the subresource if any.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub resource: &'a Resource,
    pub subresource: Option<&'a str>,
}

impl Scope<'_> {
    /// The schema of the resource's objects; undescribed kinds are walked as upstream walks
    /// unknown types (maps granular, lists atomic).
    fn root(&self) -> FieldInfo<'static> {
        crate::strategic::definition_for(self.resource, None)
            .and_then(|name| schema().shape_of(name))
            .map_or_else(FieldInfo::any, FieldInfo::of)
    }

    /// Whether managers at this endpoint own field `key` of the map at `parent`: not the type
    /// or server metadata; only `status` through the status subresource, no `status` through
    /// the main resource when a status subresource owns it.
    fn tracks(&self, parent: &[String], key: &str) -> bool {
        match parent {
            [] => match (self.subresource, key) {
                (_, "apiVersion" | "kind") => false,
                (Some("status"), field) => field == "status",
                (_, "status") => self.resource.subresource("status").is_none(),
                _ => true,
            },
            [metadata] if metadata == "f:metadata" => !SERVER_METADATA.contains(&key),
            _ => true,
        }
    }

    /// The part of an object whose fields managers at this endpoint own (see `tracks`).
    fn tracked(&self, object: &Value) -> Value {
        let Some(map) = object.as_object() else { return Value::Object(Map::new()) };
        let mut out = Map::with_capacity(map.len());
        for (key, value) in map {
            let keep = match (self.subresource, key.as_str()) {
                (_, "apiVersion" | "kind") => false,
                (Some("status"), field) => field == "status",
                (_, "status") => self.resource.subresource("status").is_none(),
                _ => true,
            };
            if !keep {
                continue;
            }
            if key == "metadata"
                && let Value::Object(meta) = value
            {
                let meta: Map<String, Value> = meta
                    .iter()
                    .filter(|(k, _)| !SERVER_METADATA.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.insert(key.clone(), Value::Object(meta));
                continue;
            }
            out.insert(key.clone(), value.clone());
        }
        Value::Object(out)
    }
}

fn typed() -> Typed<'static> {
    Typed { schema: schema() }
}

fn compare(scope: &Scope<'_>, root: FieldInfo<'static>, old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    let tracks = |parent: &[String], key: &str| scope.tracks(parent, key);
    typed().compare_tracked(Some(old), Some(new), root, &tracks, &mut Vec::new(), &mut out);
    out
}

fn set_managed_fields(object: &mut Value, managed: &ManagedFields) {
    if let Value::Object(map) = object {
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = meta {
            meta.insert("managedFields".into(), managed.to_json());
        }
    }
}

/// Records an update (create, PUT, non-apply patch) of `live` into `new` by `manager` in
/// `new`'s managed fields: the manager takes over every field it added or changed, and fields
/// it removed are no longer anyone's. `live` is `None` on create. The managed fields the
/// client sent in `new`, if any, are the starting point, as upstream takes them.
pub fn update(scope: Scope<'_>, live: Option<&Value>, new: &mut Value, manager: &Manager<'_>) {
    let root = scope.root();
    let mut managed = ManagedFields::of(new);
    // On create, the fields every Go object has (metadata, spec, status) count as present,
    // so their own paths are not recorded as added, as upstream's records read.
    let skeleton = serde_json::json!({"metadata": {}, "spec": {}, "status": {}});
    let mut comparison = compare(&scope, root, live.unwrap_or(&skeleton), new);
    let changed = comparison.changed();
    for entry in managed.entries.iter_mut().filter(|e| !e.is(manager, Operation::Update)) {
        entry.fields = entry.fields.difference(&changed).difference(&comparison.removed);
    }
    let mut own = managed
        .find(manager, Operation::Update)
        .map(|e| e.fields.difference(&comparison.removed))
        .unwrap_or_default();
    own.union(&changed);
    managed.set(manager, Operation::Update, own);
    managed.drop_empty();
    managed.cap_updates();
    set_managed_fields(new, &managed);
}

/// Applies `config` by `manager` to `live` (`None`: the object does not exist yet) and
/// returns the object to store, with its managed fields. Without `force`, changing a field
/// another manager owns fails with the conflicts; with it, the applier takes the field over.
pub fn apply(
    scope: Scope<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &Manager<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    if config.get("metadata").and_then(|m| m.get("managedFields")).is_some_and(|m| !m.is_null()) {
        return Err(ApplyError::Invalid {
            path: "metadata.managedFields".into(),
            reason: "must be nil".into(),
        });
    }
    let mut applied = match attempt(scope, live, config, manager, force) {
        Err(ApplyError::Conflicts(conflicts)) if !force => {
            match csa::allowed_conflicts(scope, live, manager, &conflicts) {
                Ok(()) => attempt(scope, live, config, manager, true)?,
                Err(remaining) => return Err(ApplyError::Conflicts(remaining)),
            }
        }
        result => result?,
    };
    csa::keep_last_applied(live, config, &mut applied, manager);
    Ok(applied)
}

fn attempt(
    scope: Scope<'_>,
    live: Option<&Value>,
    config: &Value,
    manager: &Manager<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    let root = scope.root();
    let typed = typed();
    let empty = Value::Object(Map::new());
    let live = live.unwrap_or(&empty);
    let mut merged = typed.merge(Some(live), config, root, &mut Vec::new())?;
    let mut applied = FieldSet::new();
    typed.collect(&scope.tracked(config), root, &mut applied);
    if applied.child("f:metadata").is_some_and(FieldSet::is_empty) {
        // Name and namespace alone own nothing: no empty `f:metadata` is recorded.
        let mut bare = FieldSet::new();
        bare.insert(&["f:metadata"]);
        applied = applied.difference(&bare);
    }

    let mut managed = ManagedFields::of(live);
    let last = managed.find(manager, Operation::Apply).map(|e| e.fields.clone());
    managed.set(manager, Operation::Apply, applied);
    if let Some(last) = last {
        let owned = managed.owned();
        typed.prune(&mut merged, &last, Some(&owned), root, 0);
    }

    let mut comparison = compare(&scope, root, live, &merged);
    let changed = comparison.changed();
    let mut conflicts = Vec::new();
    for entry in managed.entries.iter().filter(|e| !e.is(manager, Operation::Apply)) {
        let taken = entry.fields.intersection(&changed);
        for path in taken.paths() {
            conflicts.push(Conflict {
                manager: entry.describe(),
                field: fieldset::render_path(&path),
                path: path.iter().map(|e| (*e).to_owned()).collect(),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for entry in managed.entries.iter_mut().filter(|e| !e.is(manager, Operation::Apply)) {
        entry.fields = entry.fields.difference(&changed).difference(&comparison.removed);
    }
    managed.drop_empty();
    managed.cap_updates();
    set_managed_fields(&mut merged, &managed);
    Ok(merged)
}
