//! Leases: durations and transition counts.

use serde_json::Value;

use super::*;

pub(super) fn lease(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if let Some(duration) = spec["leaseDurationSeconds"].as_i64()
        && duration <= 0
    {
        errs.push(invalid(
            "spec.leaseDurationSeconds",
            &Value::from(duration),
            "must be greater than 0",
        ));
    }
    nonnegative(spec, "leaseTransitions", "spec.leaseTransitions", errs);
    if is_set(spec, "preferredHolder") && !is_set(spec, "strategy") {
        errs.push(forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
}
