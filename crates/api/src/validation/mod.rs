//! Upstream's validation for every served kind: the `Validate*` functions the API server runs
//! on create and update after defaulting and admission, as lists of field causes worded like
//! upstream's `field.Error`s.
//!
//! Objects stay `serde_json::Value` and have already passed the decoder's type check, so a
//! field of an unexpected JSON type is skipped here rather than reported twice.

mod apps;
mod batch;
mod certificates;
mod config;
mod coordination;
mod discovery;
mod events;
mod meta;
mod names;
mod namespace;
mod node;
mod pod;
mod policy;
mod quota;
mod rbac;
mod scheduling;
mod service;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::Resource;

pub use names::{dns1035_label_errors, dns1123_label_errors};

/// One offending field, as a `metav1.StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, …
    pub reason: &'static str,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// upstream's `ErrorBody()`: `Invalid value: "x": detail`.
    pub message: String,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The causes that make a new object invalid; empty when it may be stored.
pub fn validate_create(resource: &Resource, object: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    validate(resource, object, &mut errs);
    errs
}

/// The causes that make an update invalid: the new object's own problems plus changes to
/// immutable fields. `subresource` is `status` or `approval` (only status and metadata are
/// checked), another subresource (metadata only) or `None` for the main resource.
pub fn validate_update(
    resource: &Resource,
    old: &Value,
    new: &Value,
    subresource: Option<&str>,
) -> Vec<Cause> {
    let mut errs = Vec::new();
    match subresource {
        None => {
            validate(resource, new, &mut errs);
            update(resource, old, new, &mut errs);
        }
        Some("status" | "approval") => {
            meta::object_meta(new, resource.namespaced, names::rule_for(resource), &mut errs);
            status(resource, new, &mut errs);
        }
        Some(_) => {
            meta::object_meta(new, resource.namespaced, names::rule_for(resource), &mut errs)
        }
    }
    errs
}

fn validate(resource: &Resource, object: &Value, errs: &mut Vec<Cause>) {
    meta::object_meta(object, resource.namespaced, names::rule_for(resource), errs);
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::pod(object, errs),
        ("", "PodTemplate") => pod::pod_template(object, errs),
        ("", "ReplicationController") => apps::replication_controller(object, errs),
        ("", "Service") => service::service(object, errs),
        ("", "Endpoints") => service::endpoints(object, errs),
        ("", "ConfigMap") => config::config_map(object, errs),
        ("", "Secret") => config::secret(object, errs),
        ("", "Namespace") => namespace::namespace(object, errs),
        ("", "Node") => node::node(object, errs),
        ("", "ResourceQuota") => quota::resource_quota(object, errs),
        ("", "LimitRange") => quota::limit_range(object, errs),
        ("", "Event") | ("events.k8s.io", "Event") => events::event(resource.group, object, errs),
        ("apps", "Deployment") => apps::deployment(object, errs),
        ("apps", "ReplicaSet") => apps::replica_set(object, errs),
        ("apps", "StatefulSet") => apps::stateful_set(object, errs),
        ("apps", "DaemonSet") => apps::daemon_set(object, errs),
        ("apps", "ControllerRevision") => apps::controller_revision(object, errs),
        ("batch", "Job") => batch::job(object, errs),
        ("batch", "CronJob") => batch::cron_job(object, errs),
        ("coordination.k8s.io", "Lease") => coordination::lease(object, errs),
        ("discovery.k8s.io", "EndpointSlice") => discovery::endpoint_slice(object, errs),
        ("scheduling.k8s.io", "PriorityClass") => scheduling::priority_class(object, errs),
        ("policy", "PodDisruptionBudget") => policy::pod_disruption_budget(object, errs),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            certificates::certificate_signing_request(object, errs)
        }
        ("rbac.authorization.k8s.io", "Role") => rbac::role(object, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRole") => rbac::role(object, false, errs),
        ("rbac.authorization.k8s.io", "RoleBinding") => rbac::binding(object, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => rbac::binding(object, false, errs),
        // ServiceAccount: nothing beyond its metadata.
        _ => {}
    }
}

