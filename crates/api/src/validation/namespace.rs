//! Namespaces: their finalizers (names are checked with the metadata).

use serde_json::Value;

use super::*;

pub(super) fn namespace(object: &Value, errs: &mut Vec<Cause>) {
    super::meta::finalizers(list(&object["spec"], "finalizers"), "spec.finalizers", errs);
}
