//! Table-driven tests per kind: a valid object passes, and each invalid variant yields
//! exactly the expected cause paths.

use serde_json::{Value, json};

use super::*;
use crate::registry::find;

fn resource(group: &str, plural: &str) -> &'static Resource {
    find(group, "v1", plural).unwrap_or_else(|| panic!("{group}/{plural} is served"))
}

/// The object as the server validates it: defaulted, named, namespaced.
fn prepared(resource: &Resource, mut object: Value) -> Value {
    if resource.namespaced && object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = json!("default");
    }
    object["metadata"]["uid"] = json!("6c3a1f4e-0000-4000-8000-000000000001");
    crate::defaults::apply(resource, &mut object);
    crate::defaults::prepare_for_create(resource, &mut object);
    object
}

/// Sets (or, for null, removes) the value at a JSON pointer, creating objects on the way.
fn set(object: &mut Value, pointer: &str, value: Value) {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let (last, parents) = parts.split_last().expect("a pointer");
    let mut at = object;
    for part in parents {
        at = match at {
            Value::Array(items) => &mut items[part.parse::<usize>().expect("an index")],
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other.as_object_mut().unwrap().entry(part.replace("~1", "/")).or_insert(json!({}))
            }
        };
    }
    let last = last.replace("~1", "/");
    match (at, value) {
        (Value::Array(items), v) => match last.parse::<usize>().expect("an index") {
            i if i == items.len() => items.push(v),
            i => items[i] = v,
        },
        (Value::Object(map), Value::Null) => {
            map.remove(&last);
        }
        (Value::Object(map), v) => {
            map.insert(last, v);
        }
        (other, v) => {
            *other = json!({ last: v });
        }
    }
}

fn fields(causes: &[Cause]) -> Vec<String> {
    let mut fields: Vec<String> = causes.iter().map(|c| c.field.clone()).collect();
    fields.sort();
    fields
}

type Case<'a> = (&'a str, Vec<(&'a str, Value)>, Vec<&'a str>);

/// The valid object passes; every case's changes yield exactly its cause paths.
fn check(group: &str, plural: &str, valid: Value, cases: Vec<Case>) {
    let resource = resource(group, plural);
    let base = prepared(resource, valid.clone());
    let causes = validate_create(resource, &base);
    assert!(causes.is_empty(), "{plural}: the valid object is refused: {causes:#?}");
    for (name, changes, expected) in cases {
        let mut object = valid.clone();
        for (pointer, value) in changes {
            set(&mut object, pointer, value);
        }
        let object = prepared(resource, object);
        let causes = validate_create(resource, &object);
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(fields(&causes), expected, "{plural}: {name}: {causes:#?}");
    }
}

fn update_fields(
    group: &str,
    plural: &str,
    old: Value,
    changes: Vec<(&str, Value)>,
) -> Vec<String> {
    let resource = resource(group, plural);
    let old = prepared(resource, old);
    let mut new = old.clone();
    for (pointer, value) in changes {
        set(&mut new, pointer, value);
    }
    crate::defaults::apply(resource, &mut new);
    fields(&validate_update(resource, &old, &new, None))
}

