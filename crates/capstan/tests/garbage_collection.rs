//! Cascading deletion through kubectl: background, foreground and orphan deletion of owners,
//! dangling dependents, and namespace deletion removing everything in the namespace.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn start() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("capstan starts")
}

fn uid(kubectl: &Kubectl, args: &[&str]) -> String {
    let mut get = vec!["get"];
    get.extend_from_slice(args);
    get.extend_from_slice(&["-o", "jsonpath={.metadata.uid}"]);
    kubectl.ok(&get)
}

fn exists(kubectl: &Kubectl, args: &[&str]) -> bool {
    let mut get = vec!["get"];
    get.extend_from_slice(args);
    kubectl.run(&get).success
}

/// A ConfigMap owned by `owner` (a ConfigMap of `owner_uid`), held by `finalizers`.
fn dependent_configmap(name: &str, owner: &str, owner_uid: &str, finalizers: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  finalizers: [{finalizers}]
  ownerReferences:
  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {owner_uid}, blockOwnerDeletion: true}}
"
    )
}

fn dependent_pod(name: &str, owner: &str, owner_uid: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  ownerReferences:
  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {owner_uid}, controller: true}}
spec:
  containers: [{{name: c, image: busybox}}]
"
    )
}

fn owner_with_dependents(kubectl: &Kubectl, owner: &str) -> String {
    kubectl.ok(&["create", "configmap", owner]);
    let owner_uid = uid(kubectl, &["configmap", owner]);
    kubectl.create(&dependent_configmap(&format!("{owner}-cm"), owner, &owner_uid, ""));
    kubectl.create(&dependent_pod(&format!("{owner}-pod"), owner, &owner_uid));
    owner_uid
}

#[test]
fn background_deletion_removes_dependents_of_every_kind() {
    let server = start();
    let kubectl = server.kubectl();
    owner_with_dependents(&kubectl, "bg");
    kubectl.ok(&["delete", "configmap", "bg"]);
    wait_until("the dependents are collected", WAIT, || {
        !exists(&kubectl, &["configmap", "bg-cm"]) && !exists(&kubectl, &["pod", "bg-pod"])
    });
}

