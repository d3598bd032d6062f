//! NodeRestriction: a kubelet authenticated as `system:node:<name>` (group `system:nodes`) may
//! only write its own Node and Lease, the pods bound to it, and mirror pods of its own — so one
//! compromised node cannot take over others. Other identities pass untouched.

use serde_json::Value;

use crate::auth::Identity;

/// The node a request comes from, if its identity is a node's.
pub fn node_of(user: &Identity) -> Option<&str> {
    let name = user.user.strip_prefix("system:node:")?;
    (user.groups.iter().any(|g| g == "system:nodes") && !name.is_empty()).then_some(name)
}

/// One write, as NodeRestriction sees it.
pub struct Write<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub verb: Verb,
    /// What the client sent (create and update).
    pub object: Option<&'a Value>,
    /// What is stored (update and delete).
    pub stored: Option<&'a Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

/// Labels a node may not set on itself: they steer workloads, so only admins set them.
const RESTRICTED_LABEL_PREFIX: &str = "node-restriction.kubernetes.io/";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// `Err(message)` when `node` may not make this write; the caller answers 403.
pub fn check(node: &str, write: &Write) -> Result<(), String> {
    match (write.group, write.plural) {
        ("", "nodes") => check_node(node, write),
        ("", "pods") => check_pod(node, write),
        ("coordination.k8s.io", "leases") => {
            if write.namespace != Some("kube-node-lease") || write.name != node {
                return Err(
                    "can only access node lease with the same name as the requesting node".into()
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_node(node: &str, write: &Write) -> Result<(), String> {
    if write.name != node {
        return Err(format!("node \"{node}\" is not allowed to modify node \"{}\"", write.name));
    }
    if let Some(object) = write.object {
        let labels = object["metadata"]["labels"].as_object();
        let stored_labels = write.stored.and_then(|s| s["metadata"]["labels"].as_object());
        for (key, value) in labels.into_iter().flatten() {
            let unchanged = stored_labels.and_then(|l| l.get(key)) == Some(value);
            if key.starts_with(RESTRICTED_LABEL_PREFIX) && !unchanged {
                return Err(format!(
                    "is not allowed to modify labels: {key} (node \"{node}\" may not set labels with the {RESTRICTED_LABEL_PREFIX} prefix)"
                ));
            }
        }
        if write.verb == Verb::Update
            && write.subresource.is_none()
            && let Some(stored) = write.stored
            && stored["spec"]["taints"] != object["spec"]["taints"]
        {
            return Err(format!("node \"{node}\" is not allowed to modify taints"));
        }
    }
    Ok(())
}

fn check_pod(node: &str, write: &Write) -> Result<(), String> {
    let bound_to = |pod: Option<&Value>| {
        pod.and_then(|p| p["spec"]["nodeName"].as_str()).unwrap_or_default().to_owned()
    };
    match (write.verb, write.subresource) {
        (Verb::Create, None) => {
            let pod = write.object;
            if pod.is_none_or(|p| p["metadata"]["annotations"][MIRROR_ANNOTATION].is_null()) {
                return Err(format!(
                    "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                ));
            }
            if bound_to(pod) != node {
                return Err(format!(
                    "node \"{node}\" can only create pods with spec.nodeName set to itself"
                ));
            }
            Ok(())
        }
        (Verb::Create, Some("eviction")) | (Verb::Update, Some("status")) | (Verb::Delete, _) => {
            if bound_to(write.stored) != node {
                let action = match write.verb {
                    Verb::Delete => "delete",
                    _ if write.subresource == Some("eviction") => "evict",
                    _ => "update",
                };
                return Err(format!(
                    "node \"{node}\" can only {action} pods with spec.nodeName set to itself"
                ));
            }
            Ok(())
        }
        (_, subresource) => Err(format!(
            "node \"{node}\" is not allowed to {} pods{}",
            if write.verb == Verb::Create { "create" } else { "update" },
            subresource.map(|s| format!("/{s}")).unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity(user: &str, groups: &[&str]) -> Identity {
        Identity { user: user.into(), groups: groups.iter().map(|g| g.to_string()).collect() }
    }

    #[test]
    fn only_node_identities_are_restricted() {
        assert_eq!(node_of(&identity("system:node:n1", &["system:nodes"])), Some("n1"));
        assert_eq!(node_of(&identity("system:node:n1", &["system:masters"])), None);
        assert_eq!(node_of(&identity("system:admin", &["system:nodes"])), None);
        assert_eq!(node_of(&identity("capstan:agent", &["system:nodes"])), None);
    }

    fn write<'a>(
        plural: &'a str,
        sub: Option<&'a str>,
        name: &'a str,
        verb: Verb,
        object: Option<&'a Value>,
        stored: Option<&'a Value>,
    ) -> Write<'a> {
        let group = if plural == "leases" { "coordination.k8s.io" } else { "" };
        let namespace = match plural {
            "leases" => Some("kube-node-lease"),
            "pods" => Some("default"),
            _ => None,
        };
        Write { group, plural, subresource: sub, namespace, name, verb, object, stored }
    }

    #[test]
    fn a_node_writes_only_itself_its_lease_and_its_pods() {
        let mine = json!({"spec": {"nodeName": "n1"}});
        let theirs = json!({"spec": {"nodeName": "n2"}});
        let mirror = json!({"metadata": {"annotations": {MIRROR_ANNOTATION: "x"}}, "spec": {"nodeName": "n1"}});
        let empty = json!({});
        let table: Vec<(Write, Result<(), &str>)> = vec![
            (write("nodes", None, "n1", Verb::Create, Some(&empty), None), Ok(())),
            (
                write("nodes", Some("status"), "n2", Verb::Update, Some(&empty), None),
                Err("node \"n1\" is not allowed to modify node \"n2\""),
            ),
            (write("leases", None, "n1", Verb::Update, Some(&empty), None), Ok(())),
            (
                write("leases", None, "n2", Verb::Update, Some(&empty), None),
                Err("can only access node lease with the same name as the requesting node"),
            ),
            (write("pods", Some("status"), "p", Verb::Update, Some(&mine), Some(&mine)), Ok(())),
            (
                write("pods", Some("status"), "p", Verb::Update, Some(&theirs), Some(&theirs)),
                Err("node \"n1\" can only update pods with spec.nodeName set to itself"),
            ),
            (write("pods", None, "p", Verb::Delete, None, Some(&mine)), Ok(())),
            (
                write("pods", None, "p", Verb::Delete, None, Some(&theirs)),
                Err("node \"n1\" can only delete pods with spec.nodeName set to itself"),
            ),
            (write("pods", None, "p", Verb::Create, Some(&mirror), None), Ok(())),
            (
                write("pods", None, "p", Verb::Create, Some(&mine), None),
                Err(
                    "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods",
                ),
            ),
            (
                write("pods", None, "p", Verb::Update, Some(&mine), Some(&mine)),
                Err("node \"n1\" is not allowed to update pods"),
            ),
            (write("configmaps", None, "c", Verb::Create, Some(&empty), None), Ok(())),
        ];
        for (attempt, expected) in table {
            assert_eq!(
                check("n1", &attempt),
                expected.map_err(str::to_owned),
                "{} {:?} {:?}",
                attempt.plural,
                attempt.subresource,
                attempt.verb
            );
        }
    }

    #[test]
    fn a_node_may_not_retaint_itself_or_set_restricted_labels() {
        let stored = json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        let untainted = json!({"spec": {}});
        let attempt = write("nodes", None, "n1", Verb::Update, Some(&untainted), Some(&stored));
        assert_eq!(
            check("n1", &attempt),
            Err("node \"n1\" is not allowed to modify taints".into())
        );
        let labelled =
            json!({"metadata": {"labels": {"node-restriction.kubernetes.io/fast": "true"}}});
        let attempt = write("nodes", None, "n1", Verb::Create, Some(&labelled), None);
        assert!(check("n1", &attempt).unwrap_err().contains("not allowed to modify labels"));
    }
}
