//! Defaulting compared with what a v1.33 API server stores (upstream's defaults tests and
//! objects read back from a real cluster, less what admission and allocation add), and the
//! properties every kind keeps: idempotent, never overwriting, never panicking.

use serde_json::{Value, json};

use super::{apply, prepare_for_create};
use crate::Resource;
use crate::registry::{RESOURCES, find_kind};

fn resource(group: &str, kind: &str) -> &'static Resource {
    find_kind(group, "v1", kind).unwrap_or_else(|| panic!("{group}/{kind} is served"))
}

fn defaulted(group: &str, kind: &str, mut object: Value) -> Value {
    apply(resource(group, kind), &mut object);
    object
}

/// Each case: (kind's group, kind, what the client sent, what is stored).
fn check(cases: &[(&str, &str, Value, Value)]) {
    for (group, kind, input, want) in cases {
        let got = defaulted(group, kind, input.clone());
        assert_eq!(
            &got,
            want,
            "{kind} from {input:#}\n got {}\nwant {}",
            serde_json::to_string_pretty(&got).unwrap(),
            serde_json::to_string_pretty(want).unwrap()
        );
    }
}

/// The fields SetDefaults_Container adds to `{"name": "c", "image": image}`.
fn container(image: &str, pull: &str) -> Value {
    json!({
        "name": "c", "image": image, "imagePullPolicy": pull,
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    })
}

/// A template's spec for one container, as SetDefaults_PodSpec leaves it.
fn template_spec(container: Value) -> Value {
    json!({
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    })
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": template_spec(container("nginx", "Always"))})
}

fn bare_template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

#[test]
fn a_minimal_pod_gets_upstreams_spec_defaults() {
    let mut spec = template_spec(container("nginx", "Always"));
    spec["enableServiceLinks"] = json!(true);
    check(&[(
        "",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        json!({"metadata": {"name": "p"}, "spec": spec}),
    )]);
}

#[test]
fn containers_probes_ports_env_and_lifecycle_are_defaulted() {
    let input = json!({"spec": {
        "containers": [{
            "name": "c", "image": "busybox:1.36",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "PLAIN", "value": "x"},
            ],
            "livenessProbe": {"httpGet": {"port": 8080}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5, "timeoutSeconds": 0},
            "startupProbe": {"grpc": {"port": 9000}},
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/quit"}}},
        }],
        "initContainers": [{"name": "i", "image": "busybox@sha256:".to_owned() + &"0".repeat(64)}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}],
    }});
    let got = defaulted("", "Pod", input);
    let c = &got["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        c["ports"],
        json!([
            {"containerPort": 80, "protocol": "TCP"},
            {"containerPort": 53, "protocol": "UDP"},
        ])
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"],
        json!({"apiVersion": "v1", "fieldPath": "spec.nodeName"})
    );
    assert_eq!(c["env"][1], json!({"name": "PLAIN", "value": "x"}));
    let timings = json!({"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
    let mut liveness = timings.clone();
    liveness["httpGet"] = json!({"port": 8080, "path": "/", "scheme": "HTTP"});
    assert_eq!(c["livenessProbe"], liveness);
    let mut readiness = timings.clone();
    readiness["tcpSocket"] = json!({"port": 80});
    readiness["periodSeconds"] = json!(5);
    assert_eq!(c["readinessProbe"], readiness);
    let mut startup = timings;
    startup["grpc"] = json!({"port": 9000, "service": ""});
    assert_eq!(c["startupProbe"], startup);
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": 80, "path": "/quit", "scheme": "HTTP"})
    );
    assert_eq!(got["spec"]["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(got["spec"]["initContainers"][0]["terminationMessagePolicy"], "File");
    assert_eq!(got["spec"]["ephemeralContainers"][0]["imagePullPolicy"], "Always");
}

#[test]
fn volumes_get_modes_types_and_an_empty_dir_when_sourceless() {
    let input = json!({"spec": {"containers": [], "volumes": [
        {"name": "scratch"},
        {"name": "cm", "configMap": {"name": "settings"}},
        {"name": "s", "secret": {"secretName": "creds", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var/log"}},
        {"name": "down", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "proj", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"configMap": {"name": "ca"}},
        ]}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        {"name": "disk", "azureDisk": {"diskName": "d", "diskURI": "u"}},
        {"name": "iscsi", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0}},
        {"name": "rbd", "rbd": {"monitors": ["m"], "image": "i"}},
        {"name": "sio", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {}}},
    ]}});
    let got = defaulted("", "Pod", input);
    assert_eq!(
        got["spec"]["volumes"],
        json!([
            {"name": "scratch", "emptyDir": {}},
            {"name": "cm", "configMap": {"name": "settings", "defaultMode": 420}},
            {"name": "s", "secret": {"secretName": "creds", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
            {"name": "down", "downwardAPI": {"defaultMode": 420, "items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
            ]}},
            {"name": "proj", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"downwardAPI": {"items": [
                    {"path": "ns", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
                ]}},
                {"configMap": {"name": "ca"}},
            ]}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
            }}}},
            {"name": "disk", "azureDisk": {
                "diskName": "d", "diskURI": "u", "cachingMode": "ReadWrite", "fsType": "ext4",
                "readOnly": false, "kind": "Shared",
            }},
            {"name": "iscsi", "iscsi": {"targetPortal": "t", "iqn": "i", "lun": 0, "iscsiInterface": "default"}},
            {"name": "rbd", "rbd": {
                "monitors": ["m"], "image": "i", "pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring",
            }},
            {"name": "sio", "scaleIO": {
                "gateway": "g", "system": "s", "secretRef": {}, "storageMode": "ThinProvisioned", "fsType": "xfs",
            }},
        ])
    );
}

