//! Bad input never hurts: malformed, mistyped, oversized, deeply nested or misaddressed
//! requests each get a 4xx `metav1.Status`, nothing stored changes, and the server stays up.

use std::path::Path;

use capstan_testkit::CapstanServer;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

struct Api {
    client: kube::Client,
}

struct Answer {
    code: u16,
    body: Value,
}

impl Api {
    async fn new(server: &CapstanServer, anonymous: bool) -> Self {
        let mut kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
        if anonymous {
            for user in &mut kubeconfig.auth_infos {
                if let Some(auth) = user.auth_info.as_mut() {
                    auth.client_certificate_data = None;
                    auth.client_key_data = None;
                }
            }
        }
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        Self { client: kube::Client::try_from(config).unwrap() }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Vec<u8>,
    ) -> Answer {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("accept", accept)
            .body(Body::from(body))
            .unwrap();
        let response = self.client.send(request).await.expect("the server answers");
        let code = response.status().as_u16();
        let bytes =
            http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { code, body }
    }

    async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        self.send("POST", path, "application/json", "application/json", body.into()).await
    }
}

/// Asserts a `metav1.Status` failure with `code`.
fn assert_status(answer: &Answer, code: u16, reason: &str) {
    assert_eq!(answer.code, code, "{}", answer.body);
    assert_eq!(answer.body["kind"], "Status", "{}", answer.body);
    assert_eq!(answer.body["code"], code);
    assert_eq!(answer.body["reason"], reason, "{}", answer.body);
    assert!(answer.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn bad_requests_get_clear_statuses_and_change_nothing() {
    let server =
        CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("starts");
    let api = Api::new(&server, false).await;
    let good =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{"a":"b"}}"#;
    assert_eq!(api.post(CMS, good).await.code, 201);

    assert_status(&api.post(CMS, "{not json").await, 400, "BadRequest");
    assert_status(&api.post(CMS, "[1,2,3]").await, 400, "BadRequest");
    assert_status(&api.post(CMS, r#""just a string""#).await, 400, "BadRequest");
    assert_status(&api.post(CMS, r#"{"metadata":"x"}"#).await, 400, "BadRequest");
    assert_status(&api.post(CMS, r#"{"metadata":{"name":"t"},"data":5}"#).await, 400, "BadRequest");
    assert_status(
        &api.post(CMS, r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"t"}}"#)
            .await,
        400,
        "BadRequest",
    );
    assert_status(
        &api.post(CMS, r#"{"kind":"Pod","metadata":{"name":"t"}}"#).await,
        400,
        "BadRequest",
    );
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_status(&api.post(CMS, nested).await, 400, "BadRequest");
    let nested_object = format!(
        r#"{{"metadata":{{"name":"deep"}},"data":{}1{}}}"#,
        r#"{"a":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    assert_status(&api.post(CMS, nested_object).await, 400, "BadRequest");
    let huge = format!(
        r#"{{"metadata":{{"name":"huge"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    assert_status(&api.post(CMS, huge).await, 413, "RequestEntityTooLarge");
    let big_value = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    // Past a ConfigMap's 1 MiB of data, validation refuses it as upstream does.
    assert_status(&api.post(CMS, big_value).await, 422, "Invalid");
    assert_status(&api.post(CMS, r#"{"metadata":{"name":"Bad_Name"}}"#).await, 422, "Invalid");
    assert_status(&api.post(CMS, r#"{"metadata":{}}"#).await, 422, "Invalid");
    assert_status(
        &api.post(CMS, r#"{"metadata":{"name":"rv","resourceVersion":"5"}}"#).await,
        400,
        "BadRequest",
    );
    assert_status(&api.post("/api/v1/namespaces/default/foos", good).await, 404, "NotFound");
    assert_status(
        &api.post("/apis/nope.example/v1/namespaces/default/things", good).await,
        404,
        "NotFound",
    );
    assert_status(
        &api.send(
            "GET",
            "/api/v1/namespaces/default/configmaps/a/b/c",
            "",
            "application/json",
            vec![],
        )
        .await,
        404,
        "NotFound",
    );
    assert_status(&api.post("/api/v1/namespaces/missing/configmaps", good).await, 404, "NotFound");
    let yaml =
        api.send("POST", CMS, "application/x-unknown", "application/json", b"x: y".to_vec()).await;
    assert_status(&yaml, 415, "UnsupportedMediaType");
    let accept = api.send("GET", CMS, "", "application/vnd.kubernetes.protobuf", vec![]).await;
    assert_status(&accept, 406, "NotAcceptable");
    let bad_query =
        api.send("GET", &format!("{CMS}?limit=ten"), "", "application/json", vec![]).await;
    assert_status(&bad_query, 400, "BadRequest");
    let bad_selector = api
        .send("GET", &format!("{CMS}?labelSelector=a%20b"), "", "application/json", vec![])
        .await;
    assert_status(&bad_selector, 400, "BadRequest");
    let bad_timeout =
        api.send("GET", &format!("{CMS}?timeout=soon"), "", "application/json", vec![]).await;
    assert_status(&bad_timeout, 400, "BadRequest");
    let timed = api.send("GET", &format!("{CMS}?timeout=5s"), "", "application/json", vec![]).await;
    assert_eq!(timed.code, 200, "{}", timed.body);
    let bad_continue = api
        .send("GET", &format!("{CMS}?limit=1&continue=%%%"), "", "application/json", vec![])
        .await;
    assert_eq!(bad_continue.code / 100, 4, "{}", bad_continue.body);
    let stale = api
        .send(
            "PUT",
            &format!("{CMS}/keep"),
            "application/json",
            "application/json",
            br#"{"metadata":{"name":"keep","resourceVersion":"1"},"data":{"a":"changed"}}"#
                .to_vec(),
        )
        .await;
    assert_status(&stale, 409, "Conflict");

    // Everything that was refused left the stored object alone, and the server still serves.
    let kept = api.send("GET", &format!("{CMS}/keep"), "", "application/json", vec![]).await;
    assert_eq!(kept.code, 200);
    assert_eq!(kept.body["data"]["a"], "b");
    let list = api.send("GET", CMS, "", "application/json", vec![]).await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .filter(|name| *name != "kube-root-ca.crt")
        .collect();
    assert_eq!(names, ["keep"], "{}", list.body);
}

#[tokio::test]
async fn anonymous_requests_are_unauthorized_except_health_and_version() {
    let server =
        CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("starts");
    let anonymous = Api::new(&server, true).await;
    let answer = anonymous.send("GET", "/api/v1/namespaces", "", "application/json", vec![]).await;
    assert_status(&answer, 401, "Unauthorized");
    let answer = anonymous.post(CMS, r#"{"metadata":{"name":"x"}}"#).await;
    assert_status(&answer, 401, "Unauthorized");
    assert_eq!(anonymous.send("GET", "/readyz", "", "*/*", vec![]).await.code, 200);
    let version = anonymous.send("GET", "/version", "", "application/json", vec![]).await;
    assert_eq!(version.body["gitVersion"].as_str().map(|v| v.starts_with("v1.33.")), Some(true));
}
