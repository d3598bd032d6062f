//! Serving HTTPS: rustls with optional client certificates verified against the cluster CA,
//! HTTP/1.1 and HTTP/2 (kubectl negotiates h2), one task per connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{self, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::auth::{Authenticator, Identity, PeerCertificate};
use crate::{ApiServer, Pki, routes};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Like kube-apiserver's `--http2-max-streams-per-connection`; 1000 is what upstream's
/// recommended options give API servers.
const HTTP2_MAX_STREAMS_PER_CONNECTION: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS configuration: {0}")]
    Tls(String),
}

fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, ServeError> {
    let tls = |e: &dyn std::fmt::Display| ServeError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_cert.as_bytes()) {
        roots.add(cert.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| tls(&e))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.serving_cert.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| tls(&e))?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key.as_bytes()).map_err(|e| tls(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Who the API server accepts: the agent join token besides certificates and service-account
/// tokens.
fn authenticator(server: Arc<ApiServer>, pki: &Pki) -> Arc<Authenticator> {
    let agent = Identity {
        user: "capstan:agent".into(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
    };
    Arc::new(Authenticator { tokens: [(pki.agent_token.clone(), agent)].into(), server })
}

/// A connection to the API from inside the server's process, for the components `capstan
/// server` runs beside it: requests go straight to the router, without TCP, TLS or HTTP
/// framing, authenticated as `identity` (as a client certificate naming it would be) and
/// introduced by `user_agent` (the field manager of their writes); what they read comes without
/// managedFields, which none of them reads. It is a tower service, so
/// `kube::Client::new` makes an ordinary API client of it.
#[derive(Clone)]
pub struct InProcess {
    router: axum::Router,
    identity: PeerCertificate,
    user_agent: HeaderValue,
}

impl InProcess {
    pub fn new(
        server: Arc<ApiServer>,
        pki: &Pki,
        identity: Identity,
        user_agent: HeaderValue,
    ) -> Self {
        let router = routes::router(server.clone(), authenticator(server, pki));
        Self { router, identity: PeerCertificate(Some(identity)), user_agent }
    }
}

impl<B> Service<http::Request<B>> for InProcess
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.identity.clone());
        request.extensions_mut().insert(crate::handlers::OmitManagedFields);
        // A certificate-authenticated caller sends no token; one it sends would be checked.
        request.headers_mut().remove(http::header::AUTHORIZATION);
        request.headers_mut().insert(http::header::USER_AGENT, self.user_agent.clone());
        self.router.call(request.map(axum::body::Body::new))
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    server: Arc<ApiServer>,
    pki: &Pki,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(pki)?));
    let router = routes::router(server.clone(), authenticator(server, pki));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| Identity::from_certificate(cert));
            let peer_certificate = PeerCertificate(identity);
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(peer_certificate.clone());
                    let mut router = router.clone();
                    async move { router.call(request.map(axum::body::Body::new)).await }
                },
            );
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // client-go multiplexes a process's watches on one HTTP/2 connection; hyper's
            // default of 200 concurrent streams would stall the rest.
            builder.http2().max_concurrent_streams(HTTP2_MAX_STREAMS_PER_CONNECTION);
            if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    async fn call(service: &mut InProcess, method: &str, uri: &str, body: Value) -> Value {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let response = service.call(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn start() -> (tempfile::TempDir, Arc<ApiServer>, InProcess) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            capstan_store::Datastore::Sqlite(dir.path().join("state.db")).open().await.unwrap();
        let config = crate::Config {
            data_dir: dir.path().to_owned(),
            advertise_address: "127.0.0.1".parse().unwrap(),
            port: 6443,
            service_range: crate::services::ServiceRange::parse("10.43.0.0/16").unwrap(),
            watch_cache_size: 16,
            event_ttl: Duration::from_secs(60),
            admission: Default::default(),
            metrics: Default::default(),
        };
        let names = crate::pki::ServingNames { ips: vec![], dns: vec!["localhost".into()] };
        let pki = Pki::load_or_create(dir.path(), &names).unwrap();
        let server = ApiServer::start(store, config).await.unwrap();
        let admin = Identity { user: "admin".into(), groups: vec!["system:masters".into()] };
        let service =
            InProcess::new(server.clone(), &pki, admin, HeaderValue::from_static("test/1"));
        (dir, server, service)
    }

    async fn stored(server: &ApiServer, key: &str) -> Value {
        let kv = server.store.get(key).await.unwrap().unwrap();
        serde_json::from_slice(&kv.value).unwrap()
    }

    #[tokio::test]
    async fn in_process_reads_come_without_managed_fields_and_updates_keep_them() {
        let (_dir, server, mut service) = start().await;
        let path = "/api/v1/namespaces/default/configmaps";
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "m", "labels": {"a": "b"}}, "data": {"k": "v"}});
        let created = call(&mut service, "POST", path, map).await;
        assert_eq!(created["metadata"]["managedFields"][0]["manager"], "test", "{created}");

        let got = call(&mut service, "GET", &format!("{path}/m"), json!(null)).await;
        assert_eq!(got["data"], json!({"k": "v"}));
        assert_eq!(got["metadata"]["labels"], json!({"a": "b"}));
        assert!(got["metadata"].get("managedFields").is_none(), "{got}");
        let listed = call(&mut service, "GET", path, json!(null)).await;
        assert_eq!(listed["items"][0]["metadata"]["name"], "m");
        assert!(listed["items"][0]["metadata"].get("managedFields").is_none(), "{listed}");

        // Written back without them, the object keeps what the server recorded.
        let mut changed = got.clone();
        changed["data"]["k"] = json!("w");
        let updated = call(&mut service, "PUT", &format!("{path}/m"), changed).await;
        assert_eq!(updated["metadata"]["managedFields"][0]["manager"], "test", "{updated}");
        let stored = stored(&server, "/registry/configmaps/default/m").await;
        assert_eq!(stored["metadata"]["managedFields"].as_array().map(Vec::len), Some(1));
        assert_eq!(stored["data"]["k"], "w");
    }

    #[tokio::test]
    async fn binding_sets_the_node_without_a_managed_fields_entry() {
        let (_dir, server, mut service) = start().await;
        let path = "/api/v1/namespaces/default/pods";
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        call(&mut service, "POST", path, pod).await;
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
            "target": {"kind": "Node", "name": "n1"}});
        let bound = call(&mut service, "POST", &format!("{path}/p/binding"), binding).await;
        assert_eq!(bound["status"], "Success", "{bound}");
        let pod = stored(&server, "/registry/pods/default/p").await;
        assert_eq!(pod["spec"]["nodeName"], "n1");
        let scheduled = pod["status"]["conditions"].as_array().unwrap();
        assert!(scheduled.iter().any(|c| c["type"] == "PodScheduled" && c["status"] == "True"));
        let managers: Vec<&Value> = pod["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["manager"])
            .collect();
        assert_eq!(managers, [&json!("test")], "only the creator: {pod}");
        // The creator owns what it sent and its defaults, not what admission added.
        let owned = &pod["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
        assert!(owned.get("f:containers").is_some() && owned.get("f:restartPolicy").is_some());
        for added in ["f:volumes", "f:tolerations", "f:serviceAccountName", "f:priority"] {
            assert!(owned.get(added).is_none(), "{added} owned by the creator: {owned}");
        }
        assert!(pod["spec"]["volumes"].is_array() && pod["spec"]["tolerations"].is_array());
        assert!(pod["spec"].get("initContainers").is_none(), "no null lists stored: {pod}");
    }
}