#[test]
fn pods_take_requests_from_limits_and_host_ports_from_container_ports() {
    let input = json!({"spec": {
        "hostNetwork": true,
        "containers": [{
            "name": "c", "image": "app:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9091}],
        }],
        "initContainers": [{"name": "i", "image": "app:1", "resources": {"limits": {"memory": "64Mi"}}}],
    }});
    let got = defaulted("", "Pod", input);
    let c = &got["spec"]["containers"][0];
    assert_eq!(c["resources"]["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
    assert_eq!(c["ports"][0], json!({"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}));
    assert_eq!(c["ports"][1]["hostPort"], 9091);
    assert_eq!(
        got["spec"]["initContainers"][0]["resources"]["requests"],
        json!({"memory": "64Mi"})
    );
}

#[test]
fn templates_do_not_get_the_pod_only_defaults() {
    let input = json!({"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"hostNetwork": true, "containers": [{
            "name": "c", "image": "nginx", "resources": {"limits": {"cpu": "1"}},
            "ports": [{"containerPort": 80}],
        }]},
    }}});
    let got = defaulted("apps", "ReplicaSet", input);
    let spec = &got["spec"]["template"]["spec"];
    assert!(spec.get("enableServiceLinks").is_none(), "{spec}");
    assert!(spec["containers"][0]["resources"].get("requests").is_none(), "{spec}");
    assert!(spec["containers"][0]["ports"][0].get("hostPort").is_none(), "{spec}");
}

