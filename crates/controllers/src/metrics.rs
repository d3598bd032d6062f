//! Per-controller counters of reconciles and of the API requests the controller sent, rendered
//! in the Prometheus text format for the API server's `/metrics` (upstream's controller manager
//! exposes `workqueue_adds_total` and `rest_client_requests_total` for the same questions).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// Every controller's counters in this process, by controller name.
static REGISTRY: LazyLock<Mutex<BTreeMap<&'static str, Arc<Counters>>>> =
    LazyLock::new(Mutex::default);

/// One controller's counters.
#[derive(Debug, Default)]
pub struct Counters {
    reconciles: AtomicU64,
    /// Requests by HTTP method.
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn reconciled(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }

    fn requested(&self, method: &http::Method) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry(method.as_str().to_owned()).or_insert(0) += 1;
    }
}

/// The counters of `controller`, created on first use.
pub fn counters(controller: &'static str) -> Arc<Counters> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.entry(controller).or_default().clone()
}

/// `client`, counting every request it sends as one of `controller`'s.
pub fn counted(client: kube::Client, controller: &'static str) -> kube::Client {
    let counters = counters(controller);
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        counters.requested(request.method());
        let client = client.clone();
        async move { client.send(request).await }
    });
    kube::Client::new(service, namespace)
}

/// Every controller's counters in the Prometheus text format.
pub fn render() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = String::new();
    text.push_str("# HELP capstan_controller_reconciles_total Reconciles run, by controller.\n");
    text.push_str("# TYPE capstan_controller_reconciles_total counter\n");
    for (name, counters) in registry.iter() {
        let count = counters.reconciles.load(Ordering::Relaxed);
        let _ =
            writeln!(text, "capstan_controller_reconciles_total{{controller=\"{name}\"}} {count}");
    }
    text.push_str(
        "# HELP capstan_controller_requests_total API requests a controller sent (its reconciles \
         and events; not its shared informers' lists and watches), by controller and method.\n",
    );
    text.push_str("# TYPE capstan_controller_requests_total counter\n");
    for (name, counters) in registry.iter() {
        let requests = counters.requests.lock().unwrap_or_else(|e| e.into_inner());
        for (method, count) in requests.iter() {
            let _ = writeln!(
                text,
                "capstan_controller_requests_total{{controller=\"{name}\",method=\"{method}\"}} {count}"
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counted_requests_and_reconciles_are_rendered_per_controller() {
        let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
            let body = kube::client::Body::from(b"{}".to_vec());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        let client = counted(kube::Client::new(service, "default"), "metrics-test-controller");
        let request = http::Request::post("/api/v1/namespaces/default/pods")
            .body(Vec::new())
            .expect("a valid request");
        client.request_text(request).await.expect("the fake answers");
        counters("metrics-test-controller").reconciled();
        let text = render();
        assert!(text.contains(
            "capstan_controller_requests_total{controller=\"metrics-test-controller\",method=\"POST\"} 1\n"
        ));
        assert!(text.contains(
            "capstan_controller_reconciles_total{controller=\"metrics-test-controller\"} 1\n"
        ));
    }
}
