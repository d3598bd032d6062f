//! Strategic merge patch end to end, as the real `/usr/bin/kubectl` sends it: `apply` of an
//! edited manifest, `set image`, `patch` in its default (strategic) type, and bad patches.

use std::path::Path;

use capstan_testkit::{CapstanServer, Kubectl};

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

/// Two containers, env vars in an order that matters, a label and a rolling-update strategy.
const MANIFEST: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1
        env:
        - name: A
          value: '1'
        - name: B
          value: '2'
        - name: C
          value: '3'
      - name: sidecar
        image: busybox:1
";

/// MANIFEST edited: web's image changed, env B and label tier removed, env C moved first, and
/// the strategy switched to Recreate (its rollingUpdate removed).
const EDITED: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy:
    type: Recreate
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:2
        env:
        - name: C
          value: '3'
        - name: A
          value: '1'
      - name: sidecar
        image: busybox:1
";

fn apply(kubectl: &Kubectl, manifest: &str) -> String {
    kubectl.ok_with_input(&["apply", "-f", "-"], manifest)
}

fn get(kubectl: &Kubectl, path: &str) -> String {
    kubectl.ok(&["get", "deployment", "web", "-o", &format!("jsonpath={path}")])
}

fn env_of(kubectl: &Kubectl, container: &str) -> String {
    get(
        kubectl,
        &format!("{{.spec.template.spec.containers[?(@.name==\"{container}\")].env[*].name}}"),
    )
}

#[test]
fn apply_of_an_edited_manifest_drops_removed_fields_and_keeps_its_order() {
    let server = server();
    let kubectl = server.kubectl();
    assert!(apply(&kubectl, MANIFEST).contains("created"));
    assert!(apply(&kubectl, EDITED).contains("configured"));

    assert_eq!(get(&kubectl, "{.metadata.labels}"), r#"{"app":"web"}"#);
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].name}"), "web sidecar");
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].image}"), "busybox:2 busybox:1");
    // B is gone and the order follows the manifest ($setElementOrder), not the stored one.
    assert_eq!(env_of(&kubectl, "web"), "C A");
    assert_eq!(get(&kubectl, "{.spec.strategy.type}"), "Recreate");
    assert_eq!(get(&kubectl, "{.spec.strategy.rollingUpdate}"), "", "$retainKeys cleared it");

    // Applying the same manifest again changes nothing.
    let version = get(&kubectl, "{.metadata.resourceVersion}");
    assert!(apply(&kubectl, EDITED).contains("unchanged"));
    assert_eq!(get(&kubectl, "{.metadata.resourceVersion}"), version);
}

#[test]
fn set_image_on_one_container_leaves_the_other_alone() {
    let server = server();
    let kubectl = server.kubectl();
    apply(&kubectl, MANIFEST);
    kubectl.ok(&["set", "image", "deployment/web", "sidecar=busybox:3"]);
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].name}"), "web sidecar");
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].image}"), "busybox:1 busybox:3");
    assert_eq!(env_of(&kubectl, "web"), "A B C");

    kubectl.ok(&["set", "env", "deployment/web", "-c", "web", "D=4", "A=9"]);
    assert_eq!(env_of(&kubectl, "web"), "A B C D");
    assert_eq!(
        get(&kubectl, "{.spec.template.spec.containers[?(@.name==\"web\")].env[0].value}"),
        "9"
    );
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].image}"), "busybox:1 busybox:3");
}

#[test]
fn kubectl_patch_defaults_to_strategic_merge() {
    let server = server();
    let kubectl = server.kubectl();
    apply(&kubectl, MANIFEST);
    // The env list merges by name instead of being replaced. Without `$setElementOrder` a new
    // item goes ahead of the stored ones, as upstream orders it.
    kubectl.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"D","value":"4"}]}]}}}}"#,
    ]);
    assert_eq!(env_of(&kubectl, "web"), "D A B C");
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].name}"), "web sidecar");

    kubectl.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"metadata":{"labels":{"tier":null}},"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
    ]);
    assert_eq!(get(&kubectl, "{.metadata.labels}"), r#"{"app":"web"}"#);
    assert_eq!(get(&kubectl, "{.spec.template.spec.containers[*].name}"), "web");

    // The scale subresource takes strategic merge patches too.
    kubectl.ok(&[
        "patch",
        "deployment",
        "web",
        "--subresource=scale",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    assert_eq!(get(&kubectl, "{.spec.replicas}"), "3");
}

#[test]
fn bad_strategic_patches_are_refused_and_change_nothing() {
    let server = server();
    let kubectl = server.kubectl();
    apply(&kubectl, MANIFEST);
    let state = || (get(&kubectl, "{.spec}"), get(&kubectl, "{.metadata.labels}"));
    let before = state();
    let cases = [
        // A map where the schema has a list: 422.
        (r#"{"spec":{"template":{"spec":{"containers":{"name":"web"}}}}}"#, "expected a list"),
        // A merged list item without its merge key: 422.
        (r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#, "merged by \"name\""),
        // An unknown directive: 422.
        (r#"{"spec":{"$patch":"explode"}}"#, "unknown patch directive"),
        // A malformed directive: 400.
        (r#"{"spec":{"$retainKeys":"replicas"}}"#, "BadRequest"),
    ];
    for (patch, expected) in cases {
        let out = kubectl.run(&["patch", "deployment", "web", "-p", patch]);
        assert!(!out.success, "{patch} was accepted");
        assert!(out.stderr.contains(expected), "{patch}: {}", out.stderr);
    }
    let invalid = kubectl.run(&["patch", "deployment", "web", "-p", cases[0].0]);
    assert!(invalid.stderr.contains("is invalid"), "422 Invalid: {}", invalid.stderr);
    assert_eq!(state(), before);
}