#[test]
fn workloads_get_replicas_strategies_and_history_limits() {
    let selector = json!({"matchLabels": {"app": "web"}});
    let labels = json!({"app": "web"});
    check(&[
        (
            "apps",
            "Deployment",
            json!({"spec": {"selector": selector, "template": bare_template(labels.clone())}}),
            json!({"spec": {
                "replicas": 1,
                "selector": selector,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": template(labels.clone()),
            }}),
        ),
        (
            "apps",
            "Deployment",
            json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "template": bare_template(labels.clone())}}),
            json!({"spec": {
                "replicas": 0,
                "strategy": {"type": "Recreate"},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": template(labels.clone()),
            }}),
        ),
        (
            "apps",
            "Deployment",
            json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2}}, "template": bare_template(labels.clone())}}),
            json!({"spec": {
                "replicas": 1,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": template(labels.clone()),
            }}),
        ),
        (
            "apps",
            "ReplicaSet",
            json!({"spec": {"template": bare_template(labels.clone())}}),
            json!({"spec": {"replicas": 1, "template": template(labels.clone())}}),
        ),
        (
            "apps",
            "DaemonSet",
            json!({"spec": {"template": bare_template(labels.clone())}}),
            json!({"spec": {
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10,
                "template": template(labels.clone()),
            }}),
        ),
        (
            "apps",
            "DaemonSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}, "template": bare_template(labels.clone())}}),
            json!({"spec": {
                "updateStrategy": {"type": "OnDelete"},
                "revisionHistoryLimit": 10,
                "template": template(labels.clone()),
            }}),
        ),
        (
            "",
            "PodTemplate",
            json!({"template": bare_template(labels.clone())}),
            json!({"template": template(labels.clone())}),
        ),
    ]);
}

#[test]
fn stateful_sets_get_ordered_rolling_updates_and_retained_claims() {
    let labels = json!({"app": "db"});
    check(&[
        (
            "apps",
            "StatefulSet",
            json!({"spec": {
                "serviceName": "db",
                "template": bare_template(labels.clone()),
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                }}],
            }}),
            json!({"spec": {
                "serviceName": "db",
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "revisionHistoryLimit": 10,
                "template": template(labels.clone()),
                "volumeClaimTemplates": [{
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                        "volumeMode": "Filesystem",
                    },
                    "status": {"phase": "Pending"},
                }],
            }}),
        ),
        (
            // An explicit RollingUpdate without parameters gets none, as upstream has it.
            "apps",
            "StatefulSet",
            json!({"spec": {
                "updateStrategy": {"type": "RollingUpdate"},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
                "template": bare_template(labels.clone()),
            }}),
            json!({"spec": {
                "replicas": 1,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate"},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                "revisionHistoryLimit": 10,
                "template": template(labels.clone()),
            }}),
        ),
    ]);
}

#[test]
fn replication_controllers_take_selector_and_labels_from_their_template() {
    let labels = json!({"app": "legacy"});
    check(&[
        (
            "",
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": bare_template(labels.clone())}}),
            json!({"metadata": {"name": "rc", "labels": labels}, "spec": {
                "replicas": 1, "selector": labels, "template": template(labels.clone()),
            }}),
        ),
        (
            "",
            "ReplicationController",
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {
                "replicas": 3, "selector": {"app": "legacy", "tier": "x"}, "template": bare_template(labels.clone()),
            }}),
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {
                "replicas": 3, "selector": {"app": "legacy", "tier": "x"}, "template": template(labels.clone()),
            }}),
        ),
        (
            // Without a template there is nothing to copy (the template is a pointer here).
            "",
            "ReplicationController",
            json!({"spec": {}}),
            json!({"spec": {"replicas": 1}}),
        ),
    ]);
}

