//! The kubelet's own HTTP endpoint on `--kubelet-port`: `/healthz` for now (logs, exec and
//! port-forward come with the Docker runtime).

use axum::Router;
use axum::routing::get;

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