#[test]
fn foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone() {
    let server = start();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "configmap", "fg"]);
    let owner_uid = uid(&kubectl, &["configmap", "fg"]);
    kubectl.create(&dependent_configmap("fg-cm", "fg", &owner_uid, "example.com/hold"));
    kubectl.ok(&["delete", "configmap", "fg", "--cascade=foreground", "--wait=false"]);
    wait_until("the dependent is being deleted", WAIT, || {
        !kubectl
            .ok(&["get", "configmap", "fg-cm", "-o", "jsonpath={.metadata.deletionTimestamp}"])
            .is_empty()
    });
    let finalizers =
        kubectl.ok(&["get", "configmap", "fg", "-o", "jsonpath={.metadata.finalizers}"]);
    assert!(finalizers.contains("foregroundDeletion"), "owner finalizers: {finalizers}");
    assert!(
        !kubectl
            .ok(&["get", "configmap", "fg", "-o", "jsonpath={.metadata.deletionTimestamp}"])
            .is_empty()
    );

    kubectl.ok(&[
        "patch",
        "configmap",
        "fg-cm",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until("the owner goes after its dependent", WAIT, || {
        !exists(&kubectl, &["configmap", "fg-cm"]) && !exists(&kubectl, &["configmap", "fg"])
    });
}

#[test]
fn orphan_deletion_keeps_dependents_without_owner_references() {
    let server = start();
    let kubectl = server.kubectl();
    owner_with_dependents(&kubectl, "or");
    kubectl.ok(&["delete", "configmap", "or", "--cascade=orphan"]);
    wait_until("the owner is gone", WAIT, || !exists(&kubectl, &["configmap", "or"]));
    for dependent in [["configmap", "or-cm"], ["pod", "or-pod"]] {
        let refs = kubectl.ok(&[
            "get",
            dependent[0],
            dependent[1],
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ]);
        assert_eq!(refs, "", "{dependent:?} still has owner references");
    }
    // Orphans stay orphans: nothing collects them later either.
    std::thread::sleep(Duration::from_secs(2));
    assert!(exists(&kubectl, &["configmap", "or-cm"]) && exists(&kubectl, &["pod", "or-pod"]));
}

#[test]
fn dependents_of_an_owner_that_never_existed_are_collected() {
    let server = start();
    let kubectl = server.kubectl();
    kubectl.create(&dependent_pod("stray", "ghost", "00000000-0000-0000-0000-000000000000"));
    kubectl.ok(&["create", "configmap", "kept"]);
    let kept_uid = uid(&kubectl, &["configmap", "kept"]);
    kubectl.create(&dependent_pod("owned", "kept", &kept_uid));
    wait_until("the dangling pod is collected", WAIT, || !exists(&kubectl, &["pod", "stray"]));
    assert!(exists(&kubectl, &["pod", "owned"]), "a pod with a live owner was collected");
}

#[test]
fn deleting_a_namespace_removes_everything_in_it() {
    let server = start();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "namespace", "doomed"]);
    let n = ["-n", "doomed"];
    kubectl.ok(&["create", "configmap", "c", n[0], n[1]]);
    kubectl.ok(&["create", "secret", "generic", "s", n[0], n[1]]);
    kubectl.ok(&["create", "deployment", "d", "--image=busybox", n[0], n[1]]);
    kubectl.ok(&["create", "service", "clusterip", "svc", "--tcp=80:8080", n[0], n[1]]);
    kubectl.ok(&["run", "p", "--image=busybox", n[0], n[1]]);
    kubectl.ok(&["create", "role", "r", "--verb=get", "--resource=pods", n[0], n[1]]);
    kubectl.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    wait_until("the namespace is gone", WAIT, || !exists(&kubectl, &["namespace", "doomed"]));
    for kind in ["configmaps", "secrets", "deployments", "services", "pods", "roles", "endpoints"] {
        let left = kubectl.ok(&["get", kind, n[0], n[1], "-o", "name"]);
        assert_eq!(left, "", "{kind} left in a deleted namespace");
    }
}

#[test]
fn a_terminating_namespace_reports_what_holds_it_in_its_conditions() {
    let server = start();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "namespace", "held"]);
    kubectl.create(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: held\n  \
         finalizers: [example.com/keep]\n",
    );
    kubectl.ok(&["delete", "namespace", "held", "--wait=false"]);
    let condition = |kind: &str, field: &str| {
        kubectl.ok(&[
            "get",
            "namespace",
            "held",
            "-o",
            &format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].{field}}}"),
        ])
    };
    wait_until("the namespace reports the finalizer holding it", WAIT, || {
        condition("NamespaceFinalizersRemaining", "reason") == "SomeFinalizersRemain"
    });
    assert_eq!(
        condition("NamespaceFinalizersRemaining", "message"),
        "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
    );
    assert_eq!(condition("NamespaceContentRemaining", "status"), "True");
    assert_eq!(
        condition("NamespaceContentRemaining", "message"),
        "Some resources are remaining: configmaps has 1 resource instances"
    );
    assert_eq!(condition("NamespaceDeletionContentFailure", "reason"), "ContentDeleted");
    assert_eq!(condition("NamespaceDeletionDiscoveryFailure", "reason"), "ResourcesDiscovered");
    let phase = kubectl.ok(&["get", "namespace", "held", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");

    kubectl.ok(&[
        "patch",
        "configmap",
        "kept",
        "-n",
        "held",
        "--type=merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ]);
    wait_until("the namespace goes once the finalizer is removed", WAIT, || {
        !exists(&kubectl, &["namespace", "held"])
    });
}
