//! Workloads that keep pods running: Deployments, ReplicaSets, ReplicationControllers,
//! StatefulSets, DaemonSets and ControllerRevisions.

use serde_json::Value;

use super::meta::{label_selector, labels, selector_is_empty, selector_matches};
use super::pod::pod_template_spec;
use super::*;

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

pub(super) fn deployment(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    nonnegative(spec, "replicas", "spec.replicas", errs);
    workload_selector(spec, "deployment", errs);
    long_running_template(spec, "Deployment", errs);
    deployment_strategy(&spec["strategy"], errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs);
    if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64() {
        nonnegative(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", errs);
        if deadline <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                &Value::from(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

pub(super) fn replica_set(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    // Upstream's ReplicaSet validation reuses the Deployment's wording.
    workload_selector(spec, "deployment", errs);
    long_running_template(spec, "ReplicaSet", errs);
}

pub(super) fn replication_controller(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    let selector = map(spec, "selector");
    if selector.is_none_or(|s| s.is_empty()) {
        errs.push(required("spec.selector", ""));
    }
    labels(selector, "spec.selector", errs);
    let template = &spec["template"];
    if !template.is_object() {
        errs.push(required("spec.template", ""));
        return;
    }
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        let wanted = crate::selector::LabelSelector::from_labels_map(selector);
        if !wanted.matches_object(template) {
            errs.push(invalid(
                "spec.template.metadata.labels",
                &template["metadata"]["labels"],
                SELECTOR_MISMATCH,
            ));
        }
    }
    pod_template_spec(template, "spec.template", errs);
    always_restart(spec, errs);
    if is_set(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
}

pub(super) fn stateful_set(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    match string(spec, "podManagementPolicy") {
        "" => errs.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid_str(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    match string(strategy, "type") {
        "" => errs.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if is_set(strategy, "rollingUpdate") {
                errs.push(invalid(
                    "spec.updateStrategy.rollingUpdate",
                    &strategy["rollingUpdate"],
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let rolling = &strategy["rollingUpdate"];
            nonnegative(rolling, "partition", "spec.updateStrategy.rollingUpdate.partition", errs);
            if let Some(max) = rolling.get("maxUnavailable").filter(|m| !m.is_null()) {
                let path = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                int_or_percent(max, path, true, errs);
                if is_zero_int_or_percent(max) {
                    errs.push(invalid(path, max, "must be greater than 0"));
                }
            }
        }
        _ => errs.push(invalid(
            "spec.updateStrategy",
            strategy,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs);
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(&spec["ordinals"], "start", "spec.ordinals.start", errs);
    workload_selector(spec, "statefulset", errs);
    long_running_template(spec, "StatefulSet", errs);
}

pub(super) fn daemon_set(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    workload_selector(spec, "daemonset", errs);
    pod_template_spec(&spec["template"], "spec.template", errs);
    always_restart(spec, errs);
    if let Some(deadline) =
        spec["template"]["spec"].get("activeDeadlineSeconds").filter(|d| !d.is_null())
    {
        errs.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            deadline,
            "activeDeadlineSeconds must be nil for daemonset",
        ));
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(spec, "templateGeneration", "spec.templateGeneration", errs);
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs);
    let strategy = &spec["updateStrategy"];
    match string(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let rolling = &strategy["rollingUpdate"];
            if !rolling.is_object() {
                errs.push(required(
                    "spec.updateStrategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                ));
            } else {
                rolling_update(rolling, "spec.updateStrategy.rollingUpdate", errs);
            }
        }
        other => errs.push(not_supported(
            "spec.updateStrategy",
            &Value::from(other),
            &["OnDelete", "RollingUpdate"],
        )),
    }
}

pub(super) fn controller_revision(object: &Value, errs: &mut Vec<Cause>) {
    if !is_set(object, "data") {
        errs.push(required("data", "data is mandatory"));
    }
    nonnegative(object, "revision", "revision", errs);
}

/// A workload's `spec.selector`: present, valid, not empty, and matching the template.
fn workload_selector(spec: &Value, kind: &str, errs: &mut Vec<Cause>) {
    let selector = &spec["selector"];
    if !selector.is_object() {
        errs.push(required("spec.selector", ""));
        return;
    }
    label_selector(selector, "spec.selector", errs);
    if selector_is_empty(selector) {
        errs.push(invalid(
            "spec.selector",
            selector,
            &format!("empty selector is invalid for {kind}"),
        ));
        return;
    }
    let template_labels = &spec["template"]["metadata"]["labels"];
    if selector_matches(selector, template_labels) == Some(false) {
        errs.push(invalid("spec.template.metadata.labels", template_labels, SELECTOR_MISMATCH));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` minus the selector: a template whose pods restart
/// forever and have no deadline.
fn long_running_template(spec: &Value, kind: &str, errs: &mut Vec<Cause>) {
    let template = &spec["template"];
    if !template.is_object() {
        errs.push(required("spec.template", ""));
        return;
    }
    pod_template_spec(template, "spec.template", errs);
    always_restart(spec, errs);
    if is_set(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

fn always_restart(spec: &Value, errs: &mut Vec<Cause>) {
    let policy = string(&spec["template"]["spec"], "restartPolicy");
    if !policy.is_empty() && policy != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            &Value::from(policy),
            &["Always"],
        ));
    }
}

fn deployment_strategy(strategy: &Value, errs: &mut Vec<Cause>) {
    match string(strategy, "type") {
        "Recreate" => {
            if is_set(strategy, "rollingUpdate") {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let rolling = &strategy["rollingUpdate"];
            if !rolling.is_object() {
                errs.push(required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                ));
            } else {
                rolling_update(rolling, "spec.strategy.rollingUpdate", errs);
            }
        }
        _ => errs.push(not_supported("spec.strategy", strategy, &["Recreate", "RollingUpdate"])),
    }
}

/// maxUnavailable and maxSurge: non-negative, not both zero, maxUnavailable at most 100%.
fn rolling_update(rolling: &Value, path: &str, errs: &mut Vec<Cause>) {
    let unavailable = rolling.get("maxUnavailable").unwrap_or(&Value::Null);
    let surge = rolling.get("maxSurge").unwrap_or(&Value::Null);
    let unavailable_path = child(path, "maxUnavailable");
    int_or_percent(unavailable, &unavailable_path, true, errs);
    int_or_percent(surge, &child(path, "maxSurge"), false, errs);
    let zero = |v: &Value| v.is_null() || is_zero_int_or_percent(v);
    if zero(unavailable) && zero(surge) {
        errs.push(invalid(&unavailable_path, unavailable, "may not be 0 when `maxSurge` is 0"));
    }
}

/// `ValidateStatefulSetUpdate`: only some of the spec may change.
pub(super) fn stateful_set_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    let mut munged = new["spec"].clone();
    if let Some(munged) = munged.as_object_mut() {
        for field in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match old["spec"].get(field) {
                Some(v) => munged.insert(field.to_owned(), v.clone()),
                None => munged.remove(field),
            };
        }
    }
    if !semantically_equal(&munged, &old["spec"]) {
        errs.push(forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}
