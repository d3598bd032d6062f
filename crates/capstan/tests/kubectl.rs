//! The API server driven by the real `/usr/bin/kubectl`: reads, writes, watches, discovery and
//! errors as a Kubernetes user meets them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use capstan_testkit::{CapstanServer, wait_until};

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

const CONFIGMAP: &str = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: web
    tier: front
data:
  color: blue
";

#[test]
fn bootstrap_namespaces_and_the_kubernetes_service_exist() {
    let server = server();
    let kubectl = server.kubectl();
    let names = kubectl.ok(&["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.split_whitespace().any(|n| n == ns), "{ns} in {names}");
    }
    let ip = kubectl.ok(&["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(ip, "10.43.0.1");
    let table = kubectl.ok(&["get", "namespaces"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("Active"), "{table}");
}

#[test]
fn create_get_and_delete_a_configmap() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(CONFIGMAP);
    assert_eq!(
        kubectl.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.color}"]),
        "blue"
    );
    let yaml = kubectl.ok(&["get", "cm", "settings", "-o", "yaml", "--show-managed-fields"]);
    for field in ["uid:", "creationTimestamp:", "resourceVersion:", "managedFields:"] {
        assert!(yaml.contains(field), "{field} in\n{yaml}");
    }
    let again = kubectl.run_with_input(&["create", "-f", "-"], CONFIGMAP);
    assert!(!again.success);
    assert!(
        again.stderr.contains("AlreadyExists") || again.stderr.contains("already exists"),
        "{}",
        again.stderr
    );
    let deleted = kubectl.ok(&["delete", "configmap", "settings"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    kubectl.assert_not_found(&["configmap", "settings"]);
}

#[test]
fn label_and_field_selectors_filter_lists() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(CONFIGMAP);
    kubectl.create(
        &CONFIGMAP.replace("name: settings", "name: other").replace("tier: front", "tier: back"),
    );
    let names = |args: &[&str]| {
        let mut all = vec!["get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}"];
        all.extend_from_slice(args);
        kubectl.ok(&all)
    };
    assert_eq!(names(&["-l", "tier=front"]), "settings");
    assert_eq!(names(&["-l", "tier in (front,back),app=web"]), "other settings");
    assert_eq!(names(&["-l", "app,tier notin (front)"]), "other");
    assert_eq!(names(&["--field-selector", "metadata.name=other"]), "other");
    assert_eq!(names(&["--field-selector", "metadata.name!=other", "-l", "app"]), "settings");
    let bad = kubectl.run(&["get", "configmaps", "--field-selector", "spec.nope=1"]);
    assert!(!bad.success && bad.stderr.contains("field label not supported"), "{}", bad.stderr);
    let labels = kubectl.ok(&["get", "configmaps", "-l", "app=web", "--show-labels"]);
    assert!(
        labels.contains("app=web,tier=front") || labels.contains("app=web,tier=back"),
        "{labels}"
    );
    let column = kubectl.ok(&["get", "configmaps", "-l", "app=web", "-L", "tier"]);
    assert!(column.contains("TIER") && column.contains("front"), "{column}");
}

#[test]
fn lists_page_with_chunk_size_and_span_namespaces() {
    let server = server();
    let kubectl = server.kubectl();
    for i in 0..7 {
        kubectl.create(&CONFIGMAP.replace("name: settings", &format!("name: cm-{i}")));
    }
    kubectl.create(&CONFIGMAP.replace("metadata:", "metadata:\n  namespace: kube-public"));
    let paged =
        kubectl.ok(&["get", "configmaps", "-l", "app=web", "--chunk-size", "2", "-o", "name"]);
    assert_eq!(paged.lines().count(), 7, "{paged}");
    let all = kubectl.ok(&["get", "configmaps", "-A", "-l", "app=web"]);
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(all.contains("kube-public") && all.contains("cm-6"), "{all}");
}

#[test]
fn replace_with_a_stale_resource_version_is_a_conflict() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(CONFIGMAP);
    let stale = kubectl.ok(&["get", "configmap", "settings", "-o", "yaml"]);
    let newer = stale.replace("color: blue", "color: green");
    let out = kubectl.run_with_input(&["replace", "-f", "-"], &newer);
    assert!(out.success, "{}", out.stderr);
    let out = kubectl
        .run_with_input(&["replace", "-f", "-"], &stale.replace("color: blue", "color: red"));
    assert!(!out.success);
    assert!(out.stderr.contains("the object has been modified"), "{}", out.stderr);
    assert_eq!(
        kubectl.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.color}"]),
        "green"
    );
}

#[test]
fn deleting_an_object_with_a_finalizer_leaves_it_terminating() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(&CONFIGMAP.replace("metadata:", "metadata:\n  finalizers: [example.com/hold]"));
    kubectl.ok(&["delete", "configmap", "settings", "--wait=false"]);
    let stamp = kubectl.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!stamp.is_empty(), "deletionTimestamp is set");
    // Removing the last finalizer lets the deletion finish.
    let held = kubectl.ok(&["get", "configmap", "settings", "-o", "json"]);
    let released = held.replace("\"example.com/hold\"", "");
    let out = kubectl.run_with_input(
        &["replace", "-f", "-"],
        &released.replace("\"finalizers\": [\n            \n        ],", ""),
    );
    assert!(out.success, "{}", out.stderr);
    kubectl.assert_not_found(&["configmap", "settings"]);
}