fn pod_spec() -> Value {
    json!({"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]})
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": pod_spec()})
}

#[test]
fn object_meta_names_labels_annotations_and_owners() {
    let valid = json!({"metadata": {"name": "settings", "labels": {"app": "web"}}});
    check(
        "",
        "configmaps",
        valid,
        vec![
            ("uppercase name", vec![("/metadata/name", json!("Settings"))], vec!["metadata.name"]),
            (
                "long name, also not a subdomain",
                vec![("/metadata/name", json!(format!("-{}", "a".repeat(253))))],
                vec!["metadata.name", "metadata.name"],
            ),
            (
                "bad generateName",
                vec![("/metadata/generateName", json!("Web-"))],
                vec!["metadata.generateName"],
            ),
            ("label key", vec![("/metadata/labels/bad key", json!("x"))], vec!["metadata.labels"]),
            ("label value", vec![("/metadata/labels/app", json!("-x-"))], vec!["metadata.labels"]),
            (
                "label key prefix",
                vec![("/metadata/labels/Example.com~1app", json!("x"))],
                vec!["metadata.labels"],
            ),
            (
                "annotation key",
                vec![("/metadata/annotations/a~1b~1c", json!("x"))],
                vec!["metadata.annotations"],
            ),
            (
                "annotations over 256 KiB",
                vec![("/metadata/annotations/big", json!("x".repeat(262_145)))],
                vec!["metadata.annotations"],
            ),
            (
                "owner reference without uid",
                vec![(
                    "/metadata/ownerReferences",
                    json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": ""}]),
                )],
                vec!["metadata.ownerReferences.uid"],
            ),
            (
                "two controllers",
                vec![(
                    "/metadata/ownerReferences",
                    json!([
                        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
                        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": true}
                    ]),
                )],
                vec!["metadata.ownerReferences"],
            ),
            (
                "unqualified finalizer",
                vec![("/metadata/finalizers", json!(["hold"]))],
                vec!["metadata.finalizers"],
            ),
            (
                "orphan and foreground together",
                vec![("/metadata/finalizers", json!(["orphan", "foregroundDeletion"]))],
                vec!["metadata.finalizers"],
            ),
            ("bad data key", vec![("/data/a b", json!("x"))], vec!["data[a b]"]),
            ("data key '..'", vec![("/data/..", json!("x"))], vec!["data[..]"]),
            (
                "key in data and binaryData",
                vec![("/data/k", json!("x")), ("/binaryData/k", json!("eA=="))],
                vec!["data[k]"],
            ),
        ],
    );
}

#[test]
fn messages_use_upstream_wording() {
    let resource = resource("", "configmaps");
    let object = prepared(resource, json!({"metadata": {"name": "Bad"}}));
    let causes = validate_create(resource, &object);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldValueInvalid");
    assert_eq!(
        causes[0].to_string(),
        "metadata.name: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let pod = resource_pod_with(json!({"restartPolicy": "Sometimes"}));
    let causes = validate_create(self::resource("", "pods"), &pod);
    assert_eq!(
        causes[0].to_string(),
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert_eq!(causes[0].reason, "FieldValueNotSupported");
    let pod = resource_pod_with(json!({"containers": [{"name": "a", "image": ""}]}));
    let causes = validate_create(self::resource("", "pods"), &pod);
    assert_eq!(causes[0].to_string(), "spec.containers[0].image: Required value");
}

fn resource_pod_with(spec_changes: Value) -> Value {
    let mut pod = json!({"metadata": {"name": "p"}, "spec": pod_spec()});
    for (k, v) in spec_changes.as_object().unwrap() {
        pod["spec"][k] = v.clone();
    }
    prepared(resource("", "pods"), pod)
}

#[test]
fn pods() {
    let valid = json!({
        "metadata": {"name": "web"},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "MODE", "value": "prod"}, {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "64Mi"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}},
            }],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
        }
    });
    let c = "/spec/containers/0";
    check(
        "",
        "pods",
        valid,
        vec![
            ("no containers", vec![("/spec/containers", json!([]))], vec!["spec.containers"]),
            (
                "no image",
                vec![(&format!("{c}/image"), json!(""))],
                vec!["spec.containers[0].image"],
            ),
            (
                "bad container name",
                vec![(&format!("{c}/name"), json!("Web"))],
                vec!["spec.containers[0].name"],
            ),
            (
                "container name shared with an init container",
                vec![("/spec/initContainers/0/name", json!("web"))],
                vec!["spec.containers[0].name"],
            ),
            (
                "port out of range",
                vec![(&format!("{c}/ports/0/containerPort"), json!(70000))],
                vec!["spec.containers[0].ports[0].containerPort"],
            ),
            (
                "port protocol",
                vec![(&format!("{c}/ports/0/protocol"), json!("HTTP"))],
                vec!["spec.containers[0].ports[0].protocol"],
            ),
            (
                "duplicate port names",
                vec![(
                    &format!("{c}/ports"),
                    json!([{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}]),
                )],
                vec!["spec.containers[0].ports[1].name"],
            ),
            (
                "env name with '='",
                vec![(&format!("{c}/env/0/name"), json!("A=B"))],
                vec!["spec.containers[0].env[0].name"],
            ),
            (
                "env value and valueFrom",
                vec![(&format!("{c}/env/1/value"), json!("x"))],
                vec!["spec.containers[0].env[1].valueFrom"],
            ),
            (
                "mount of a missing volume",
                vec![(&format!("{c}/volumeMounts/0/name"), json!("cache"))],
                vec!["spec.containers[0].volumeMounts[0].name"],
            ),
            (
                "volume with two sources",
                vec![("/spec/volumes/0/hostPath", json!({"path": "/srv"}))],
                vec!["spec.volumes[0].hostPath", "spec.containers[0].volumeMounts[0].name"],
            ),
            (
                "duplicate volumes",
                vec![(
                    "/spec/volumes",
                    json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]),
                )],
                vec!["spec.volumes[1].name"],
            ),
            (
                "probe with two handlers",
                vec![(&format!("{c}/livenessProbe/tcpSocket"), json!({"port": 80}))],
                vec!["spec.containers[0].livenessProbe.tcpSocket"],
            ),
            (
                "probe without a handler",
                vec![(&format!("{c}/livenessProbe"), json!({"periodSeconds": 5}))],
                vec!["spec.containers[0].livenessProbe"],
            ),
            (
                "liveness success threshold",
                vec![(&format!("{c}/livenessProbe/successThreshold"), json!(2))],
                vec!["spec.containers[0].livenessProbe.successThreshold"],
            ),
            (
                "request above limit",
                vec![(&format!("{c}/resources/requests/cpu"), json!("2"))],
                vec!["spec.containers[0].resources.requests"],
            ),
            (
                "bad quantity",
                vec![(&format!("{c}/resources/limits/memory"), json!("lots"))],
                // The request defaults to the limit.
                vec![
                    "spec.containers[0].resources.limits[memory]",
                    "spec.containers[0].resources.requests[memory]",
                ],
            ),
            (
                "unknown resource",
                vec![(&format!("{c}/resources/limits/gpu"), json!("1"))],
                vec![
                    "spec.containers[0].resources.limits[gpu]",
                    "spec.containers[0].resources.requests[gpu]",
                ],
            ),
            (
                "restart policy",
                vec![("/spec/restartPolicy", json!("Sometimes"))],
                vec!["spec.restartPolicy"],
            ),
            ("dns policy", vec![("/spec/dnsPolicy", json!("Google"))], vec!["spec.dnsPolicy"]),
            (
                "dns policy None without dnsConfig",
                vec![("/spec/dnsPolicy", json!("None"))],
                vec!["spec.dnsConfig"],
            ),
            (
                "pull policy",
                vec![(&format!("{c}/imagePullPolicy"), json!("Sometimes"))],
                vec!["spec.containers[0].imagePullPolicy"],
            ),
            (
                "toleration value with Exists",
                vec![("/spec/tolerations/0/value", json!("v"))],
                vec!["spec.tolerations[0].operator"],
            ),
            (
                "tolerationSeconds without NoExecute",
                vec![("/spec/tolerations/0/effect", json!("NoSchedule"))],
                vec!["spec.tolerations[0].effect"],
            ),
            (
                "deadline",
                vec![("/spec/activeDeadlineSeconds", json!(0))],
                vec!["spec.activeDeadlineSeconds"],
            ),
            (
                "node selector",
                vec![("/spec/nodeSelector", json!({"k": "-"}))],
                vec!["spec.nodeSelector"],
            ),
            (
                "init container probe",
                vec![(
                    "/spec/initContainers/0/readinessProbe",
                    json!({"exec": {"command": ["true"]}}),
                )],
                vec!["spec.initContainers[0].readinessProbe"],
            ),
        ],
    );
}

