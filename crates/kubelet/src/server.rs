//! The kubelet's own HTTPS endpoint on `--kubelet-port`, with a self-signed certificate as
//! upstream's kubelet makes without `--tls-cert-file`: `/healthz` for now (logs, exec and
//! port-forward come with the Docker runtime).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("making the kubelet's serving certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("kubelet TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// A self-signed serving certificate for `host_ip` and the node's name.
fn tls_config(host_ip: IpAddr, node_name: &str) -> Result<rustls::ServerConfig, ServeError> {
    let names = vec![host_ip.to_string(), node_name.to_owned(), "localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves HTTPS on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    host_ip: IpAddr,
    node_name: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(host_ip, node_name)?));
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("kubelet port: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, "kubelet TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%peer, "kubelet TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut router = router.clone();
                    async move { router.call(request.map(axum::body::Body::new)).await }
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, "kubelet connection ended: {e}");
            }
        });
    }
}