#[test]
fn namespaced_objects_need_an_existing_namespace() {
    let server = server();
    let kubectl = server.kubectl();
    let out = kubectl.run_with_input(
        &["create", "-f", "-"],
        &CONFIGMAP.replace("metadata:", "metadata:\n  namespace: nowhere"),
    );
    assert!(!out.success);
    assert!(out.stderr.contains("namespaces \"nowhere\" not found"), "{}", out.stderr);
    kubectl.create("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: somewhere\n");
    kubectl.create(&CONFIGMAP.replace("metadata:", "metadata:\n  namespace: somewhere"));
}

#[test]
fn watch_streams_changes_as_table_rows() {
    let server = server();
    let kubectl = server.kubectl();
    let mut watch = kubectl.spawn(&["get", "configmaps", "-w", "--output-watch-events"]);
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    kubectl.create(CONFIGMAP);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("ADDED") && l.contains("settings")) {
        assert!(Instant::now() < deadline, "no ADDED event: {seen:?}");
        seen.push(lines.next().expect("watch output").unwrap());
    }
    kubectl.ok(&["delete", "configmap", "settings"]);
    while !seen.iter().any(|l: &String| l.contains("DELETED") && l.contains("settings")) {
        assert!(Instant::now() < deadline, "no DELETED event: {seen:?}");
        seen.push(lines.next().expect("watch output").unwrap());
    }
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn discovery_serves_api_resources_and_get_all() {
    let server = server();
    let kubectl = server.kubectl();
    let resources = kubectl.ok(&["api-resources"]);
    for row in ["deployments", "deploy", "apps/v1", "Deployment", "configmaps", "cm", "leases"] {
        assert!(resources.contains(row), "{row} in\n{resources}");
    }
    let all = kubectl.ok(&["get", "all", "-A"]);
    assert!(all.contains("service/kubernetes"), "{all}");
}

#[test]
fn explain_reads_the_openapi_schemas() {
    let server = server();
    let out = server.kubectl().ok(&["explain", "deployment.spec.strategy"]);
    assert!(out.contains("DeploymentStrategy describes how to replace existing pods"), "{out}");
    assert!(out.contains("rollingUpdate"), "{out}");
}

const LIST: &str = "
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: first
  data:
    a: b
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: second
  DATA_FIELD:
    c: d
";

#[test]
fn list_input_is_validated_against_the_schema_and_created() {
    let server = server();
    let kubectl = server.kubectl();
    let bad = kubectl.run_with_input(&["create", "-f", "-"], &LIST.replace("DATA_FIELD", "dataa"));
    assert!(!bad.success);
    assert!(bad.stderr.contains("dataa"), "{}", bad.stderr);
    let good = kubectl.run_with_input(&["create", "-f", "-"], &LIST.replace("DATA_FIELD", "data"));
    assert!(good.success, "{}", good.stderr);
    assert_eq!(
        kubectl
            .ok(&["get", "cm", "-o", "name"])
            .lines()
            .filter(|l| l.contains("first") || l.contains("second"))
            .count(),
        2
    );
}

#[test]
fn describe_and_wide_output_work() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(CONFIGMAP);
    let described = kubectl.ok(&["describe", "configmap", "settings"]);
    assert!(
        described.contains("Name:")
            && described.contains("settings")
            && described.contains("color"),
        "{described}"
    );
    let wide = kubectl.ok(&["get", "service", "kubernetes", "-o", "wide"]);
    assert!(wide.contains("SELECTOR"), "{wide}");
}

