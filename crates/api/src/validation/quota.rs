//! ResourceQuotas and LimitRanges: resource names, quantities, scopes, and the ordering
//! min ≤ defaultRequest ≤ default ≤ max.

use serde_json::Value;

use super::meta::label_name;
use super::*;
use crate::quantity::{format_millis, parse_millis};

const QUOTA_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];
const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// A quantity that parses and is not negative, in milli-units.
fn quantity(value: &Value, path: &str, errs: &mut Vec<Cause>) -> Option<i128> {
    let text = value.as_str().unwrap_or_default();
    match parse_millis(text) {
        None => {
            errs.push(invalid_str(
                path,
                text,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
            None
        }
        Some(m) if m < 0 => {
            errs.push(invalid_str(path, text, "must be greater than or equal to 0"));
            None
        }
        Some(m) => Some(m),
    }
}

pub(super) fn resource_quota(object: &Value, errs: &mut Vec<Cause>) {
    for (name, value) in map(&object["spec"], "hard").into_iter().flatten() {
        let path = key("spec.hard", name);
        if name.contains('/') {
            label_name(name, &path, errs);
        } else if !STANDARD_QUOTA_RESOURCES.contains(&name.as_str())
            && !name.starts_with("hugepages-")
            && !name.starts_with("requests.hugepages-")
        {
            errs.push(invalid_str(&path, name, "must be a standard resource for quota"));
        }
        quantity(value, &path, errs);
    }
    for (section, field) in [("status", "hard"), ("status", "used")] {
        for (name, value) in map(&object[section], field).into_iter().flatten() {
            quantity(value, &key(&format!("{section}.{field}"), name), errs);
        }
    }
    let scopes: Vec<&str> =
        list(&object["spec"], "scopes").iter().filter_map(Value::as_str).collect();
    for scope in &scopes {
        if !QUOTA_SCOPES.contains(scope) {
            errs.push(invalid("spec.scopes", &object["spec"]["scopes"], "unsupported scope"));
        }
    }
    for (a, b) in [("Terminating", "NotTerminating"), ("BestEffort", "NotBestEffort")] {
        if scopes.contains(&a) && scopes.contains(&b) {
            errs.push(invalid("spec.scopes", &object["spec"]["scopes"], "conflicting scopes"));
        }
    }
}

pub(super) fn limit_range(object: &Value, errs: &mut Vec<Cause>) {
    let mut types = Vec::new();
    for (i, limit) in list(&object["spec"], "limits").iter().enumerate() {
        let path = index("spec.limits", i);
        let kind = string(limit, "type");
        if !kind.contains('/') && !matches!(kind, "Pod" | "Container" | "PersistentVolumeClaim") {
            errs.push(invalid_str(
                &child(&path, "type"),
                kind,
                "must be a standard limit type or fully qualified",
            ));
        }
        if types.contains(&kind) {
            errs.push(duplicate(&child(&path, "type"), &Value::from(kind)));
        }
        types.push(kind);
        if kind == "Pod" {
            for field in ["default", "defaultRequest"] {
                if map(limit, field).is_some_and(|m| !m.is_empty()) {
                    errs.push(forbidden(
                        &child(&path, field),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
        }
        let read = |field: &str, errs: &mut Vec<Cause>| -> Vec<(String, i128)> {
            map(limit, field)
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| {
                    let at = key(&child(&path, field), name);
                    quantity(value, &at, errs).map(|m| (name.clone(), m))
                })
                .collect()
        };
        let max = read("max", errs);
        let min = read("min", errs);
        let default = read("default", errs);
        let default_request = read("defaultRequest", errs);
        let ratio = read("maxLimitRequestRatio", errs);
        let get = |values: &[(String, i128)], name: &str| {
            values.iter().find(|(n, _)| n == name).map(|(_, m)| *m)
        };
        let mut names: Vec<&String> = max
            .iter()
            .chain(&min)
            .chain(&default)
            .chain(&default_request)
            .map(|(n, _)| n)
            .collect();
        names.sort();
        names.dedup();
        let f = format_millis;
        for name in names {
            let (mn, mx, d, dr) = (
                get(&min, name),
                get(&max, name),
                get(&default, name),
                get(&default_request, name),
            );
            let mut check = |field: &str, value: Option<i128>, ok: bool, message: String| {
                if let Some(value) = value.filter(|_| !ok) {
                    errs.push(invalid_str(&key(&child(&path, field), name), &f(value), &message));
                }
            };
            if let (Some(a), Some(b)) = (mn, mx) {
                check(
                    "min",
                    mn,
                    a <= b,
                    format!("min value {} is greater than max value {}", f(a), f(b)),
                );
            }
            if let (Some(a), Some(b)) = (mn, dr) {
                check(
                    "defaultRequest",
                    dr,
                    a <= b,
                    format!("min value {} is greater than default request value {}", f(a), f(b)),
                );
            }
            if let (Some(a), Some(b)) = (dr, mx) {
                check(
                    "defaultRequest",
                    dr,
                    a <= b,
                    format!("default request value {} is greater than max value {}", f(a), f(b)),
                );
            }
            if let (Some(a), Some(b)) = (dr, d) {
                check(
                    "defaultRequest",
                    dr,
                    a <= b,
                    format!(
                        "default request value {} is greater than default limit value {}",
                        f(a),
                        f(b)
                    ),
                );
            }
            if let (Some(a), Some(b)) = (mn, d) {
                check(
                    "default",
                    d,
                    a <= b,
                    format!("min value {} is greater than default value {}", f(a), f(b)),
                );
            }
            if let (Some(a), Some(b)) = (d, mx) {
                check(
                    "default",
                    d,
                    a <= b,
                    format!("default value {} is greater than max value {}", f(a), f(b)),
                );
            }
        }
        for (name, r) in &ratio {
            if *r < 1000 {
                errs.push(invalid_str(
                    &key(&child(&path, "maxLimitRequestRatio"), name),
                    &f(*r),
                    &format!("ratio {} is less than 1", f(*r)),
                ));
            }
        }
    }
}