#[test]
fn jobs_and_cron_jobs_get_upstreams_batch_defaults() {
    let job_template = |restart: &str| {
        let mut t = bare_template(json!({"app": "batch"}));
        t["spec"]["restartPolicy"] = json!(restart);
        t
    };
    let defaulted_template = |restart: &str| {
        let mut t = template(json!({"app": "batch"}));
        t["spec"]["restartPolicy"] = json!(restart);
        t
    };
    check(&[
        (
            "batch",
            "Job",
            json!({"metadata": {"name": "once"}, "spec": {"template": job_template("Never")}}),
            json!({"metadata": {"name": "once", "labels": {"app": "batch"}}, "spec": {
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": false,
                "podReplacementPolicy": "TerminatingOrFailed",
                "manualSelector": false,
                "template": defaulted_template("Never"),
            }}),
        ),
        (
            // A parallel Job with a work queue keeps completions unset.
            "batch",
            "Job",
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {
                "parallelism": 3,
                "backoffLimitPerIndex": 1,
                "completionMode": "Indexed",
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": job_template("OnFailure"),
            }}),
            json!({"metadata": {"labels": {"own": "x"}}, "spec": {
                "parallelism": 3,
                "backoffLimitPerIndex": 1,
                "backoffLimit": 2147483647,
                "completionMode": "Indexed",
                "suspend": false,
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
                    {"type": "DisruptionTarget", "status": "True"},
                ]}]},
                "podReplacementPolicy": "Failed",
                "manualSelector": false,
                "template": defaulted_template("OnFailure"),
            }}),
        ),
        (
            // Upstream defaults Always even here; its Job validation then refuses it.
            "batch",
            "Job",
            json!({"spec": {"completions": 5, "template": {"spec": {"containers": []}}}}),
            json!({"spec": {
                "completions": 5,
                "parallelism": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": false,
                "podReplacementPolicy": "TerminatingOrFailed",
                "manualSelector": false,
                "template": {"spec": {
                    "containers": [],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                }},
            }}),
        ),
        (
            // Only the pod template inside a CronJob's job template is defaulted.
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template("OnFailure")}}}}),
            json!({"spec": {
                "schedule": "*/5 * * * *",
                "concurrencyPolicy": "Allow",
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": defaulted_template("OnFailure")}},
            }}),
        ),
    ]);
}

#[test]
fn services_get_type_affinity_ports_and_traffic_policies() {
    let cluster_ip = |extra: Value| {
        let mut spec = json!({
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    check(&[
        (
            "",
            "Service",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
            json!({"spec": cluster_ip(json!({
                "selector": {"app": "web"},
                "ports": [
                    {"port": 80, "protocol": "TCP", "targetPort": 80},
                    {"port": 53, "protocol": "UDP", "targetPort": "dns"},
                ],
            }))}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 0}]}}),
            json!({"spec": {
                "type": "NodePort",
                "sessionAffinity": "None",
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"],
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            }}),
        ),
        (
            "",
            "Service",
            json!({
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 443, "targetPort": ""}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example"}]}},
            }),
            json!({
                "spec": {
                    "type": "LoadBalancer",
                    "sessionAffinity": "None",
                    "externalTrafficPolicy": "Local",
                    "internalTrafficPolicy": "Cluster",
                    "allocateLoadBalancerNodePorts": true,
                    "ipFamilyPolicy": "SingleStack",
                    "ipFamilies": ["IPv4"],
                    "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}],
                },
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb.example"}]}},
            }),
        ),
        (
            "",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"externalIPs": ["192.0.2.7"], "sessionAffinity": "ClientIP"}}),
            json!({"spec": cluster_ip(json!({
                "externalIPs": ["192.0.2.7"],
                "externalTrafficPolicy": "Cluster",
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            }))}),
        ),
        (
            // A config `None` cannot use is dropped.
            "",
            "Service",
            json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}}),
            json!({"spec": cluster_ip(json!({}))}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"clusterIP": "fd00::10"}}),
            json!({"spec": cluster_ip(json!({"clusterIP": "fd00::10", "ipFamilies": ["IPv6"]}))}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"ipFamilies": ["IPv4", "IPv6"]}}),
            json!({"spec": cluster_ip(json!({"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}))}),
        ),
        (
            // Headless and selectorless: both families unless single-stack was asked for.
            "",
            "Service",
            json!({"spec": {"clusterIP": "None", "ipFamilyPolicy": "PreferDualStack"}}),
            json!({"spec": cluster_ip(json!({
                "clusterIP": "None", "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"],
            }))}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"clusterIP": "None"}}),
            json!({"spec": cluster_ip(json!({"clusterIP": "None"}))}),
        ),
    ]);
}

