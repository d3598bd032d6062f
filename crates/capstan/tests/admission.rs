//! Admission as a user meets it through kubectl: service accounts, priority classes, default
//! tolerations, and the per-namespace objects the controllers publish.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};

const WAIT: Duration = Duration::from_secs(60);

const POD: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: busybox
";

fn create(kubectl: &Kubectl, yaml: &str) -> capstan_testkit::KubectlOutput {
    kubectl.run_with_input(&["create", "-f", "-"], yaml)
}

fn start(args: &[&str]) -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), args).expect("capstan starts")
}

#[test]
fn pods_get_their_account_priority_and_default_tolerations() {
    let server = start(&["--default-not-ready-toleration-seconds", "60"]);
    let kubectl = server.kubectl();
    let out = create(&kubectl, POD);
    assert!(out.success, "{}", out.stderr);
    let get = |path: &str| kubectl.ok(&["get", "pod", "p", "-o", &format!("jsonpath={path}")]);
    assert_eq!(get("{.spec.serviceAccountName}"), "default");
    assert_eq!(get("{.spec.priority}"), "0");
    let seconds =
        get("{.spec.tolerations[?(@.key==\"node.kubernetes.io/not-ready\")].tolerationSeconds}");
    assert_eq!(seconds, "60");
    let seconds =
        get("{.spec.tolerations[?(@.key==\"node.kubernetes.io/unreachable\")].tolerationSeconds}");
    assert_eq!(seconds, "300");

    let critical = POD
        .replace("name: p\n", "name: q\n")
        .replace("spec:\n", "spec:\n  priorityClassName: system-node-critical\n");
    let out = create(&kubectl, &critical);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(kubectl.ok(&["get", "pod", "q", "-o", "jsonpath={.spec.priority}"]), "2000001000");

    let missing_class = POD
        .replace("name: p\n", "name: r\n")
        .replace("spec:\n", "spec:\n  priorityClassName: nope\n");
    let out = create(&kubectl, &missing_class);
    assert!(
        !out.success && out.stderr.contains("no PriorityClass with name nope was found"),
        "{}",
        out.stderr
    );

    let missing_account = POD
        .replace("name: p\n", "name: s\n")
        .replace("spec:\n", "spec:\n  serviceAccountName: robot\n");
    let out = create(&kubectl, &missing_account);
    assert!(
        !out.success && out.stderr.contains("serviceaccount \"robot\" not found"),
        "{}",
        out.stderr
    );
    kubectl.ok(&["create", "serviceaccount", "robot"]);
    let out = create(&kubectl, &missing_account);
    assert!(out.success, "{}", out.stderr);
}

#[test]
fn pods_mount_their_account_token_unless_automount_is_off() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    let out = create(&kubectl, POD);
    assert!(out.success, "{}", out.stderr);
    let get =
        |pod: &str, path: &str| kubectl.ok(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    let volume = get("p", "{.spec.volumes[0].name}");
    assert!(volume.starts_with("kube-api-access-"), "{volume}");
    assert_eq!(
        get("p", "{.spec.volumes[0].projected.sources[*].serviceAccountToken.path}"),
        "token"
    );
    assert_eq!(
        get("p", "{.spec.volumes[0].projected.sources[*].configMap.name}"),
        "kube-root-ca.crt"
    );
    assert_eq!(get("p", "{.spec.containers[0].volumeMounts[0].name}"), volume);
    assert_eq!(
        get("p", "{.spec.containers[0].volumeMounts[0].mountPath}"),
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );

    kubectl.ok_with_input(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: quiet}\nautomountServiceAccountToken: false\n",
    );
    let quiet = POD
        .replace("name: p\n", "name: q\n")
        .replace("spec:\n", "spec:\n  serviceAccountName: quiet\n");
    let out = create(&kubectl, &quiet);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(get("q", "{.spec.volumes}"), "");
    // The pod's own setting wins over the account's.
    let loud = quiet
        .replace("name: q\n", "name: r\n")
        .replace("spec:\n", "spec:\n  automountServiceAccountToken: true\n");
    let out = create(&kubectl, &loud);
    assert!(out.success, "{}", out.stderr);
    assert!(get("r", "{.spec.volumes[0].name}").starts_with("kube-api-access-"));
}