#[test]
fn deleting_a_namespace_deletes_its_contents_then_the_namespace() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: doomed\n");
    kubectl.create(&CONFIGMAP.replace("metadata:", "metadata:\n  namespace: doomed"));
    let held = "metadata:\n  namespace: doomed\n  finalizers: [example.com/hold]";
    kubectl.create(&CONFIGMAP.replace("name: settings", "name: held").replace("metadata:", held));
    kubectl.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let phase = kubectl.ok(&["get", "namespace", "doomed", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    // Nothing new may be created in a terminating namespace.
    let late = kubectl.run_with_input(
        &["create", "-f", "-"],
        &CONFIGMAP
            .replace("name: settings", "name: late")
            .replace("metadata:", "metadata:\n  namespace: doomed"),
    );
    assert!(!late.success && late.stderr.contains("being terminated"), "{}", late.stderr);
    // The namespace waits for its last object's finalizer, then goes.
    let patch = kubectl.ok(&["get", "configmap", "held", "-n", "doomed", "-o", "json"]);
    let released = patch.replace("\"example.com/hold\"", "");
    let out = kubectl.run_with_input(&["replace", "-f", "-"], &released);
    assert!(out.success, "{}", out.stderr);
    let waited = kubectl.run(&["wait", "--for=delete", "namespace/doomed", "--timeout=60s"]);
    assert!(waited.success, "{}", waited.stderr);
    let leftovers = kubectl.ok(&["get", "configmaps", "-n", "doomed", "-o", "name"]);
    assert!(leftovers.trim().is_empty(), "{leftovers}");
}

const SCHEDULED_POD: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  nodeName: node-1
  terminationGracePeriodSeconds: 45
  containers:
  - name: app
    image: busybox
";

#[test]
fn a_scheduled_pod_terminates_gracefully_unless_forced() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(SCHEDULED_POD);
    assert_eq!(kubectl.ok(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]), "Pending");
    kubectl.ok(&["delete", "pod", "web", "--wait=false"]);
    // The node finishes a graceful deletion; until then the pod shows as Terminating.
    let grace =
        kubectl.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.deletionGracePeriodSeconds}"]);
    assert_eq!(grace, "45");
    let table = kubectl.ok(&["get", "pod", "web"]);
    assert!(table.contains("Terminating"), "{table}");
    let forced = kubectl.run(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    assert!(forced.success, "{}", forced.stderr);
    kubectl.assert_not_found(&["pod", "web"]);
}

#[test]
fn an_unscheduled_pod_is_deleted_at_once() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(&SCHEDULED_POD.replace("  nodeName: node-1\n", ""));
    kubectl.ok(&["delete", "pod", "web"]);
    kubectl.assert_not_found(&["pod", "web"]);
}

#[test]
fn events_expire_after_the_event_ttl() {
    let server =
        CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &["--event-ttl", "2s"])
            .expect("capstan server starts");
    let kubectl = server.kubectl();
    kubectl.create(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: short-lived\ninvolvedObject:\n  kind: ConfigMap\n  name: x\n  namespace: default\nreason: Tested\nmessage: soon gone\ntype: Normal\n",
    );
    assert!(kubectl.ok(&["get", "events"]).contains("Tested"));
    wait_until("the event expires", Duration::from_secs(60), || {
        !kubectl.run(&["get", "event", "short-lived"]).success
    });
}

#[test]
fn kinds_without_a_controller_yet_warn_on_write() {
    let server = server();
    let kubectl = server.kubectl();
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n";
    let out = kubectl.run_with_input(&["create", "-f", "-"], job);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stderr.contains("Warning: capstan has no Job controller yet"), "{}", out.stderr);
    let listed = kubectl.run(&["get", "jobs"]);
    assert!(!listed.stderr.contains("Warning"), "reads do not warn: {}", listed.stderr);
}

const DEPLOYMENT: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
";

#[test]
fn scale_label_annotate_and_merge_or_json_patches() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(DEPLOYMENT);
    kubectl.ok(&["scale", "deployment", "web", "--replicas=3"]);
    kubectl.ok(&["label", "deployment", "web", "tier=front"]);
    kubectl.ok(&["annotate", "deployment", "web", "note=hi"]);
    kubectl.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    let get =
        |path: &str| kubectl.ok(&["get", "deployment", "web", "-o", &format!("jsonpath={path}")]);
    assert_eq!(get("{.spec.replicas}"), "3");
    assert_eq!(get("{.metadata.labels.tier}"), "front");
    assert_eq!(get("{.metadata.annotations.note}"), "hi");
    assert_eq!(get("{.spec.paused}"), "true");
    assert_eq!(
        get("{.metadata.generation}"),
        "3",
        "scale and pause changed the spec, labels did not"
    );

    kubectl.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":5}]"#,
    ]);
    assert_eq!(get("{.spec.replicas}"), "5");
    // A patch that does not apply is refused and changes nothing.
    let bad = kubectl.run(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/nothing"}]"#,
    ]);
    assert!(!bad.success && bad.stderr.contains("does not apply"), "{}", bad.stderr);
    let typed = kubectl.run(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":"many"}}"#,
    ]);
    assert!(!typed.success, "a patch producing a wrongly typed field is refused");
    let too_many: Vec<String> = (0..10_001)
        .map(|_| r#"{"op":"test","path":"/kind","value":"Deployment"}"#.to_owned())
        .collect();
    let file = server.data_dir().join("huge-patch.json");
    std::fs::write(&file, format!("[{}]", too_many.join(","))).unwrap();
    let huge = kubectl.run(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "--patch-file",
        file.to_str().unwrap(),
    ]);
    assert!(!huge.success && huge.stderr.contains("maximum operations"), "{}", huge.stderr);
    assert_eq!(get("{.spec.replicas}"), "5");
}

