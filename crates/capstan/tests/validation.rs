//! Validation as a kubectl user meets it: invalid objects of each kind are refused with a
//! 422 naming every offending field, nothing is stored, and updates may not change immutable
//! fields.

use std::path::Path;

use capstan_testkit::{CapstanServer, Kubectl};
use serde_json::{Value, json};

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

fn meta(name: &str) -> Value {
    json!({"name": name})
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name), "spec": spec})
}

fn deployment(name: &str, selector: Value, template_labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name),
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": template_labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    })
}

/// `kubectl create` of `manifest` fails as a 422 whose text names the object and `fields`.
fn assert_refused(kubectl: &Kubectl, manifest: &Value, heading: &str, fields: &[&str]) {
    let out = kubectl.run_with_input(&["create", "-f", "-"], &manifest.to_string());
    assert!(!out.success, "{heading}: the invalid object was accepted");
    assert!(out.stderr.contains(heading), "expected {heading:?} in:\n{}", out.stderr);
    for field in fields {
        assert!(out.stderr.contains(field), "expected {field:?} in:\n{}", out.stderr);
    }
}

#[test]
fn invalid_objects_of_each_kind_are_refused_naming_every_field() {
    let server = server();
    let kubectl = server.kubectl();
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            pod("no-image", json!({"restartPolicy": "Sometimes", "containers": [{"name": "c"}]})),
            "The Pod \"no-image\" is invalid",
            vec![
                "spec.containers[0].image: Required value",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            pod(
                "twins",
                json!({"containers": [
                    {"name": "c", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                    {"name": "c", "image": "busybox", "ports": [{"containerPort": 70000}]}
                ]}),
            ),
            "The Pod \"twins\" is invalid",
            vec![
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "spec.containers[1].name: Duplicate value: \"c\"",
                "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            pod(
                "greedy",
                json!({"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
            ),
            "The Pod \"greedy\" is invalid",
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ],
        ),
        (
            deployment("mismatch", json!({"app": "web"}), json!({"app": "api"})),
            "The Deployment \"mismatch\" is invalid",
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
            ],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("1web"), "spec": {"type": "Public", "ports": [{"port": 70000}]}}),
            "The Service \"1web\" is invalid",
            vec![
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label",
                "spec.ports[0].port",
                "spec.type: Unsupported value: \"Public\"",
            ],
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"tier": "-front-"}}, "data": {"bad key": "x"}}),
            "The ConfigMap \"settings\" is invalid",
            vec![
                "metadata.labels: Invalid value: \"-front-\"",
                "data[bad key]: Invalid value: \"bad key\": a valid config key",
            ],
        ),
        (
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("forever"), "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}),
            "The Job \"forever\" is invalid",
            vec![
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("team.a")}),
            "The Namespace \"team.a\" is invalid",
            vec!["metadata.name: Invalid value: \"team.a\": a lowercase RFC 1123 label"],
        ),
        (
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("reader"), "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}),
            "The Role \"reader\" is invalid",
            vec!["rules[0].verbs: Required value: verbs must contain at least one value"],
        ),
        (
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": meta("urgent"), "value": 2_000_000_000}),
            "The PriorityClass \"urgent\" is invalid",
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
            ],
        ),
        (
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("both"), "spec": {"minAvailable": 1, "maxUnavailable": "120%"}}),
            "The PodDisruptionBudget \"both\" is invalid",
            vec![
                "spec: Invalid value",
                "minAvailable and maxUnavailable cannot be both set",
                "spec.maxUnavailable",
            ],
        ),
    ];
    for (manifest, heading, fields) in &cases {
        assert_refused(&kubectl, manifest, heading, fields);
    }
    // Nothing refused was stored.
    kubectl.assert_not_found(&["pod", "no-image"]);
    kubectl.assert_not_found(&["deployment", "mismatch"]);
    kubectl.assert_not_found(&["configmap", "settings"]);
}

