//! ObjectMeta (name, generateName, namespace, labels, annotations, ownerReferences,
//! finalizers) and label selectors, as apimachinery's `ValidateObjectMeta` and
//! `ValidateLabelSelector` check them.

use serde_json::{Map, Value};

use super::names::{self, NameRule};
use super::*;
use crate::selector::{label_value_errors, qualified_name_errors};

/// Upstream's limit on all annotations of one object together.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Finalizers without a domain that upstream knows.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

pub(super) fn object_meta(object: &Value, namespaced: bool, rule: NameRule, errs: &mut Vec<Cause>) {
    let meta = &object["metadata"];
    let generate_name = string(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in names::name_errors(rule, generate_name, true) {
            errs.push(invalid_str("metadata.generateName", generate_name, &msg));
        }
    }
    let name = string(meta, "name");
    if name.is_empty() {
        errs.push(required("metadata.name", "name or generateName is required"));
    } else {
        for msg in names::name_errors(rule, name, false) {
            errs.push(invalid_str("metadata.name", name, &msg));
        }
    }
    let namespace = string(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(required("metadata.namespace", ""));
        } else {
            for msg in names::dns1123_label_errors(namespace) {
                errs.push(invalid_str("metadata.namespace", namespace, &msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    nonnegative(meta, "generation", "metadata.generation", errs);
    labels(map(meta, "labels"), "metadata.labels", errs);
    annotations(map(meta, "annotations"), "metadata.annotations", errs);
    owner_references(list(meta, "ownerReferences"), errs);
    finalizers(list(meta, "finalizers"), "metadata.finalizers", errs);
}

/// `ValidateLabelName`: a qualified name.
pub(super) fn label_name(key: &str, path: &str, errs: &mut Vec<Cause>) {
    for msg in qualified_name_errors(key) {
        errs.push(invalid_str(path, key, &msg));
    }
}

/// `ValidateLabels`: qualified keys and label values, all reported at the map's path.
pub(super) fn labels(labels: Option<&Map<String, Value>>, path: &str, errs: &mut Vec<Cause>) {
    for (k, v) in labels.into_iter().flatten() {
        label_name(k, path, errs);
        let value = v.as_str().unwrap_or_default();
        for msg in label_value_errors(value) {
            errs.push(invalid_str(path, value, &msg));
        }
    }
}

/// `ValidateAnnotations`: qualified keys (case-insensitively) and 256 KiB in total.
pub(super) fn annotations(
    annotations: Option<&Map<String, Value>>,
    path: &str,
    errs: &mut Vec<Cause>,
) {
    let mut total = 0;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in qualified_name_errors(&k.to_lowercase()) {
            errs.push(invalid_str(path, k, &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > ANNOTATIONS_LIMIT {
        errs.push(too_long(path, ANNOTATIONS_LIMIT));
    }
}

fn owner_references(references: &[Value], errs: &mut Vec<Cause>) {
    let path = "metadata.ownerReferences";
    let mut controller: Option<&str> = None;
    for reference in references {
        let version = string(reference, "apiVersion").rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            let api_version = string(reference, "apiVersion");
            errs.push(invalid_str(
                &child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for field in ["kind", "name", "uid"] {
            if string(reference, field).is_empty() {
                errs.push(invalid_str(&child(path, field), "", "must not be empty"));
            }
        }
        if reference["controller"] == true {
            let name = string(reference, "name");
            match controller {
                None => controller = Some(name),
                Some(first) => errs.push(invalid(
                    path,
                    &Value::from(references.to_vec()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {name}"
                    ),
                )),
            }
        }
    }
}

/// `ValidateFinalizers` plus core's rule that a finalizer without a domain is a standard one.
pub(super) fn finalizers(finalizers: &[Value], path: &str, errs: &mut Vec<Cause>) {
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for name in &names {
        let problems = qualified_name_errors(name);
        for msg in &problems {
            errs.push(invalid_str(path, name, msg));
        }
        if problems.is_empty() && !name.contains('/') && !STANDARD_FINALIZERS.contains(name) {
            errs.push(invalid_str(
                path,
                name,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(invalid(
            path,
            &Value::from(finalizers.to_vec()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// `ValidateLabelSelector`.
pub(super) fn label_selector(selector: &Value, path: &str, errs: &mut Vec<Cause>) {
    labels(map(selector, "matchLabels"), &child(path, "matchLabels"), errs);
    for (i, expression) in list(selector, "matchExpressions").iter().enumerate() {
        let path = index(&child(path, "matchExpressions"), i);
        let values = list(expression, "values");
        match string(expression, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &child(&path, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &child(&path, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(invalid_str(
                &child(&path, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        label_name(string(expression, "key"), &child(&path, "key"), errs);
        for (j, value) in values.iter().enumerate() {
            let value = value.as_str().unwrap_or_default();
            for msg in label_value_errors(value) {
                errs.push(invalid_str(&index(&child(&path, "values"), j), value, &msg));
            }
        }
    }
}

/// Whether a selector has any requirement (upstream refuses empty workload selectors).
pub(super) fn selector_is_empty(selector: &Value) -> bool {
    map(selector, "matchLabels").is_none_or(Map::is_empty)
        && list(selector, "matchExpressions").is_empty()
}

/// Whether a label selector (`metav1.LabelSelector`) selects a template's labels; `None`
/// when the selector cannot be converted (already reported by [`label_selector`]).
pub(super) fn selector_matches(selector: &Value, labels: &Value) -> Option<bool> {
    let selector = crate::selector::LabelSelector::from_label_selector_json(selector).ok()?;
    let empty = Map::new();
    Some(selector.matches(labels.as_object().unwrap_or(&empty)))
}
