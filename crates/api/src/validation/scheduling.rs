//! PriorityClasses: reserved `system-` names, the user-definable maximum, preemption policy,
//! and the value fixed once created.

use serde_json::Value;

use super::*;

/// Values above this are for the system classes only.
const HIGHEST_USER_DEFINABLE: i64 = 1_000_000_000;
const SYSTEM_CLASSES: &[(&str, i64)] =
    &[("system-cluster-critical", 2_000_000_000), ("system-node-critical", 2_000_001_000)];

pub(super) fn priority_class(object: &Value, errs: &mut Vec<Cause>) {
    let name = string(&object["metadata"], "name");
    let value = object["value"].as_i64().unwrap_or(0);
    if name.starts_with("system-") {
        let problem = match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
            None => Some(format!("{name} is not a known system priority class")),
            Some((_, v)) if *v != value => {
                Some(format!("value of {name} PriorityClass must be {v}"))
            }
            Some(_) if object["globalDefault"] == true => {
                Some(format!("globalDefault of {name} PriorityClass must be false"))
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            errs.push(forbidden(
                "metadata.name",
                &format!(
                    "priority class names with 'system-' prefix are reserved for system use only. error: {problem}"
                ),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE {
        errs.push(forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"
            ),
        ));
    }
    one_of(
        object,
        "preemptionPolicy",
        "preemptionPolicy",
        &["PreemptLowerPriority", "Never"],
        false,
        errs,
    );
}

pub(super) fn priority_class_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    if old["value"] != new["value"] {
        errs.push(forbidden("value", "may not be changed in an update."));
    }
    immutable(&old["preemptionPolicy"], &new["preemptionPolicy"], "preemptionPolicy", errs);
}