#[tokio::test]
async fn refusals_carry_every_cause_in_the_status_details() {
    let server = server();
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let manifest = pod("bad", json!({"containers": [{"name": "C", "image": ""}]}));
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/pods")
        .header("content-type", "application/json")
        .body(kube::client::Body::from(manifest.to_string().into_bytes()))
        .unwrap();
    let response = client.send(request).await.expect("the server answers");
    assert_eq!(response.status().as_u16(), 422);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let status: Value = serde_json::from_slice(&bytes).expect("a Status");
    assert_eq!(status["reason"], "Invalid", "{status}");
    assert_eq!(status["details"]["kind"], "Pod");
    assert_eq!(status["details"]["name"], "bad");
    let mut fields: Vec<(&str, &str)> = status["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| (c["field"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("spec.containers[0].image", "FieldValueRequired"),
            ("spec.containers[0].name", "FieldValueInvalid")
        ],
        "{status}"
    );
    let message = status["message"].as_str().unwrap();
    assert!(message.starts_with("Pod \"bad\" is invalid: [spec.containers[0].name: "), "{message}");
}

#[test]
fn updates_may_not_change_immutable_fields() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("frozen"), "data": {"a": "1"}, "immutable": true})
            .to_string(),
    );
    let out = kubectl.run(&["patch", "configmap", "frozen", "-p", r#"{"data":{"a":"2"}}"#]);
    assert!(!out.success, "an immutable ConfigMap changed");
    assert!(
        out.stderr.contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{}",
        out.stderr
    );
    assert_eq!(kubectl.ok(&["get", "configmap", "frozen", "-o", "jsonpath={.data.a}"]), "1");

    kubectl.create(
        &pod("web", json!({"containers": [{"name": "c", "image": "busybox:1"}]})).to_string(),
    );
    kubectl.ok(&["set", "image", "pod/web", "c=busybox:2"]);
    let out = kubectl.run(&[
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/containers/0/ports","value":[{"containerPort":80}]}]"#,
    ]);
    assert!(!out.success, "a pod's ports changed");
    assert!(
        out.stderr.contains("spec: Forbidden: pod updates may not change fields other than"),
        "{}",
        out.stderr
    );
    assert_eq!(
        kubectl.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.containers[0].image}"]),
        "busybox:2"
    );

    kubectl.create(&deployment("web", json!({"app": "web"}), json!({"app": "web"})).to_string());
    let changed = deployment(
        "web",
        json!({"app": "web", "track": "canary"}),
        json!({"app": "web", "track": "canary"}),
    );
    let out = kubectl.run_with_input(&["apply", "-f", "-"], &changed.to_string());
    assert!(!out.success, "a deployment's selector changed");
    assert!(out.stderr.contains("spec.selector: Invalid value"), "{}", out.stderr);
    assert!(out.stderr.contains("field is immutable"), "{}", out.stderr);

    let scaled = kubectl.run(&["scale", "deployment", "web", "--replicas=3"]);
    assert!(scaled.success, "mutable fields still change: {}", scaled.stderr);
}

#[test]
fn server_side_apply_is_validated_like_any_write() {
    let server = server();
    let kubectl = server.kubectl();
    let mismatch = deployment("applied", json!({"app": "web"}), json!({"app": "api"}));
    let out = kubectl.run_with_input(&["apply", "--server-side", "-f", "-"], &mismatch.to_string());
    assert!(!out.success, "a selector that does not match was applied");
    assert!(out.stderr.contains("spec.template.metadata.labels: Invalid value"), "{}", out.stderr);
    kubectl.assert_not_found(&["deployment", "applied"]);

    let good = deployment("applied", json!({"app": "web"}), json!({"app": "web"}));
    kubectl.ok_with_input(&["apply", "--server-side", "-f", "-"], &good.to_string());
    let mut bad_port = good.clone();
    bad_port["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 0}]);
    let out = kubectl.run_with_input(&["apply", "--server-side", "-f", "-"], &bad_port.to_string());
    assert!(!out.success, "an invalid apply on an existing object was stored");
    assert!(
        out.stderr.contains("spec.template.spec.containers[0].ports[0].containerPort"),
        "{}",
        out.stderr
    );
}