#[test]
fn pod_updates_may_change_images_deadlines_and_added_tolerations_only() {
    let pod = json!({"metadata": {"name": "web"}, "spec": pod_spec()});
    let image = vec![("/spec/containers/0/image", json!("nginx:1.28"))];
    assert!(update_fields("", "pods", pod.clone(), image).is_empty());
    let toleration = json!([{"key": "k", "operator": "Exists"}]);
    assert!(
        update_fields("", "pods", pod.clone(), vec![("/spec/tolerations", toleration)]).is_empty()
    );
    let deadline = vec![("/spec/activeDeadlineSeconds", json!(30))];
    assert!(update_fields("", "pods", pod.clone(), deadline).is_empty());
    let port = vec![("/spec/containers/0/ports/0/containerPort", json!(81))];
    assert_eq!(update_fields("", "pods", pod.clone(), port), ["spec"]);
    let added = json!([{"name": "web", "image": "nginx:1.27"}, {"name": "b", "image": "b"}]);
    assert_eq!(update_fields("", "pods", pod, vec![("/spec/containers", added)]), ["spec"]);
}

#[test]
fn workloads_selectors_must_match_their_templates() {
    let labels = json!({"app": "web"});
    let deployment = json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template(labels.clone())}
    });
    let common = || -> Vec<Case<'static>> {
        vec![
            (
                "selector does not match",
                vec![("/spec/selector/matchLabels/app", json!("api"))],
                vec!["spec.template.metadata.labels"],
            ),
            ("no selector", vec![("/spec/selector", Value::Null)], vec!["spec.selector"]),
            ("empty selector", vec![("/spec/selector", json!({}))], vec!["spec.selector"]),
            (
                "bad operator",
                vec![(
                    "/spec/selector/matchExpressions",
                    json!([{"key": "app", "operator": "Equals", "values": ["web"]}]),
                )],
                vec!["spec.selector.matchExpressions[0].operator"],
            ),
            (
                "In without values",
                vec![(
                    "/spec/selector/matchExpressions",
                    json!([{"key": "app", "operator": "In"}]),
                )],
                vec!["spec.selector.matchExpressions[0].values"],
            ),
            (
                "template restart policy",
                vec![("/spec/template/spec/restartPolicy", json!("Never"))],
                vec!["spec.template.spec.restartPolicy"],
            ),
            (
                "template label value",
                vec![("/spec/template/metadata/labels/tier", json!("-"))],
                vec!["spec.template.labels"],
            ),
        ]
    };
    let mut cases = common();
    cases.extend([
        ("negative replicas", vec![("/spec/replicas", json!(-1))], vec!["spec.replicas"]),
        (
            "strategy type",
            vec![("/spec/strategy", json!({"type": "Blue"}))],
            vec!["spec.strategy"],
        ),
        (
            "both zero",
            vec![("/spec/strategy", json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}))],
            vec!["spec.strategy.rollingUpdate.maxUnavailable"],
        ),
        (
            "over 100%",
            vec![("/spec/strategy", json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}))],
            vec!["spec.strategy.rollingUpdate.maxUnavailable"],
        ),
        (
            "Recreate with rollingUpdate",
            vec![("/spec/strategy", json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}))],
            vec!["spec.strategy.rollingUpdate"],
        ),
        (
            "progress deadline not above minReadySeconds",
            vec![("/spec/minReadySeconds", json!(700))],
            vec!["spec.progressDeadlineSeconds"],
        ),
    ]);
    check("apps", "deployments", deployment.clone(), cases);
    check("apps", "replicasets", deployment.clone(), common());
    let mut daemon_set = deployment.clone();
    daemon_set["spec"].as_object_mut().unwrap().remove("replicas");
    check("apps", "daemonsets", daemon_set, common());
    let mut stateful_set = deployment.clone();
    stateful_set["spec"]["serviceName"] = json!("web");
    let mut cases = common();
    cases.push((
        "pod management policy",
        vec![("/spec/podManagementPolicy", json!("Random"))],
        vec!["spec.podManagementPolicy"],
    ));
    check("apps", "statefulsets", stateful_set.clone(), cases);
    let rc = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": labels, "template": template(labels.clone())}});
    check(
        "",
        "replicationcontrollers",
        rc,
        vec![
            (
                "mismatch",
                vec![("/spec/selector/app", json!("api"))],
                vec!["spec.template.metadata.labels"],
            ),
            ("negative replicas", vec![("/spec/replicas", json!(-3))], vec!["spec.replicas"]),
        ],
    );
    let selector = vec![
        ("/spec/selector/matchLabels", json!({"app": "web", "v": "2"})),
        ("/spec/template/metadata/labels/v", json!("2")),
    ];
    assert_eq!(
        update_fields("apps", "deployments", deployment.clone(), selector),
        ["spec.selector"]
    );
    assert!(
        update_fields(
            "apps",
            "deployments",
            deployment.clone(),
            vec![("/spec/replicas", json!(5))]
        )
        .is_empty()
    );
    let name = vec![("/spec/serviceName", json!("other"))];
    assert_eq!(update_fields("apps", "statefulsets", stateful_set.clone(), name), ["spec"]);
    let image = vec![("/spec/template/spec/containers/0/image", json!("nginx:2"))];
    assert!(update_fields("apps", "statefulsets", stateful_set, image).is_empty());
}

