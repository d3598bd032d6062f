//! The resource registry: one row per served resource. Adding a kind is adding a row here plus
//! its strategy, validation, defaulting and printing.

/// Every verb a plain stored resource supports.
pub const STANDARD_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const SUBRESOURCE_RW: &[&str] = &["get", "patch", "update"];
const CREATE_ONLY: &[&str] = &["create"];
const CONNECT: &[&str] = &["create", "get"];

/// A served resource, e.g. apps/v1 deployments.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; "" is the core (legacy) group served under /api.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Where the objects are stored when another resource owns the storage (events.k8s.io/v1
    /// events live with core/v1 events); `None` stores under this resource's own plural.
    pub storage_plural: Option<&'static str>,
    /// Served, but the controller that acts on it does not exist yet: requests get a warning.
    pub controller_pending: bool,
}

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind read and written through the subresource (`Scale` for scale, the parent's
    /// kind for status).
    pub kind: &'static str,
    /// Group and version of `kind` when it differs from the parent's (autoscaling/v1 Scale).
    pub group_version: Option<(&'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The store key prefix holding every object of this resource, ending in '/'.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.storage_plural.unwrap_or(self.plural))
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(namespace) => format!("{}{namespace}/{name}", self.key_prefix()),
            None => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The key prefix of one namespace's objects.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{namespace}/", self.key_prefix())
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind in a group-version.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Every served group-version, in registry order (core first), as (group, version).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut seen = Vec::new();
    for r in RESOURCES {
        if !seen.contains(&(r.group, r.version)) {
            seen.push((r.group, r.version));
        }
    }
    seen
}

const fn status(kind: &'static str) -> Subresource {
    Subresource { name: "status", kind, group_version: None, verbs: SUBRESOURCE_RW }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    kind: "Scale",
    group_version: Some(("autoscaling", "v1")),
    verbs: SUBRESOURCE_RW,
};

/// A row with the common defaults; each entry overrides what differs.
const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: STANDARD_VERBS,
        subresources: &[],
        storage_plural: None,
        controller_pending: false,
    }
}

impl Resource {
    /// Whether this is a review: created to ask a question, answered in its status, never
    /// stored.
    pub fn is_review(&self) -> bool {
        self.verbs == CREATE_ONLY
    }
}

