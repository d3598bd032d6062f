//! Nodes: taints, pod CIDRs, capacity quantities, and what a node update may not change.

use std::collections::HashSet;

use serde_json::Value;

use super::meta::label_name;
use super::names;
use super::*;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

pub(super) fn node(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let mut seen = HashSet::new();
    for (i, taint) in list(spec, "taints").iter().enumerate() {
        let path = index("spec.taints", i);
        let taint_key = string(taint, "key");
        label_name(taint_key, &child(&path, "key"), errs);
        let value = string(taint, "value");
        let problems = crate::selector::label_value_errors(value);
        if !problems.is_empty() {
            errs.push(invalid_str(&child(&path, "value"), value, &problems.join(";")));
        }
        one_of(taint, "effect", &child(&path, "effect"), TAINT_EFFECTS, true, errs);
        if !seen.insert((taint_key, string(taint, "effect"))) {
            let mut e = duplicate(&path, taint);
            e.message.push_str(": taints must be unique by key and effect pair");
            errs.push(e);
        }
    }
    let cidrs = list(spec, "podCIDRs");
    for (i, cidr) in cidrs.iter().enumerate() {
        let cidr = cidr.as_str().unwrap_or_default();
        if !names::is_cidr(cidr) {
            errs.push(invalid_str(&index("spec.podCIDRs", i), cidr, "must be a valid CIDR"));
        }
    }
    if cidrs.len() > 2 {
        errs.push(invalid(
            "spec.podCIDRs",
            &spec["podCIDRs"],
            "may specify no more than one CIDR for each IP family",
        ));
    }
    let pod_cidr = string(spec, "podCIDR");
    if !pod_cidr.is_empty() && !names::is_cidr(pod_cidr) {
        errs.push(invalid_str("spec.podCIDR", pod_cidr, "must be a valid CIDR"));
    }
}

/// `ValidateNodeUpdate`: pod CIDRs and the provider ID are set once.
pub(super) fn node_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    if !list(old_spec, "podCIDRs").is_empty()
        && !semantically_equal(&old_spec["podCIDRs"], &new_spec["podCIDRs"])
    {
        errs.push(forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = string(old_spec, "providerID");
    if !old_provider.is_empty() && string(new_spec, "providerID") != old_provider {
        errs.push(forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
}
