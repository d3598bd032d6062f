//! Events (core/v1 and events.k8s.io/v1, checked in their stored core form): namespace
//! agreement with the involved object and the reporting fields new-style events need.

use serde_json::Value;

use super::*;

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

pub(super) fn event(group: &str, object: &Value, errs: &mut Vec<Cause>) {
    let namespace = string(&object["metadata"], "namespace");
    let involved = if group.is_empty() { "involvedObject" } else { "regarding" };
    let involved_namespace = string(&object["involvedObject"], "namespace");
    let namespace_path = format!("{involved}.namespace");
    let mismatch =
        || invalid_str(&namespace_path, involved_namespace, "does not match event.namespace");
    let new_style = !string(object, "eventTime").is_empty();
    if !new_style {
        if involved_namespace.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_namespace {
            errs.push(mismatch());
        }
        return;
    }
    if involved_namespace.is_empty() && !matches!(namespace, "default" | "kube-system") {
        errs.push(mismatch());
    }
    let controller_field =
        if group.is_empty() { "reportingComponent" } else { "reportingController" };
    let controller = string(object, "reportingComponent");
    if controller.is_empty() {
        errs.push(required(controller_field, ""));
    } else {
        super::meta::label_name(controller, controller_field, errs);
    }
    let message_field = if group.is_empty() { "message" } else { "note" };
    for (field, path, limit) in [
        ("reportingInstance", "reportingInstance", REPORTING_INSTANCE_LIMIT),
        ("action", "action", ACTION_LIMIT),
        ("reason", "reason", REASON_LIMIT),
        ("message", message_field, NOTE_LIMIT),
    ] {
        if string(object, field).len() > limit {
            errs.push(invalid_str(path, "", &format!("can have at most {limit} characters")));
        }
    }
    for field in ["action", "reason"] {
        if string(object, field).is_empty() {
            errs.push(required(field, ""));
        }
    }
    if !group.is_empty() {
        one_of(object, "type", "type", &["Normal", "Warning"], false, errs);
    }
}