#[test]
fn endpoints_and_slices_default_port_protocols() {
    check(&[
        (
            "",
            "Endpoints",
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]}),
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [
                {"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"},
            ]}]}),
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [
                {"name": "", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"},
            ]}),
        ),
    ]);
}

#[test]
fn small_kinds_get_their_single_defaults() {
    check(&[
        ("", "Secret", json!({"data": {}}), json!({"data": {}, "type": "Opaque"})),
        ("", "Secret", json!({"type": ""}), json!({"type": "Opaque"})),
        ("", "Secret", json!({"type": "kubernetes.io/tls"}), json!({"type": "kubernetes.io/tls"})),
        (
            "",
            "Namespace",
            json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "other", "x": "y"}}}),
            json!({
                "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team", "x": "y"}},
                "status": {"phase": "Active"},
            }),
        ),
        (
            "",
            "Namespace",
            json!({"metadata": {"generateName": "team-"}}),
            json!({"metadata": {"generateName": "team-"}, "status": {"phase": "Active"}}),
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"value": 1000}),
            json!({"value": 1000, "preemptionPolicy": "PreemptLowerPriority"}),
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"value": 1000, "preemptionPolicy": "Never"}),
            json!({"value": 1000, "preemptionPolicy": "Never"}),
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
            ]}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
            ]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            json!({"roleRef": {"kind": "ClusterRole", "name": "view"}}),
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}}),
        ),
        (
            "",
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "pods": "110"}}}),
            json!({"status": {"capacity": {"cpu": "4", "pods": "110"}, "allocatable": {"cpu": "4", "pods": "110"}}}),
        ),
        (
            "",
            "LimitRange",
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Gi"}, "default": {"memory": "512Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}},
            ]}}),
            json!({"spec": {"limits": [
                {
                    "type": "Container",
                    "max": {"cpu": "2", "memory": "1Gi"},
                    "min": {"cpu": "100m", "ephemeral-storage": "1Gi"},
                    "default": {"cpu": "2", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "2", "memory": "512Mi", "ephemeral-storage": "1Gi"},
                },
                {"type": "Pod", "max": {"cpu": "4"}},
            ]}}),
        ),
    ]);
}

#[test]
fn kinds_upstream_does_not_default_are_left_alone() {
    let cases = [
        ("", "ConfigMap", json!({"metadata": {"name": "c"}})),
        ("", "ServiceAccount", json!({"metadata": {"name": "sa"}})),
        ("", "Event", json!({"involvedObject": {"kind": "Pod"}, "reason": "Pulled"})),
        ("events.k8s.io", "Event", json!({"regarding": {"kind": "Pod"}, "reason": "Pulled"})),
        ("coordination.k8s.io", "Lease", json!({"spec": {"holderIdentity": "n1"}})),
        ("policy", "PodDisruptionBudget", json!({"spec": {"minAvailable": 1}})),
        (
            "certificates.k8s.io",
            "CertificateSigningRequest",
            json!({"spec": {"request": "", "signerName": "x"}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "Role",
            json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
        ),
        ("apps", "ControllerRevision", json!({"revision": 1, "data": {"spec": {}}})),
        ("", "ResourceQuota", json!({"spec": {"hard": {"pods": "10"}}})),
    ];
    for (group, kind, input) in cases {
        assert_eq!(defaulted(group, kind, input.clone()), input, "{kind}");
    }
}

#[test]
fn new_jobs_get_a_selector_on_their_uid_and_labels_from_it() {
    let jobs = resource("batch", "Job");
    let mut job = json!({
        "metadata": {"name": "once", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}},
    });
    apply(jobs, &mut job);
    prepare_for_create(jobs, &mut job);
    let generated = json!({
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "once",
        "controller-uid": "u-1",
        "job-name": "once",
    });
    assert_eq!(job["spec"]["template"]["metadata"]["labels"], generated);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(job["metadata"]["labels"], generated);

    let mut manual = json!({
        "metadata": {"name": "m", "uid": "u-2"},
        "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}},
    });
    let before = manual.clone();
    prepare_for_create(jobs, &mut manual);
    assert_eq!(manual, before);
}

#[test]
fn new_namespaces_are_labelled_with_their_generated_name() {
    let namespaces = resource("", "Namespace");
    let mut ns = json!({"metadata": {"generateName": "team-"}});
    apply(namespaces, &mut ns);
    ns["metadata"]["name"] = json!("team-x7k2p");
    prepare_for_create(namespaces, &mut ns);
    assert_eq!(ns["metadata"]["labels"], json!({"kubernetes.io/metadata.name": "team-x7k2p"}));
}

#[test]
fn new_gated_pods_are_marked_unschedulable_and_affinity_keys_are_merged() {
    let pods = resource("", "Pod");
    let mut pod = json!({
        "metadata": {"name": "p", "labels": {"app": "web", "rev": "7"}, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {
            "schedulingGates": [{"name": "example.com/quota"}],
            "containers": [{"name": "c", "image": "nginx"}],
            "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["rev", "absent"],
                    "mismatchLabelKeys": ["app"],
                }],
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {
                    "topologyKey": "zone", "matchLabelKeys": ["rev"],
                }}],
            }},
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    apply(pods, &mut pod);
    prepare_for_create(pods, &mut pod);
    assert_eq!(
        pod["status"]["conditions"],
        json!([{
            "type": "PodScheduled",
            "status": "False",
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
            "lastProbeTime": null,
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        }])
    );
    let anti = &pod["spec"]["affinity"]["podAntiAffinity"];
    assert_eq!(
        anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"],
        json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "rev", "operator": "In", "values": ["7"]},
            {"key": "app", "operator": "NotIn", "values": ["web"]},
        ]})
    );
    // A term without a selector matches nothing, and stays so.
    let preferred = &anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert!(preferred.get("labelSelector").is_none(), "{preferred}");
}

