//! A recording fake API for reconcile tests: kube's `Client` over a tower service that records
//! every request and answers like a minimal API server (creates echo the object with a name).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path without the query string, e.g. `/api/v1/namespaces/ns/pods`.
    pub path: String,
    pub body: Value,
}

type Refuse = Arc<dyn Fn(&Call) -> Option<(u16, &'static str, String)> + Send + Sync>;

#[derive(Clone, Default)]
pub struct FakeApi {
    calls: Arc<Mutex<Vec<Call>>>,
    names: Arc<AtomicUsize>,
    refuse: Option<Refuse>,
}

impl FakeApi {
    /// Answers a request `refuse` picks with (code, reason, message) instead.
    pub fn refusing(
        refuse: impl Fn(&Call) -> Option<(u16, &'static str, String)> + Send + Sync + 'static,
    ) -> Self {
        Self { refuse: Some(Arc::new(refuse)), ..Self::default() }
    }

    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move { Ok::<_, std::convert::Infallible>(fake.answer(request).await) }
        });
        kube::Client::new(service, "default")
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls with this method whose path ends with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .collect()
    }

    /// Every write (all but GET), as `METHOD path`.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET")
            .map(|c| format!("{} {}", c.method, c.path))
            .collect()
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let bytes = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let call = Call { method: method.clone(), path: path.clone(), body };
        self.calls.lock().unwrap().push(call.clone());
        if let Some((code, reason, message)) = self.refuse.as_ref().and_then(|r| r(&call)) {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": message, "reason": reason, "code": code});
            return respond(code, &status);
        }
        let mut object = call.body.clone();
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        match method.as_str() {
            "POST" => {
                let n = self.names.fetch_add(1, Ordering::SeqCst);
                let meta = &mut object["metadata"];
                if meta.get("name").is_none_or(Value::is_null) {
                    let base = meta["generateName"].as_str().unwrap_or_default().to_owned();
                    meta["name"] = json!(format!("{base}{n:05}"));
                }
                meta["uid"] = json!(format!("uid-{n}"));
                respond(201, &object)
            }
            // A replaced object comes back as written.
            "PUT" => respond(200, &object),
            "DELETE" => {
                respond(200, &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            }
            _ => respond(200, &json!({"metadata": {"name": name}})),
        }
    }
}

fn respond(code: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap_or_default()))
        .expect("a valid response")
}

/// A reflector store holding `objects`, indexed as the controllers' shared informers index.
pub fn store<K>(objects: Vec<K>) -> kube::runtime::reflector::Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    crate::informer::Informer::fixed(objects, crate::informer::by_namespace_and_controller).store()
}
