//! Upstream's defaulting for every served kind: the `SetDefaults_*` functions and declarative
//! `+default` markers the API server applies whenever it decodes a body, plus the fields
//! `PrepareForCreate` fills in once a new object has its name and uid.
//!
//! Objects stay `serde_json::Value`. A field of the wrong JSON type is skipped, never replaced:
//! type errors are reported by the decoder's type check, and defaulting must not hide them.

mod core_v1;
mod image;
mod pod;
mod rbac;
mod scheduling;
mod service;
mod workloads;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::Resource;

/// Fills in what upstream defaults when it decodes an object of `resource` (create, update,
/// patch): never changes a value the client set, except where upstream does too (a
/// Namespace's `kubernetes.io/metadata.name` label, a Service's `sessionAffinityConfig` when
/// affinity is `None`).
pub fn apply(resource: &Resource, object: &mut Value) {
    let Some(object) = object.as_object_mut() else { return };
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::pod(object),
        ("", "PodTemplate") => workloads::pod_template(object),
        ("", "ReplicationController") => workloads::replication_controller(object),
        ("", "Service") => service::service(object),
        ("", "Endpoints") => service::endpoints(object),
        ("", "Secret") => core_v1::secret(object),
        ("", "Namespace") => core_v1::namespace(object),
        ("", "Node") => core_v1::node(object),
        ("", "LimitRange") => core_v1::limit_range(object),
        ("apps", "Deployment") => workloads::deployment(object),
        ("apps", "ReplicaSet") => workloads::replica_set(object),
        ("apps", "StatefulSet") => workloads::stateful_set(object),
        ("apps", "DaemonSet") => workloads::daemon_set(object),
        ("batch", "Job") => workloads::job(object),
        ("batch", "CronJob") => workloads::cron_job(object),
        ("discovery.k8s.io", "EndpointSlice") => service::endpoint_slice(object),
        ("scheduling.k8s.io", "PriorityClass") => scheduling::priority_class(object),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            rbac::binding(object)
        }
        // ConfigMap, ServiceAccount, Event, ResourceQuota, ControllerRevision, Lease,
        // PodDisruptionBudget, CertificateSigningRequest, Role, ClusterRole: upstream defaults
        // nothing that shows in JSON.
        _ => {}
    }
}

/// The rest of upstream's `PrepareForCreate` that sets fields, for a new object that already
/// has its final `metadata.name`, `uid` and `creationTimestamp`: a Job's generated selector, a
/// Namespace's name label (upstream's Canonicalize, for generateName), a Pod's
/// SchedulingGated condition and merged `matchLabelKeys`. Run after [`apply`] and after the
/// server has reset `status`, which the Pod condition lives in.
pub fn prepare_for_create(resource: &Resource, object: &mut Value) {
    let Some(object) = object.as_object_mut() else { return };
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::prepare_for_create(object),
        ("", "Namespace") => core_v1::label_with_name(object),
        ("batch", "Job") => workloads::generate_job_selector(object),
        _ => {}
    }
}

/// A field of a Go struct type (not a pointer): upstream always has one to default, so an
/// absent or null field becomes `{}`. `None` when the field holds something else.
fn struct_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let field = map.entry(key).or_insert(Value::Null);
    if field.is_null() {
        *field = Value::Object(Map::new());
    }
    field.as_object_mut()
}

/// A field of a Go pointer-to-struct type: defaulted only when the client sent one.
fn pointer_field<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key)?.as_object_mut()
}

/// The object items of a list field; other items and non-list fields are skipped.
fn items<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Whether a field is unset as upstream's decoder sees it: absent or null.
fn is_unset(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).is_none_or(Value::is_null)
}

/// A Go `string` field: absent, null and "" all decode to "", which upstream defaults.
fn default_string(map: &mut Map<String, Value>, key: &str, value: &str) {
    if is_unset(map, key) || map.get(key).and_then(Value::as_str) == Some("") {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// A Go pointer field (`*int32`, `*bool`, `*string`): defaulted only when absent or null.
fn default_pointer(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    if is_unset(map, key) {
        map.insert(key.to_owned(), value.into());
    }
}

/// A Go `int32` field whose zero value upstream replaces (probe timings).
fn default_nonzero(map: &mut Map<String, Value>, key: &str, value: i64) {
    if is_unset(map, key) || map.get(key).and_then(Value::as_i64) == Some(0) {
        map.insert(key.to_owned(), Value::from(value));
    }
}

/// A non-empty object field, as upstream's `len(map) > 0` sees it.
fn non_empty_object<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    map.get(key).and_then(Value::as_object).filter(|m| !m.is_empty())
}

/// Whether a map field is empty as Go sees it: absent, null or `{}` (a non-map is not empty).
fn is_empty_map(map: &Map<String, Value>, key: &str) -> bool {
    match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}
