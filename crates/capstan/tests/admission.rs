//! Admission as a user meets it through kubectl: service accounts, priority classes, default
//! tolerations, and the per-namespace objects the controllers publish.

use std::path::Path;
use std::time::{Duration, Instant};

use capstan_testkit::{CapstanServer, Kubectl};

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
fn new_namespaces_get_a_default_account_and_the_root_ca() {
    let server = start(&[]);
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "namespace", "team"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(kubectl.run(&["get", "serviceaccount", "default", "-n", "team"]).success
        && kubectl.run(&["get", "configmap", "kube-root-ca.crt", "-n", "team"]).success)
    {
        assert!(Instant::now() < deadline, "the namespace's default account and root CA appear");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubectl.run(&["get", "serviceaccount", "default", "-n", "team"]).success {
        assert!(Instant::now() < deadline, "the default account is re-created");
        std::thread::sleep(Duration::from_millis(100));
    }
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