#[test]
fn jobs_and_cron_jobs() {
    let job = json!({"metadata": {"name": "pi"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}});
    check(
        "batch",
        "jobs",
        job.clone(),
        vec![
            (
                "restart policy Always",
                vec![("/spec/template/spec/restartPolicy", json!("Always"))],
                vec!["spec.template.spec.restartPolicy"],
            ),
            (
                "negative backoff",
                vec![("/spec/backoffLimit", json!(-1))],
                vec!["spec.backoffLimit"],
            ),
            (
                "Indexed without completions",
                vec![("/spec/completionMode", json!("Indexed")), ("/spec/parallelism", json!(2))],
                vec!["spec.completions"],
            ),
            (
                "manual selector that does not match",
                vec![
                    ("/spec/manualSelector", json!(true)),
                    ("/spec/selector", json!({"matchLabels": {"a": "b"}})),
                ],
                vec!["spec.template.metadata.labels"],
            ),
        ],
    );
    let template = vec![("/spec/template/spec/containers/0/image", json!("perl:2"))];
    assert_eq!(update_fields("batch", "jobs", job.clone(), template), ["spec.template"]);
    assert!(
        update_fields("batch", "jobs", job.clone(), vec![("/spec/parallelism", json!(3))])
            .is_empty()
    );
    let cron = json!({"metadata": {"name": "nightly"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": job["spec"].clone().as_object().map(|s| json!({"spec": s})).unwrap()}});
    check(
        "batch",
        "cronjobs",
        cron,
        vec![
            ("bad schedule", vec![("/spec/schedule", json!("every day"))], vec!["spec.schedule"]),
            ("minute 61", vec![("/spec/schedule", json!("61 * * * *"))], vec!["spec.schedule"]),
            (
                "concurrency",
                vec![("/spec/concurrencyPolicy", json!("Sometimes"))],
                vec!["spec.concurrencyPolicy"],
            ),
            ("long name", vec![("/metadata/name", json!("n".repeat(53)))], vec!["metadata.name"]),
            (
                "selector in template",
                vec![("/spec/jobTemplate/spec/selector", json!({"matchLabels": {"a": "b"}}))],
                vec!["spec.jobTemplate.spec.selector"],
            ),
        ],
    );
}

#[test]
fn services() {
    let valid = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}});
    check(
        "",
        "services",
        valid.clone(),
        vec![
            ("DNS-1035 name", vec![("/metadata/name", json!("1web"))], vec!["metadata.name"]),
            ("no ports", vec![("/spec/ports", json!([]))], vec!["spec.ports"]),
            (
                "port 0, which the target port defaults to",
                vec![("/spec/ports/0/port", json!(0))],
                vec!["spec.ports[0].port", "spec.ports[0].targetPort"],
            ),
            (
                "duplicate port",
                vec![(
                    "/spec/ports",
                    json!([{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
                )],
                vec!["spec.ports[1]"],
            ),
            (
                "unnamed ports",
                vec![("/spec/ports", json!([{"port": 80}, {"port": 81}]))],
                vec!["spec.ports[0].name", "spec.ports[1].name"],
            ),
            ("type", vec![("/spec/type", json!("Public"))], vec!["spec.type"]),
            (
                "nodePort on ClusterIP",
                vec![("/spec/ports/0/nodePort", json!(30080))],
                vec!["spec.ports[0].nodePort"],
            ),
            (
                "protocol",
                vec![("/spec/ports/0/protocol", json!("ICMP"))],
                vec!["spec.ports[0].protocol"],
            ),
            (
                "target port name",
                vec![("/spec/ports/0/targetPort", json!("Http_Port"))],
                vec!["spec.ports[0].targetPort"],
            ),
            (
                "session affinity",
                vec![("/spec/sessionAffinity", json!("Cookie"))],
                vec!["spec.sessionAffinity"],
            ),
            ("selector value", vec![("/spec/selector/app", json!("a b"))], vec!["spec.selector"]),
            (
                "clusterIPs disagree",
                vec![
                    ("/spec/clusterIP", json!("10.43.0.5")),
                    ("/spec/clusterIPs", json!(["10.43.0.6"])),
                ],
                vec!["spec.clusterIPs"],
            ),
            (
                "ExternalName without a name",
                vec![("/spec/type", json!("ExternalName")), ("/spec/ports", json!([]))],
                vec!["spec.externalName"],
            ),
        ],
    );
    let mut allocated = valid;
    allocated["spec"]["clusterIP"] = json!("10.43.0.10");
    let changed = vec![("/spec/clusterIP", json!("10.43.0.11"))];
    assert_eq!(update_fields("", "services", allocated, changed), ["spec.clusterIPs[0]"]);
}

#[test]
fn config_maps_and_secrets_marked_immutable_keep_their_data() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
    assert_eq!(
        update_fields("", "configmaps", cm.clone(), vec![("/data/a", json!("2"))]),
        ["data"]
    );
    assert_eq!(
        update_fields("", "configmaps", cm.clone(), vec![("/immutable", json!(false))]),
        ["immutable"]
    );
    assert!(
        update_fields("", "configmaps", cm, vec![("/metadata/labels", json!({"a": "b"}))])
            .is_empty()
    );
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
    assert_eq!(
        update_fields("", "secrets", secret.clone(), vec![("/type", json!("kubernetes.io/tls"))]),
        ["data[tls.crt]", "data[tls.key]", "type"]
    );
    check(
        "",
        "secrets",
        secret,
        vec![
            (
                "tls without keys",
                vec![("/type", json!("kubernetes.io/tls"))],
                vec!["data[tls.crt]", "data[tls.key]"],
            ),
            (
                "token without account",
                vec![("/type", json!("kubernetes.io/service-account-token"))],
                vec!["metadata.annotations[kubernetes.io/service-account.name]"],
            ),
            ("bad key", vec![("/data/a~1b", json!("MQ=="))], vec!["data[a/b]"]),
        ],
    );
}

#[test]
fn cluster_objects() {
    check(
        "",
        "namespaces",
        json!({"metadata": {"name": "team-a"}}),
        vec![
            (
                "subdomain is not a label",
                vec![("/metadata/name", json!("team.a"))],
                vec!["metadata.name"],
            ),
            ("finalizer", vec![("/spec/finalizers", json!(["keep"]))], vec!["spec.finalizers"]),
        ],
    );
    check(
        "",
        "nodes",
        json!({"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        vec![
            (
                "taint effect",
                vec![("/spec/taints/0/effect", json!("Never"))],
                vec!["spec.taints[0].effect"],
            ),
            (
                "duplicate taint",
                vec![("/spec/taints/1", json!({"key": "k", "effect": "NoSchedule"}))],
                vec!["spec.taints[1]"],
            ),
            ("cidr", vec![("/spec/podCIDRs", json!(["10.42.1.0"]))], vec!["spec.podCIDRs[0]"]),
        ],
    );
    let cidr = vec![("/spec/podCIDRs", json!(["10.42.2.0/24"]))];
    let node = json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.42.1.0/24"]}});
    assert_eq!(update_fields("", "nodes", node, cidr), ["spec.podCIDRs"]);
    check(
        "scheduling.k8s.io",
        "priorityclasses",
        json!({"metadata": {"name": "high"}, "value": 1000}),
        vec![
            ("too high", vec![("/value", json!(2_000_000_000))], vec!["value"]),
            (
                "reserved prefix",
                vec![("/metadata/name", json!("system-mine"))],
                vec!["metadata.name"],
            ),
            ("preemption", vec![("/preemptionPolicy", json!("Always"))], vec!["preemptionPolicy"]),
        ],
    );
    let class = json!({"metadata": {"name": "high"}, "value": 1000});
    assert_eq!(
        update_fields("scheduling.k8s.io", "priorityclasses", class, vec![("/value", json!(5))]),
        ["value"]
    );
}

#[test]
fn namespaced_api_objects() {
    check(
        "coordination.k8s.io",
        "leases",
        json!({"metadata": {"name": "node-1"}, "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}),
        vec![(
            "zero duration",
            vec![("/spec/leaseDurationSeconds", json!(0))],
            vec!["spec.leaseDurationSeconds"],
        )],
    );
    check(
        "policy",
        "poddisruptionbudgets",
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        vec![
            ("both", vec![("/spec/maxUnavailable", json!(1))], vec!["spec"]),
            ("percent", vec![("/spec/minAvailable", json!("120%"))], vec!["spec.minAvailable"]),
            ("bad percent", vec![("/spec/minAvailable", json!("half"))], vec!["spec.minAvailable"]),
        ],
    );
    check(
        "discovery.k8s.io",
        "endpointslices",
        json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"name": "http", "port": 80}]}),
        vec![
            (
                "address",
                vec![("/endpoints/0/addresses/0", json!("fd00::1"))],
                vec!["endpoints[0].addresses[0]"],
            ),
            (
                "no addresses",
                vec![("/endpoints/0/addresses", json!([]))],
                vec!["endpoints[0].addresses"],
            ),
            ("address type", vec![("/addressType", json!("MAC"))], vec!["addressType"]),
        ],
    );
    check(
        "",
        "endpoints",
        json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        vec![(
            "ip",
            vec![("/subsets/0/addresses/0/ip", json!("ten"))],
            vec!["subsets[0].addresses[0].ip"],
        )],
    );
    check(
        "",
        "events",
        json!({"metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "reason": "Started"}),
        vec![(
            "other namespace",
            vec![("/involvedObject/namespace", json!("other"))],
            vec!["involvedObject.namespace"],
        )],
    );
    check(
        "",
        "resourcequotas",
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "requests.cpu": "4", "count/deployments.apps": "2"}}}),
        vec![
            (
                "unknown resource",
                vec![("/spec/hard/widgets", json!("1"))],
                vec!["spec.hard[widgets]"],
            ),
            ("negative", vec![("/spec/hard/pods", json!("-1"))], vec!["spec.hard[pods]"]),
            ("scope", vec![("/spec/scopes", json!(["Sometimes"]))], vec!["spec.scopes"]),
        ],
    );
    check(
        "",
        "limitranges",
        json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}}]}}),
        vec![
            (
                "min above max",
                vec![("/spec/limits/0/min/cpu", json!("3"))],
                vec![
                    "spec.limits[0].min[cpu]",
                    "spec.limits[0].default[cpu]",
                    "spec.limits[0].defaultRequest[cpu]",
                ],
            ),
            ("type", vec![("/spec/limits/0/type", json!("Cluster"))], vec!["spec.limits[0].type"]),
        ],
    );
}

