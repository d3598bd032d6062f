//! scheduling.k8s.io defaulting: a PriorityClass preempts lower priorities unless told not to.

use serde_json::{Map, Value};

use super::default_pointer;

pub(super) fn priority_class(class: &mut Map<String, Value>) {
    default_pointer(class, "preemptionPolicy", "PreemptLowerPriority");
}