#[test]
fn services_get_unique_cluster_ips_and_node_ports_released_on_delete() {
    let server = server();
    let kubectl = server.kubectl();
    let service = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{extra}  selector:\n    app: web\n  ports:\n  - port: 80\n"
        )
    };
    kubectl.create(&service("a", ""));
    kubectl.create(&service("b", "  type: NodePort\n"));
    kubectl.create(&service("headless", "  clusterIP: None\n"));
    let ip = |name: &str| kubectl.ok(&["get", "service", name, "-o", "jsonpath={.spec.clusterIP}"]);
    let (a, b) = (ip("a"), ip("b"));
    assert!(a.starts_with("10.43.") && b.starts_with("10.43.") && a != b, "{a} {b}");
    assert_ne!(a, "10.43.0.1", "the kubernetes Service keeps its address");
    assert_eq!(ip("headless"), "None");
    let node_port: u16 = kubectl
        .ok(&["get", "service", "b", "-o", "jsonpath={.spec.ports[0].nodePort}"])
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&node_port));
    // Asking for a taken address fails; after a delete it can be had.
    let taken = kubectl
        .run_with_input(&["create", "-f", "-"], &service("c", &format!("  clusterIP: {a}\n")));
    assert!(!taken.success && taken.stderr.contains("already allocated"), "{}", taken.stderr);
    kubectl.ok(&["delete", "service", "a"]);
    kubectl.create(&service("c", &format!("  clusterIP: {a}\n")));
    assert_eq!(ip("c"), a);
    let outside =
        kubectl.run_with_input(&["create", "-f", "-"], &service("d", "  clusterIP: 192.168.1.1\n"));
    assert!(
        !outside.success && outside.stderr.contains("not in the valid range"),
        "{}",
        outside.stderr
    );
    // Replacing a Service without its clusterIP keeps the address.
    let json = kubectl.ok(&["get", "service", "c", "-o", "json"]);
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["spec"].as_object_mut().unwrap().remove("clusterIP");
    value["spec"].as_object_mut().unwrap().remove("clusterIPs");
    let out = kubectl.run_with_input(&["replace", "-f", "-"], &value.to_string());
    assert!(out.success, "{}", out.stderr);
    assert_eq!(ip("c"), a);
}

#[test]
fn unknown_fields_fail_strict_validation_and_warn_otherwise() {
    let server = server();
    let kubectl = server.kubectl();
    let typo = CONFIGMAP.replace("\ndata:", "\ndataa:\n  x: y\ndata:");
    let strict = kubectl.run_with_input(&["create", "-f", "-"], &typo);
    assert!(!strict.success, "kubectl validates strictly by default");
    assert!(strict.stderr.contains("unknown field \"dataa\""), "{}", strict.stderr);
    let warn = kubectl.run_with_input(&["create", "--validate=warn", "-f", "-"], &typo);
    assert!(warn.success, "{}", warn.stderr);
    assert!(warn.stderr.contains("unknown field \"dataa\""), "{}", warn.stderr);
    let stored = kubectl.ok(&["get", "configmap", "settings", "-o", "json"]);
    assert!(!stored.contains("dataa"), "unknown fields are dropped: {stored}");
    let update =
        kubectl.run_with_input(&["replace", "-f", "-"], &typo.replace("color: blue", "color: red"));
    assert!(!update.success && update.stderr.contains("unknown field"), "{}", update.stderr);
    let ignore = kubectl.run_with_input(
        &["replace", "--validate=false", "-f", "-"],
        &typo.replace("color: blue", "color: red"),
    );
    assert!(ignore.success && !ignore.stderr.contains("unknown field"), "{}", ignore.stderr);
}
