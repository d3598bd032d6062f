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
/// introduced by `user_agent` (the field manager of their writes). It is a tower service, so
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