#[test]
fn new_namespaces_get_a_default_account_and_the_root_ca() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "namespace", "team"]);
    wait_until("the namespace's default account and root CA appear", WAIT, || {
        kubectl.run(&["get", "serviceaccount", "default", "-n", "team"]).success
            && kubectl.run(&["get", "configmap", "kube-root-ca.crt", "-n", "team"]).success
    });
    let ca = kubectl.ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    // Deleted, the account comes back.
    kubectl.ok(&["delete", "serviceaccount", "default", "-n", "team"]);
    wait_until("the default account is re-created", WAIT, || {
        kubectl.run(&["get", "serviceaccount", "default", "-n", "team"]).success
    });
}

#[test]
fn only_one_priority_class_may_be_the_global_default() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    let class = |name: &str| {
        format!(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: 1000\nglobalDefault: true\n"
        )
    };
    assert!(create(&kubectl, &class("first")).success);
    let second = create(&kubectl, &class("second"));
    assert!(
        !second.success && second.stderr.contains("already marked as default"),
        "{}",
        second.stderr
    );
    // Pods without a class now get the default's value.
    assert!(create(&kubectl, POD).success);
    assert_eq!(
        kubectl.ok(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.spec.priorityClassName} {.spec.priority}"
        ]),
        "first 1000"
    );
}

#[test]
fn resource_quota_refuses_what_would_exceed_it() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: small\nspec:\n  hard:\n    pods: \"1\"\n    configmaps: \"3\"\n";
    assert!(create(&kubectl, quota).success);
    assert!(create(&kubectl, POD).success);
    let second = create(&kubectl, &POD.replace("name: p\n", "name: p2\n"));
    assert!(!second.success, "the second pod exceeds the quota");
    assert!(
        second.stderr.contains("pods \"p2\" is forbidden: exceeded quota: small, requested: pods=1, used: pods=1, limited: pods=1"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("Forbidden"), "{}", second.stderr);
    // The quota controller reports the usage.
    wait_until("quota status shows the pod", WAIT, || {
        kubectl.ok(&["get", "resourcequota", "small", "-o", "jsonpath={.status.used.pods}"]) == "1"
    });
    let described = kubectl.ok(&["describe", "resourcequota", "small"]);
    assert!(described.contains("pods") && described.contains("configmaps"), "{described}");
    // Once the first pod is gone there is room again.
    kubectl.ok(&["delete", "pod", "p"]);
    assert!(create(&kubectl, &POD.replace("name: p\n", "name: p2\n")).success);
    let compute = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\nspec:\n  hard:\n    requests.cpu: \"1\"\n";
    assert!(create(&kubectl, compute).success);
    let bare = create(&kubectl, &POD.replace("name: p\n", "name: p3\n"));
    assert!(!bare.success && bare.stderr.contains("must specify requests.cpu"), "{}", bare.stderr);
}

#[test]
fn limit_ranges_default_and_bound_container_resources() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    let range = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: bounds\nspec:\n  limits:\n  - type: Container\n    default:\n      cpu: 500m\n    defaultRequest:\n      cpu: 100m\n    max:\n      cpu: \"1\"\n";
    assert!(create(&kubectl, range).success);
    assert!(create(&kubectl, POD).success);
    let resources = kubectl.ok(&["get", "pod", "p", "-o", "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.cpu}"]);
    assert_eq!(resources, "100m 500m");
    let greedy = POD.replace("name: p\n", "name: big\n").replace(
        "image: busybox\n",
        "image: busybox\n    resources:\n      limits:\n        cpu: \"2\"\n",
    );
    let out = create(&kubectl, &greedy);
    assert!(
        !out.success && out.stderr.contains("maximum cpu usage per Container is 1, but limit is 2"),
        "{}",
        out.stderr
    );
}
