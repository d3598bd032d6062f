//! PodDisruptionBudgets: minAvailable xor maxUnavailable, percentages, selector, and the
//! unhealthy pod eviction policy.

use serde_json::Value;

use super::meta::label_selector;
use super::*;

pub(super) fn pod_disruption_budget(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if is_set(spec, "minAvailable") && is_set(spec, "maxUnavailable") {
        errs.push(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"));
    }
    for field in ["minAvailable", "maxUnavailable"] {
        if let Some(value) = spec.get(field).filter(|v| !v.is_null()) {
            int_or_percent(value, &child("spec", field), true, errs);
        }
    }
    if let Some(selector) = spec.get("selector").filter(|s| s.is_object()) {
        label_selector(selector, "spec.selector", errs);
    }
    one_of(
        spec,
        "unhealthyPodEvictionPolicy",
        "spec.unhealthyPodEvictionPolicy",
        &["AlwaysAllow", "IfHealthyBudget"],
        false,
        errs,
    );
}
