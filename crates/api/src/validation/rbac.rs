//! RBAC: policy rules of Roles and ClusterRoles, role references and subjects of bindings,
//! and a binding's fixed roleRef.

use serde_json::Value;

use super::*;

const GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn role(object: &Value, namespaced: bool, errs: &mut Vec<Cause>) {
    let aggregated = !namespaced && object["aggregationRule"].is_object();
    for (i, rule) in list(object, "rules").iter().enumerate() {
        policy_rule(rule, namespaced, &index("rules", i), errs);
    }
    if aggregated {
        let selectors = list(&object["aggregationRule"], "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in selectors.iter().enumerate() {
            super::meta::label_selector(
                selector,
                &index("aggregationRule.clusterRoleSelectors", i),
                errs,
            );
        }
    }
}

fn policy_rule(rule: &Value, namespaced: bool, path: &str, errs: &mut Vec<Cause>) {
    if list(rule, "verbs").is_empty() {
        errs.push(required(&child(path, "verbs"), "verbs must contain at least one value"));
    }
    let urls = list(rule, "nonResourceURLs");
    if !urls.is_empty() {
        if namespaced {
            errs.push(invalid(
                &child(path, "nonResourceURLs"),
                &rule["nonResourceURLs"],
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !list(rule, "apiGroups").is_empty()
            || !list(rule, "resources").is_empty()
            || !list(rule, "resourceNames").is_empty()
        {
            errs.push(invalid(
                &child(path, "nonResourceURLs"),
                &rule["nonResourceURLs"],
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if list(rule, "apiGroups").is_empty() {
        errs.push(required(
            &child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list(rule, "resources").is_empty() {
        errs.push(required(
            &child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

pub(super) fn binding(object: &Value, namespaced: bool, errs: &mut Vec<Cause>) {
    let role_ref = &object["roleRef"];
    let api_group = string(role_ref, "apiGroup");
    if api_group != GROUP {
        errs.push(not_supported("roleRef.apiGroup", &Value::from(api_group), &[GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    let kind = string(role_ref, "kind");
    if !kinds.contains(&kind) {
        errs.push(not_supported("roleRef.kind", &Value::from(kind), kinds));
    }
    let name = string(role_ref, "name");
    if name.is_empty() {
        errs.push(required("roleRef.name", ""));
    } else {
        for msg in super::names::name_errors(super::names::NameRule::PathSegment, name, false) {
            errs.push(invalid_str("roleRef.name", name, &msg));
        }
    }
    for (i, subject) in list(object, "subjects").iter().enumerate() {
        self::subject(subject, namespaced, &index("subjects", i), errs);
    }
}

fn subject(subject: &Value, namespaced: bool, path: &str, errs: &mut Vec<Cause>) {
    let name = string(subject, "name");
    if name.is_empty() {
        errs.push(required(&child(path, "name"), ""));
    }
    let api_group = string(subject, "apiGroup");
    match string(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in crate::selector::dns1123_subdomain_errors(name) {
                    errs.push(invalid_str(&child(path, "name"), name, &msg));
                }
            }
            if !api_group.is_empty() {
                errs.push(not_supported(&child(path, "apiGroup"), &Value::from(api_group), &[""]));
            }
            if !namespaced && string(subject, "namespace").is_empty() {
                errs.push(required(&child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(not_supported(
                    &child(path, "apiGroup"),
                    &Value::from(api_group),
                    &[GROUP],
                ));
            }
        }
        other => errs.push(not_supported(
            &child(path, "kind"),
            &Value::from(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

pub(super) fn binding_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    if old["roleRef"] != new["roleRef"] {
        errs.push(invalid("roleRef", &new["roleRef"], "cannot change roleRef"));
    }
}