/// One object per kind with something to default, as a client would send it.
fn samples() -> Vec<(&'static Resource, Value)> {
    let pod_spec = json!({
        "hostNetwork": true,
        "containers": [{
            "name": "c", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "resources": {"limits": {"cpu": "1"}},
            "livenessProbe": {"httpGet": {"port": 80}},
            "lifecycle": {"postStart": {"httpGet": {"port": 80}}},
        }],
        "volumes": [{"name": "v"}, {"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
        "schedulingGates": [{"name": "g"}],
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "zone", "labelSelector": {}, "matchLabelKeys": ["app"]},
        ]}},
    });
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": pod_spec});
    let meta = json!({"name": "x", "uid": "u", "labels": {"app": "x"}, "creationTimestamp": "2025-01-01T00:00:00Z"});
    let with = |group: &str, kind: &str, body: Value| {
        let mut object = body;
        object["metadata"] = meta.clone();
        (resource(group, kind), object)
    };
    vec![
        with("", "Pod", json!({"spec": pod_spec})),
        with("", "PodTemplate", json!({"template": template})),
        with("", "ReplicationController", json!({"spec": {"template": template}})),
        with("apps", "Deployment", json!({"spec": {"template": template}})),
        with("apps", "ReplicaSet", json!({"spec": {"template": template}})),
        with("apps", "DaemonSet", json!({"spec": {"template": template}})),
        with(
            "apps",
            "StatefulSet",
            json!({"spec": {"template": template, "volumeClaimTemplates": [{"spec": {}}]}}),
        ),
        with(
            "batch",
            "Job",
            json!({"spec": {"template": template, "podFailurePolicy": {"rules": [{"onPodConditions": [{}]}]}}}),
        ),
        with(
            "batch",
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        ),
        with(
            "",
            "Service",
            json!({
                "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "selector": {"app": "x"}, "ports": [{"port": 80}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
            }),
        ),
        with("", "Endpoints", json!({"subsets": [{"ports": [{"port": 80}]}]})),
        with("discovery.k8s.io", "EndpointSlice", json!({"ports": [{"port": 80}]})),
        with("", "Secret", json!({})),
        with("", "Namespace", json!({})),
        with("", "Node", json!({"status": {"capacity": {"cpu": "1"}}})),
        with(
            "",
            "LimitRange",
            json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}),
        ),
        with("scheduling.k8s.io", "PriorityClass", json!({"value": 1})),
        with(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"roleRef": {}, "subjects": [{"kind": "User"}]}),
        ),
    ]
}

