//! rbac.authorization.k8s.io defaulting: a binding's role and its User and Group subjects are
//! in the RBAC API group unless they say otherwise.

use serde_json::{Map, Value};

use super::{default_string, items, struct_field};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A RoleBinding or ClusterRoleBinding.
pub(super) fn binding(binding: &mut Map<String, Value>) {
    if let Some(role_ref) = struct_field(binding, "roleRef") {
        default_string(role_ref, "apiGroup", RBAC_GROUP);
    }
    for subject in items(binding, "subjects") {
        // A ServiceAccount's group is the core group, "", which is already the zero value.
        if matches!(subject.get("kind").and_then(Value::as_str), Some("User" | "Group")) {
            default_string(subject, "apiGroup", RBAC_GROUP);
        }
    }
}
