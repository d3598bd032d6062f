//! kubectl's generators (`kubectl create namespace|configmap|secret|deployment|…`) post through
//! client-go's typed clients, which send protobuf bodies; the objects they create must come out
//! as if kubectl had sent JSON.

use std::path::Path;

use capstan_testkit::{CapstanServer, Kubectl};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

/// `kubectl get <what> -o jsonpath=<path>`.
fn jsonpath(kubectl: &Kubectl, what: &[&str], path: &str) -> String {
    let output = format!("jsonpath={path}");
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend(["-o", &output]);
    kubectl.ok(&args)
}

#[test]
fn namespace_configmap_secret_and_serviceaccount_generators_store_their_objects() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "namespace", "foo"]);
    assert_eq!(jsonpath(&kubectl, &["namespace", "foo"], "{.status.phase}"), "Active");

    kubectl.ok(&[
        "create",
        "configmap",
        "x",
        "-n",
        "foo",
        "--from-literal=a=b",
        "--from-literal=c=d",
    ]);
    assert_eq!(jsonpath(&kubectl, &["configmap", "x", "-n", "foo"], "{.data.a},{.data.c}"), "b,d");

    kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "foo",
        "--from-literal=password=s3cr3t",
    ]);
    // Secret data is bytes: base64 in JSON, whichever way it travelled.
    assert_eq!(
        jsonpath(&kubectl, &["secret", "creds", "-n", "foo"], "{.data.password}"),
        "czNjcjN0"
    );

    kubectl.ok(&["create", "serviceaccount", "robot", "-n", "foo"]);
    assert_eq!(
        jsonpath(&kubectl, &["serviceaccount", "robot", "-n", "foo"], "{.metadata.namespace}"),
        "foo"
    );
}

#[test]
fn deployment_generator_keeps_replicas_even_zero() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "deployment", "web", "--image=busybox", "--replicas=2"]);
    assert_eq!(
        jsonpath(
            &kubectl,
            &["deployment", "web"],
            "{.spec.replicas} {.spec.selector.matchLabels.app} {.spec.template.metadata.labels.app} {.spec.template.spec.containers[0].image}"
        ),
        "2 web web busybox"
    );
    // `replicas` is a Go pointer: an explicit 0 travels as a set field and must not be
    // mistaken for an omitted one (which would default to 1).
    kubectl.ok(&["create", "deployment", "idle", "--image=busybox", "--replicas=0"]);
    assert_eq!(jsonpath(&kubectl, &["deployment", "idle"], "{.spec.replicas}"), "0");
}

#[test]
fn service_job_rbac_and_policy_generators_store_their_objects() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.ok(&["create", "service", "clusterip", "web", "--tcp=5678:8080"]);
    assert_eq!(
        jsonpath(
            &kubectl,
            &["service", "web"],
            "{.spec.ports[0].port} {.spec.ports[0].targetPort}"
        ),
        "5678 8080"
    );
    kubectl.ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    assert_eq!(
        jsonpath(&kubectl, &["job", "once"], "{.spec.template.spec.containers[0].command[0]}"),
        "true"
    );
    kubectl.ok(&["create", "role", "reader", "--verb=get,list", "--resource=pods"]);
    assert_eq!(jsonpath(&kubectl, &["role", "reader"], "{.rules[0].verbs}"), r#"["get","list"]"#);
    kubectl.ok(&["create", "rolebinding", "readers", "--role=reader", "--user=alice"]);
    assert_eq!(jsonpath(&kubectl, &["rolebinding", "readers"], "{.subjects[0].name}"), "alice");
    // IntOrString and Quantity fields keep their JSON forms.
    kubectl.ok(&["create", "pdb", "web", "--selector=app=web", "--min-available=50%"]);
    assert_eq!(jsonpath(&kubectl, &["pdb", "web"], "{.spec.minAvailable}"), "50%");
    kubectl.ok(&["create", "quota", "small", "--hard=requests.cpu=500m,pods=2"]);
    assert_eq!(
        jsonpath(&kubectl, &["quota", "small"], "{.spec.hard.requests\\.cpu} {.spec.hard.pods}"),
        "500m 2"
    );
    kubectl.ok(&["create", "priorityclass", "low", "--value=-5"]);
    assert_eq!(jsonpath(&kubectl, &["priorityclass", "low"], "{.value}"), "-5");
}

/// POSTs a protobuf body as client-go would, returning the status code and `reason`.
async fn post_protobuf(server: &CapstanServer, path: &str, body: Vec<u8>) -> (u16, String) {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/vnd.kubernetes.protobuf")
        .header("accept", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = client.send(request).await.expect("the server answers");
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let status: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    (code, status["reason"].as_str().unwrap_or_default().to_owned())
}

/// `k8s\0` and a runtime.Unknown naming a kind, with an empty object.
fn envelope(api_version: &str, kind: &str) -> Vec<u8> {
    let field = |number: u8, bytes: &[u8]| [&[number << 3 | 2, bytes.len() as u8], bytes].concat();
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta)].concat()
}

#[tokio::test]
async fn malformed_protobuf_is_a_bad_request_and_an_unknown_kind_unsupported() {
    let server = server();
    const CMS: &str = "/api/v1/namespaces/default/configmaps";
    for garbage in [&b"not protobuf"[..], b"k8s\0\x0a\xff\xff\xff", b"k8s\0\x12\x05ab"] {
        assert_eq!(post_protobuf(&server, CMS, garbage.to_vec()).await, (400, "BadRequest".into()));
    }
    assert_eq!(
        post_protobuf(&server, CMS, envelope("example.com/v1", "Widget")).await,
        (415, "UnsupportedMediaType".into())
    );
    // And the server is still up.
    server.kubectl().ok(&["get", "configmaps"]);
}