#[test]
fn rbac_and_certificates() {
    check(
        "rbac.authorization.k8s.io",
        "roles",
        json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        vec![
            ("no verbs", vec![("/rules/0/verbs", json!([]))], vec!["rules[0].verbs"]),
            ("no groups", vec![("/rules/0/apiGroups", json!([]))], vec!["rules[0].apiGroups"]),
            ("slash in name", vec![("/metadata/name", json!("a/b"))], vec!["metadata.name"]),
        ],
    );
    check(
        "rbac.authorization.k8s.io",
        "clusterroles",
        json!({"metadata": {"name": "system:reader"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
        vec![(
            "mixed rule",
            vec![("/rules/0/resources", json!(["pods"]))],
            vec!["rules[0].nonResourceURLs"],
        )],
    );
    let binding = json!({
        "metadata": {"name": "read"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}, {"kind": "User", "name": "jane"}]
    });
    check(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        binding.clone(),
        vec![
            (
                "Role in a cluster binding",
                vec![("/roleRef/kind", json!("Role"))],
                vec!["roleRef.kind"],
            ),
            (
                "account without namespace",
                vec![("/subjects/0/namespace", Value::Null)],
                vec!["subjects[0].namespace"],
            ),
            ("subject kind", vec![("/subjects/1/kind", json!("Robot"))], vec!["subjects[1].kind"]),
        ],
    );
    let role_ref = vec![("/roleRef/name", json!("edit"))];
    assert_eq!(
        update_fields("rbac.authorization.k8s.io", "clusterrolebindings", binding, role_ref),
        ["roleRef"]
    );
    let pem = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
    );
    check(
        "certificates.k8s.io",
        "certificatesigningrequests",
        json!({"metadata": {"name": "csr-1"}, "spec": {"request": pem, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}}),
        vec![
            ("no usages", vec![("/spec/usages", json!([]))], vec!["spec.usages"]),
            ("usage", vec![("/spec/usages/0", json!("flying"))], vec!["spec.usages[0]"]),
            ("signer", vec![("/spec/signerName", json!("local"))], vec!["spec.signerName"]),
            ("request", vec![("/spec/request", json!("aGVsbG8="))], vec!["spec.request"]),
        ],
    );
}

#[test]
fn status_updates_check_metadata_and_counts_only() {
    let resource = resource("apps", "deployments");
    let labels = json!({"app": "web"});
    let old = prepared(
        resource,
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": labels}, "template": template(labels.clone())}}),
    );
    let mut new = old.clone();
    new["status"] = json!({"replicas": 1, "readyReplicas": 1});
    assert!(validate_update(resource, &old, &new, Some("status")).is_empty());
    new["status"]["replicas"] = json!(-1);
    assert_eq!(fields(&validate_update(resource, &old, &new, Some("status"))), ["status.replicas"]);
}

#[test]
fn other_workload_and_template_kinds() {
    let labels = json!({"app": "agent"});
    let daemon_set = json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": labels}, "template": template(labels.clone())}
    });
    check(
        "apps",
        "daemonsets",
        daemon_set,
        vec![
            (
                "strategy type",
                vec![("/spec/updateStrategy", json!({"type": "Always"}))],
                vec!["spec.updateStrategy"],
            ),
            (
                "both zero",
                vec![(
                    "/spec/updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
                )],
                vec!["spec.updateStrategy.rollingUpdate.maxUnavailable"],
            ),
            (
                "deadline",
                vec![("/spec/template/spec/activeDeadlineSeconds", json!(10))],
                vec!["spec.template.spec.activeDeadlineSeconds"],
            ),
        ],
    );
    check(
        "",
        "podtemplates",
        json!({"metadata": {"name": "t"}, "template": template(json!({"a": "b"}))}),
        vec![(
            "container image",
            vec![("/template/spec/containers/0/image", json!(" nginx"))],
            vec!["template.spec.containers[0].image"],
        )],
    );
    check(
        "apps",
        "controllerrevisions",
        json!({"metadata": {"name": "web-1"}, "data": {"spec": {}}, "revision": 1}),
        vec![
            ("no data", vec![("/data", Value::Null)], vec!["data"]),
            ("negative revision", vec![("/revision", json!(-1))], vec!["revision"]),
        ],
    );
    let revision = json!({"metadata": {"name": "web-1"}, "data": {"a": 1}, "revision": 1});
    assert_eq!(
        update_fields("apps", "controllerrevisions", revision, vec![("/data/a", json!(2))]),
        ["data"]
    );
    check(
        "",
        "serviceaccounts",
        json!({"metadata": {"name": "builder"}}),
        vec![("name", vec![("/metadata/name", json!("Builder"))], vec!["metadata.name"])],
    );
}

#[test]
fn new_style_events_name_their_reporter_and_action() {
    let event = json!({
        "metadata": {"name": "web.17a"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reportingComponent": "replicaset-controller",
        "action": "Create",
        "reason": "SuccessfulCreate",
        "type": "Normal"
    });
    check(
        "events.k8s.io",
        "events",
        event.clone(),
        vec![
            (
                "no controller",
                vec![("/reportingComponent", Value::Null)],
                vec!["reportingController"],
            ),
            ("no action", vec![("/action", Value::Null)], vec!["action"]),
            ("type", vec![("/type", json!("Odd"))], vec!["type"]),
            ("long reason", vec![("/reason", json!("r".repeat(129)))], vec!["reason"]),
        ],
    );
    check("", "events", event, vec![("no reason", vec![("/reason", json!(""))], vec!["reason"])]);
}
