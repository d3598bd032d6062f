//! Server-side apply end to end: `kubectl apply --server-side` creating, changing and pruning
//! fields, conflicts between managers and `--force-conflicts`, the move from client-side
//! apply, dry runs, YAML bodies, and kube-rs' `Patch::Apply`.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

async fn client(server: &CapstanServer) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn manifest(replicas: u32, labels: &str) -> String {
    format!(
        "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
{labels}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox:1
        ports:
        - containerPort: 80
"
    )
}

fn get(kubectl: &Kubectl) -> Value {
    let out = kubectl.ok(&["get", "deployment", "web", "-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

/// The managedFields entry of `manager` for `operation`.
fn entry(object: &Value, manager: &str, operation: &str) -> Option<Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .cloned()
}

/// `manager/operation` of every managedFields entry kubectl made, sorted (the Deployment
/// controller's own writes — revision annotation, status — are entries of its own).
fn managers(object: &Value) -> Vec<String> {
    let entries = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = entries
        .iter()
        .filter(|e| e["manager"].as_str().is_some_and(|m| m.starts_with("kubectl")))
        .map(|e| format!("{}/{}", e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap()))
        .collect();
    names.sort();
    names
}

#[test]
fn apply_creates_changes_and_removes_fields_and_records_ownership() {
    let server = server();
    let kubectl = server.kubectl();
    let apply = ["apply", "--server-side", "-f", "-"];
    let out = kubectl.ok_with_input(&apply, &manifest(2, "    tier: front"));
    assert!(out.contains("serverside-applied"), "{out}");

    let created = get(&kubectl);
    assert_eq!(created["spec"]["replicas"], 2);
    // Defaults are applied as on any create.
    assert_eq!(created["spec"]["strategy"]["type"], "RollingUpdate");
    let owned = entry(&created, "kubectl", "Apply").expect("kubectl's Apply entry");
    assert_eq!(owned["fieldsType"], "FieldsV1");
    assert_eq!(
        owned["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            ["f:ports"],
        json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );
    assert_eq!(owned["fieldsV1"]["f:spec"]["f:selector"], json!({}));
    assert_eq!(managers(&created), ["kubectl/Apply"], "defaults are nobody's");

    // The manifest drops the label and changes replicas: the label goes, replicas follow.
    kubectl.ok_with_input(&apply, &manifest(3, ""));
    let changed = get(&kubectl);
    assert_eq!(changed["spec"]["replicas"], 3);
    assert_eq!(changed["metadata"]["labels"], json!({"app": "web"}));
    let owned = entry(&changed, "kubectl", "Apply").unwrap();
    assert!(owned["fieldsV1"]["f:metadata"]["f:labels"].get("f:tier").is_none());

    // Applying the same manifest again writes nothing.
    let before = changed["metadata"]["resourceVersion"].clone();
    kubectl.ok_with_input(&apply, &manifest(3, ""));
    assert_eq!(get(&kubectl)["metadata"]["resourceVersion"], before);

    // A label another manager set survives the applier not mentioning it.
    kubectl.ok(&["label", "deployment", "web", "owner=ops"]);
    let labelled = get(&kubectl);
    let label_entry = entry(&labelled, "kubectl-label", "Update").expect("kubectl label's entry");
    assert_eq!(label_entry["fieldsV1"], json!({"f:metadata": {"f:labels": {"f:owner": {}}}}));
    kubectl.ok_with_input(&apply, &manifest(3, ""));
    assert_eq!(get(&kubectl)["metadata"]["labels"]["owner"], "ops");

    // The in-process controllers' writes are recorded under upstream's component name.
    wait_until("the Deployment controller's status write is recorded", WAIT, || {
        let object = get(&kubectl);
        let entries = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        entries.iter().any(|e| {
            e["manager"] == "kube-controller-manager"
                && e["operation"] == "Update"
                && e["subresource"] == "status"
        })
    });
}

#[test]
fn conflicts_name_the_other_manager_and_force_takes_the_field_over() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.ok_with_input(
        &["apply", "--server-side", "--field-manager=alice", "-f", "-"],
        &manifest(2, ""),
    );
    let bob = ["apply", "--server-side", "--field-manager=bob", "-f", "-"];
    let out = kubectl.run_with_input(&bob, &manifest(5, ""));
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"),
        "{}",
        out.stderr
    );
    assert_eq!(get(&kubectl)["spec"]["replicas"], 2, "a conflict changes nothing");

    // The same values are shared, not conflicts.
    kubectl.ok_with_input(&bob, &manifest(2, ""));

    let forced = ["apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-"];
    kubectl.ok_with_input(&forced, &manifest(5, ""));
    let object = get(&kubectl);
    assert_eq!(object["spec"]["replicas"], 5);
    let alice = entry(&object, "alice", "Apply").unwrap();
    assert!(alice["fieldsV1"]["f:spec"].get("f:replicas").is_none(), "alice lost replicas");
    let bob_entry = entry(&object, "bob", "Apply").unwrap();
    assert_eq!(bob_entry["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
}

#[test]
fn client_side_apply_conflicts_then_migrates_to_server_side_apply() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.ok_with_input(&["apply", "-f", "-"], &manifest(2, ""));
    let csa = get(&kubectl);
    assert!(entry(&csa, "kubectl-client-side-apply", "Update").is_some(), "{:?}", managers(&csa));

    // Another manager changing what client-side apply set conflicts with it, by name.
    let out = kubectl.run_with_input(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        &manifest(4, ""),
    );
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"),
        "{}",
        out.stderr
    );

    // kubectl itself takes client-side apply's fields over.
    kubectl.ok_with_input(&["apply", "--server-side", "-f", "-"], &manifest(4, ""));
    let migrated = get(&kubectl);
    assert_eq!(migrated["spec"]["replicas"], 4);
    // kubectl moves client-side apply's fields to its own entry, and keeps the annotation
    // under a manager of its own.
    assert_eq!(managers(&migrated), ["kubectl-last-applied/Apply", "kubectl/Apply"]);
    let owned = entry(&migrated, "kubectl", "Apply").unwrap();
    assert_eq!(owned["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // The last-applied annotation follows, so client-side apply keeps working.
    let last: Value = serde_json::from_str(
        migrated["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("annotation kept"),
    )
    .unwrap();
    assert_eq!(last["spec"]["replicas"], 4);

    // And a later server-side apply dropping a field removes it.
    kubectl.ok_with_input(&["apply", "--server-side", "-f", "-"], &manifest(4, "    extra: one"));
    kubectl.ok_with_input(&["apply", "--server-side", "-f", "-"], &manifest(4, ""));
    assert_eq!(get(&kubectl)["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn dry_run_apply_stores_nothing() {
    let server = server();
    let kubectl = server.kubectl();
    let out = kubectl.ok_with_input(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &manifest(1, ""),
    );
    assert!(out.contains("server dry run"), "{out}");
    kubectl.assert_not_found(&["deployment", "web"]);

    kubectl.ok_with_input(&["apply", "--server-side", "-f", "-"], &manifest(1, ""));
    kubectl.ok_with_input(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        &manifest(7, ""),
    );
    assert_eq!(get(&kubectl)["spec"]["replicas"], 1);
}

#[test]
fn unknown_fields_follow_field_validation() {
    let server = server();
    let kubectl = server.kubectl();
    let with_unknown = manifest(1, "").replace("  replicas: 1", "  replicas: 1\n  bogus: 1");
    let out = kubectl.run_with_input(&["apply", "--server-side", "-f", "-"], &with_unknown);
    assert!(!out.success && out.stderr.contains("unknown field"), "{}", out.stderr);
    let out = kubectl
        .run_with_input(&["apply", "--server-side", "--validate=warn", "-f", "-"], &with_unknown);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stderr.contains("unknown field"), "{}", out.stderr);
}

#[tokio::test]
async fn kube_rs_applies_yaml_and_json_and_options_are_checked() {
    let server = server();
    let client = client(&server).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let config = deployment(2);
    let params = PatchParams::apply("rs-manager");
    let applied = api.patch("web", &params, &Patch::Apply(&config)).await.unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(2));
    let fields = applied.metadata.managed_fields.unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].manager.as_deref(), Some("rs-manager"));
    assert_eq!(fields[0].operation.as_deref(), Some("Apply"));

    // Force takes over another manager's field.
    let mut more = config.clone();
    more["spec"]["replicas"] = json!(6);
    let conflict = api.patch("web", &PatchParams::apply("other"), &Patch::Apply(&more)).await;
    match conflict {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
            assert!(status.message.contains("\"rs-manager\""), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api.patch("web", &PatchParams::apply("other").force(), &Patch::Apply(&more)).await;
    assert_eq!(forced.unwrap().spec.unwrap().replicas, Some(6));

    // A YAML body, as curl users send it; and apply without a field manager is refused.
    let url = "/apis/apps/v1/namespaces/default/deployments/yaml-web";
    let yaml = manifest(1, "").replace("name: web\n", "name: yaml-web\n");
    let request = |query: &str| {
        http::Request::patch(format!("{url}{query}"))
            .header("Content-Type", "application/apply-patch+yaml")
            .body(yaml.clone().into_bytes())
            .unwrap()
    };
    let created: Value =
        serde_json::from_str(&client.request_text(request("?fieldManager=curl")).await.unwrap())
            .unwrap();
    assert_eq!(created["metadata"]["name"], "yaml-web");
    assert_eq!(created["spec"]["replicas"], 1);
    match client.request_text(request("")).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422);
            assert!(status.message.contains("fieldManager: Required value"), "{}", status.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test]
async fn applies_to_the_scale_and_status_subresources_are_owned_under_them() {
    let server = server();
    let client = client(&server).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.patch("web", &PatchParams::apply("deployer"), &Patch::Apply(&deployment(2))).await.unwrap();

    // An autoscaler applying a Scale conflicts over replicas until it forces.
    let scale = json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 5}
    });
    match api.patch_scale("web", &PatchParams::apply("autoscaler"), &Patch::Apply(&scale)).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(status.message.contains("\"deployer\""), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = PatchParams::apply("autoscaler").force();
    let answer = api.patch_scale("web", &forced, &Patch::Apply(&scale)).await.unwrap();
    assert_eq!(answer.spec.unwrap().replicas, Some(5), "the answer is the Scale");
    let scaled = api.get("web").await.unwrap();
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(5));
    let fields = scaled.metadata.managed_fields.unwrap();
    let autoscaler = fields.iter().find(|f| f.manager.as_deref() == Some("autoscaler")).unwrap();
    assert_eq!(autoscaler.subresource.as_deref(), Some("scale"));
    assert_eq!(autoscaler.operation.as_deref(), Some("Apply"));
    assert_eq!(
        serde_json::to_value(autoscaler.fields_v1.as_ref().unwrap()).unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    let deployer = fields.iter().find(|f| f.manager.as_deref() == Some("deployer")).unwrap();
    let deployer = serde_json::to_value(deployer.fields_v1.as_ref().unwrap()).unwrap();
    assert!(deployer["f:spec"].get("f:replicas").is_none(), "forcing took replicas over");

    // A Deployment is not a Scale.
    match api.patch_scale("web", &forced, &Patch::Apply(&deployment(3))).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 400, "{}", status.message),
        other => panic!("expected 400, got {other:?}"),
    }

    // Status applied through /status is owned there and leaves the spec alone.
    let status = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "status": {"conditions": [{"type": "Audited", "status": "True"}]}
    });
    let auditor = PatchParams::apply("auditor").force();
    let applied = api.patch_status("web", &auditor, &Patch::Apply(&status)).await.unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(5));
    let fields = applied.metadata.managed_fields.unwrap();
    let auditor = fields.iter().find(|f| f.manager.as_deref() == Some("auditor")).unwrap();
    assert_eq!(auditor.subresource.as_deref(), Some("status"));
    let owned = serde_json::to_value(auditor.fields_v1.as_ref().unwrap()).unwrap();
    assert!(owned["f:status"]["f:conditions"].get("k:{\"type\":\"Audited\"}").is_some(), "{owned}");
    assert!(owned.get("f:spec").is_none(), "{owned}");
}

/// `manifest(replicas, "")` as JSON, for kube-rs.
fn deployment(replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "busybox:1"}]}
            }
        }
    })
}