#[test]
fn defaulting_twice_changes_nothing_more() {
    // Upstream defaults on every decode, including of what it created and stored, so a
    // second pass over a created object must find nothing to do.
    for (resource, mut object) in samples() {
        apply(resource, &mut object);
        let once = object.clone();
        apply(resource, &mut object);
        assert_eq!(object, once, "{}", resource.kind);
        prepare_for_create(resource, &mut object);
        let created = object.clone();
        apply(resource, &mut object);
        assert_eq!(object, created, "{} after creation", resource.kind);
    }
}

/// Every scalar of `value` with its JSON pointer.
fn scalar_paths(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                scalar_paths(
                    child,
                    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter().enumerate() {
                scalar_paths(child, format!("{path}/{i}"), out);
            }
        }
        _ => out.push(path),
    }
}

#[test]
fn values_the_client_set_are_never_overwritten() {
    // Every defaulted field of every sample, changed to another valid value, stays changed.
    for (resource, mut object) in samples() {
        apply(resource, &mut object);
        let mut paths = Vec::new();
        scalar_paths(&object, String::new(), &mut paths);
        for path in paths {
            // Upstream itself keeps a namespace's name label in step with its name.
            let name_label = path.ends_with("kubernetes.io~1metadata.name");
            if name_label || (resource.kind == "Namespace" && path == "/metadata/name") {
                continue;
            }
            let mut changed = object.clone();
            let other = match changed.pointer(&path) {
                Some(Value::String(s)) if !s.is_empty() => json!(format!("{s}-set")),
                Some(Value::Number(n)) => json!(n.as_i64().unwrap_or(0) + 7),
                Some(Value::Bool(b)) => json!(!b),
                _ => continue,
            };
            *changed.pointer_mut(&path).unwrap() = other;
            let want = changed.clone();
            apply(resource, &mut changed);
            assert_eq!(changed, want, "{} {path}", resource.kind);
        }
    }
}

#[test]
fn wrongly_typed_fields_are_skipped_without_panicking() {
    let odd =
        [json!(null), json!(true), json!(7), json!("x"), json!([1, "y"]), json!({}), json!([])];
    for (resource, sample) in samples() {
        let mut paths = Vec::new();
        scalar_paths(&sample, String::new(), &mut paths);
        // Containers too: replace every object and list on the way to each scalar.
        let mut prefixes: Vec<String> = paths
            .iter()
            .flat_map(|p| p.match_indices('/').map(|(i, _)| p[..i].to_owned()).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .collect();
        prefixes.extend(paths);
        prefixes.sort();
        prefixes.dedup();
        for path in prefixes {
            for value in &odd {
                let mut object = sample.clone();
                *object.pointer_mut(&path).unwrap() = value.clone();
                apply(resource, &mut object);
                prepare_for_create(resource, &mut object);
                // A value of a type upstream cannot decode there is reported, not replaced.
                let is_unset_like = value.is_null() || value == &json!({}) || value == &json!([]);
                if !is_unset_like && sample.pointer(&path).is_some_and(|v| !same_type(v, value)) {
                    assert_eq!(object.pointer(&path), Some(value), "{} {path}", resource.kind);
                }
            }
        }
    }
    // Whole bodies of the wrong shape, for every served kind.
    for resource in RESOURCES {
        for value in odd.iter().filter(|v| !v.is_object()) {
            let mut object = value.clone();
            apply(resource, &mut object);
            prepare_for_create(resource, &mut object);
            assert_eq!(&object, value, "{}", resource.kind);
        }
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}