/// Rules that compare the stored object with its replacement.
fn update(resource: &Resource, old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    match (resource.group, resource.kind) {
        ("", "Pod") => pod::pod_update(old, new, errs),
        ("", "ReplicationController") => {}
        ("", "Service") => service::service_update(old, new, errs),
        ("", "ConfigMap") => config::config_map_update(old, new, errs),
        ("", "Secret") => config::secret_update(old, new, errs),
        ("", "Node") => node::node_update(old, new, errs),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            immutable(&old["spec"]["selector"], &new["spec"]["selector"], "spec.selector", errs)
        }
        ("apps", "StatefulSet") => apps::stateful_set_update(old, new, errs),
        ("apps", "ControllerRevision") => immutable(&old["data"], &new["data"], "data", errs),
        ("batch", "Job") => batch::job_update(old, new, errs),
        ("discovery.k8s.io", "EndpointSlice") => {
            immutable(&old["addressType"], &new["addressType"], "addressType", errs)
        }
        ("scheduling.k8s.io", "PriorityClass") => scheduling::priority_class_update(old, new, errs),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            rbac::binding_update(old, new, errs)
        }
        _ => {}
    }
}

/// Status-subresource rules: counts that cannot be negative.
fn status(resource: &Resource, object: &Value, errs: &mut Vec<Cause>) {
    let counts: &[&str] = match (resource.group, resource.kind) {
        ("apps", "Deployment") => &[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "observedGeneration",
            "collisionCount",
        ],
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            &["replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"]
        }
        ("apps", "StatefulSet") => &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
        ],
        ("apps", "DaemonSet") => &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
        ],
        ("batch", "Job") => &["active", "succeeded", "failed"],
        ("policy", "PodDisruptionBudget") => {
            &["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"]
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            certificates::conditions(object, errs);
            &[]
        }
        _ => &[],
    };
    for count in counts {
        nonnegative(&object["status"], count, &format!("status.{count}"), errs);
    }
}

// ---------------------------------------------------------------------------------------------
// Causes, worded as upstream's field.Error constructors word them.

/// How upstream prints a bad value: strings quoted, numbers and booleans bare, string maps as
/// Go maps, anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => crate::selector::go_quote(s),
        Value::Null => "null".to_owned(),
        Value::Object(map) if map.values().all(Value::is_string) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        crate::selector::go_quote(k),
                        crate::selector::go_quote(v.as_str().unwrap_or_default())
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

fn cause(reason: &'static str, field: &str, message: String) -> Cause {
    Cause { reason, field: field.to_owned(), message }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() { head } else { format!("{head}: {detail}") }
}

fn required(field: &str, detail: &str) -> Cause {
    cause("FieldValueRequired", field, with_detail("Required value".into(), detail))
}

fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    cause(
        "FieldValueInvalid",
        field,
        with_detail(format!("Invalid value: {}", shown(value)), detail),
    )
}

fn invalid_str(field: &str, value: &str, detail: &str) -> Cause {
    invalid(field, &Value::String(value.to_owned()), detail)
}

fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Cause {
    let quoted: Vec<String> = supported.iter().map(|s| crate::selector::go_quote(s)).collect();
    let detail = format!("supported values: {}", quoted.join(", "));
    cause(
        "FieldValueNotSupported",
        field,
        with_detail(format!("Unsupported value: {}", shown(value)), &detail),
    )
}

fn duplicate(field: &str, value: &Value) -> Cause {
    cause("FieldValueDuplicate", field, format!("Duplicate value: {}", shown(value)))
}

fn forbidden(field: &str, detail: &str) -> Cause {
    cause("FieldValueForbidden", field, with_detail("Forbidden".into(), detail))
}

fn not_found(field: &str, value: &Value) -> Cause {
    cause("FieldValueNotFound", field, format!("Not found: {}", shown(value)))
}

fn too_long(field: &str, max: usize) -> Cause {
    cause("FieldValueTooLong", field, format!("Too long: may not be more than {max} bytes"))
}