pub static RESOURCES: &[Resource] = &[
    // core/v1
    Resource {
        short_names: &["ns"],
        verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        subresources: &[
            status("Namespace"),
            Subresource {
                name: "finalize",
                kind: "Namespace",
                group_version: None,
                verbs: &["update"],
            },
        ],
        ..row("", "v1", "Namespace", "namespaces", "namespace", false)
    },
    Resource {
        short_names: &["po"],
        categories: &["all"],
        subresources: &[
            status("Pod"),
            Subresource {
                name: "binding",
                kind: "Binding",
                group_version: None,
                verbs: CREATE_ONLY,
            },
            Subresource {
                name: "eviction",
                kind: "Eviction",
                group_version: Some(("policy", "v1")),
                verbs: CREATE_ONLY,
            },
            Subresource { name: "log", kind: "Pod", group_version: None, verbs: &["get"] },
            Subresource {
                name: "exec",
                kind: "PodExecOptions",
                group_version: None,
                verbs: CONNECT,
            },
            Subresource {
                name: "attach",
                kind: "PodAttachOptions",
                group_version: None,
                verbs: CONNECT,
            },
            Subresource {
                name: "portforward",
                kind: "PodPortForwardOptions",
                group_version: None,
                verbs: CONNECT,
            },
        ],
        ..row("", "v1", "Pod", "pods", "pod", true)
    },
    Resource {
        short_names: &["no"],
        subresources: &[status("Node")],
        ..row("", "v1", "Node", "nodes", "node", false)
    },
    Resource {
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[status("Service")],
        ..row("", "v1", "Service", "services", "service", true)
    },
    Resource { short_names: &["ep"], ..row("", "v1", "Endpoints", "endpoints", "endpoints", true) },
    Resource {
        short_names: &["cm"],
        ..row("", "v1", "ConfigMap", "configmaps", "configmap", true)
    },
    row("", "v1", "Secret", "secrets", "secret", true),
    Resource {
        short_names: &["sa"],
        subresources: &[Subresource {
            name: "token",
            kind: "TokenRequest",
            group_version: Some(("authentication.k8s.io", "v1")),
            verbs: CREATE_ONLY,
        }],
        ..row("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true)
    },
    Resource { short_names: &["ev"], ..row("", "v1", "Event", "events", "event", true) },
    Resource {
        short_names: &["rc"],
        categories: &["all"],
        subresources: &[status("ReplicationController"), SCALE],
        ..row(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            "replicationcontroller",
            true,
        )
    },
    row("", "v1", "PodTemplate", "podtemplates", "podtemplate", true),
    Resource {
        short_names: &["quota"],
        subresources: &[status("ResourceQuota")],
        ..row("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true)
    },
    Resource {
        short_names: &["limits"],
        ..row("", "v1", "LimitRange", "limitranges", "limitrange", true)
    },
    // apps/v1
    Resource {
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[status("Deployment"), SCALE],
        ..row("apps", "v1", "Deployment", "deployments", "deployment", true)
    },
    Resource {
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[status("ReplicaSet"), SCALE],
        ..row("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true)
    },
    Resource {
        short_names: &["sts"],
        categories: &["all"],
        subresources: &[status("StatefulSet"), SCALE],
        controller_pending: true,
        ..row("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true)
    },
    Resource {
        short_names: &["ds"],
        categories: &["all"],
        subresources: &[status("DaemonSet")],
        controller_pending: true,
        ..row("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true)
    },
    row("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true),
    // batch/v1
    Resource {
        categories: &["all"],
        subresources: &[status("Job")],
        controller_pending: true,
        ..row("batch", "v1", "Job", "jobs", "job", true)
    },
    Resource {
        short_names: &["cj"],
        categories: &["all"],
        subresources: &[status("CronJob")],
        controller_pending: true,
        ..row("batch", "v1", "CronJob", "cronjobs", "cronjob", true)
    },
    Resource {
        verbs: CREATE_ONLY,
        ..row("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", false)
    },
    Resource {
        verbs: CREATE_ONLY,
        ..row(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            "selfsubjectreview",
            false,
        )
    },
    Resource {
        verbs: CREATE_ONLY,
        ..row(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            false,
        )
    },
    Resource {
        verbs: CREATE_ONLY,
        ..row(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            "subjectaccessreview",
            false,
        )
    },
    Resource {
        verbs: CREATE_ONLY,
        ..row(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            "localsubjectaccessreview",
            true,
        )
    },
    row("coordination.k8s.io", "v1", "Lease", "leases", "lease", true),
    row("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true),
    Resource {
        short_names: &["ev"],
        storage_plural: Some("events"),
        ..row("events.k8s.io", "v1", "Event", "events", "event", true)
    },
    Resource {
        short_names: &["pc"],
        ..row("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false)
    },
    Resource {
        short_names: &["pdb"],
        subresources: &[status("PodDisruptionBudget")],
        ..row(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            true,
        )
    },
    Resource {
        short_names: &["csr"],
        subresources: &[
            status("CertificateSigningRequest"),
            Subresource {
                name: "approval",
                kind: "CertificateSigningRequest",
                group_version: None,
                verbs: SUBRESOURCE_RW,
            },
        ],
        controller_pending: true,
        ..row(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            "certificatesigningrequest",
            false,
        )
    },
    row("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true),
    row("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true),
    row("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_by_group_version_plural_and_kind() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                let same_gv = a.group == b.group && a.version == b.version;
                assert!(!(same_gv && a.plural == b.plural), "{} served twice", a.plural);
                assert!(!(same_gv && a.kind == b.kind), "{} served twice", a.kind);
            }
        }
    }

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key(Some("default"), "web"), "/registry/pods/default/web");
        assert_eq!(pods.namespace_prefix("default"), "/registry/pods/default/");
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/nodes/n1");
        let events = find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(events.key_prefix(), find("", "v1", "events").unwrap().key_prefix());
        assert_eq!(find_kind("apps", "v1", "Deployment").unwrap().api_version(), "apps/v1");
        assert_eq!(group_versions()[0], ("", "v1"));
    }
}