fn too_many(field: &str, actual: usize, max: usize) -> Cause {
    cause("FieldValueTooMany", field, format!("Too many: {actual}: must have at most {max} items"))
}

// ---------------------------------------------------------------------------------------------
// Reading objects and common checks.

fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// A string field; absent, null and non-strings read as "" like Go's zero value.
fn string<'a>(object: &'a Value, field: &str) -> &'a str {
    object.get(field).and_then(Value::as_str).unwrap_or_default()
}

fn list<'a>(object: &'a Value, field: &str) -> &'a [Value] {
    object.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn map<'a>(object: &'a Value, field: &str) -> Option<&'a Map<String, Value>> {
    object.get(field).and_then(Value::as_object)
}

fn is_set(object: &Value, field: &str) -> bool {
    object.get(field).is_some_and(|v| !v.is_null())
}

/// `ValidateNonnegativeField` for an integer field, when set.
fn nonnegative(object: &Value, field: &str, path: &str, errs: &mut Vec<Cause>) {
    if let Some(n) = object.get(field).and_then(Value::as_i64)
        && n < 0
    {
        errs.push(invalid(path, &Value::from(n), "must be greater than or equal to 0"));
    }
}

/// An enum field: required when `required`, else checked only when set.
fn one_of(
    object: &Value,
    field: &str,
    path: &str,
    supported: &[&str],
    required_value: bool,
    errs: &mut Vec<Cause>,
) {
    match object.get(field).and_then(Value::as_str) {
        None | Some("") if required_value => errs.push(self::required(path, "")),
        None | Some("") => {}
        Some(value) if supported.contains(&value) => {}
        Some(value) => errs.push(not_supported(path, &Value::from(value), supported)),
    }
}

/// `ValidateImmutableField`: the value may not change.
fn immutable(old: &Value, new: &Value, path: &str, errs: &mut Vec<Cause>) {
    if !semantically_equal(old, new) {
        errs.push(invalid(path, new, "field is immutable"));
    }
}

/// Upstream's `Semantic.DeepEqual` as JSON sees it: null, absent and empty lists or maps are
/// the same.
fn semantically_equal(a: &Value, b: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = a.keys().chain(b.keys());
            keys.into_iter().all(|k| {
                let (x, y) = (a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null));
                semantically_equal(x, y)
            })
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| semantically_equal(x, y))
        }
        (a, b) if empty(a) && empty(b) => true,
        (a, b) => a == b,
    }
}

/// An int-or-string port: a number in 1–65535 or an IANA service name.
fn port_num_or_name(value: &Value, path: &str, errs: &mut Vec<Cause>) {
    match value {
        Value::Number(n) => {
            if let Some(msg) = names::port_number_error(n.as_i64().unwrap_or(-1)) {
                errs.push(invalid(path, value, msg));
            }
        }
        Value::String(s) => {
            for msg in names::port_name_errors(s) {
                errs.push(invalid(path, value, msg));
            }
        }
        _ => errs.push(invalid(path, value, "must be an integer or string")),
    }
}

/// `ValidatePositiveIntOrPercent` and, when `at_most_100`, `IsNotMoreThan100Percent`.
fn int_or_percent(value: &Value, path: &str, at_most_100: bool, errs: &mut Vec<Cause>) {
    match value {
        Value::Null => {}
        Value::Number(n) => {
            if n.as_i64().is_some_and(|n| n < 0) {
                errs.push(invalid(path, value, "must be greater than or equal to 0"));
            }
        }
        Value::String(s) => match percent(s) {
            None => errs.push(invalid(
                path,
                value,
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
            Some(p) if at_most_100 && p > 100 => {
                errs.push(invalid(path, value, "must not be greater than 100%"))
            }
            Some(_) => {}
        },
        _ => errs.push(invalid(path, value, "must be an integer or percentage (e.g '5%')")),
    }
}

fn percent(text: &str) -> Option<u64> {
    let digits = text.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().or(Some(u64::MAX))
}

/// The value an int-or-percent stands for when upstream only asks whether it is zero.
fn is_zero_int_or_percent(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => percent(s) == Some(0),
        _ => false,
    }
}
