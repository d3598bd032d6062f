//! Pod connect subresources — `log`, `exec`, `attach`, `portforward` — proxied to the kubelet
//! of the pod's node, as upstream's API server does: plain responses are streamed back, and
//! upgraded connections (SPDY or WebSocket streams) are spliced byte for byte.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use crate::ApiServer;
use crate::handlers::Target;
use crate::status::{ApiError, ApiResult};

/// The connect subresources of pods.
pub const POD_CONNECT: &[&str] = &["log", "exec", "attach", "portforward"];

/// The port a Node that reports none is assumed to serve its kubelet on.
const DEFAULT_KUBELET_PORT: i64 = 10250;
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How the API server reaches kubelets: TLS with the API server's own client certificate.
pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    /// Uses `tls/kubelet-client.{crt,key}` under `data_dir` when they exist. Like upstream's
    /// API server without `--kubelet-certificate-authority`, the kubelet's serving certificate
    /// is not checked against a CA (kubelets commonly serve self-signed certificates).
    pub fn load(data_dir: &Path) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider)));
        let tls = data_dir.join("tls");
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(tls.join("kubelet-client.crt"))
                .map(|certs| certs.filter_map(Result::ok).collect())
                .unwrap_or_default();
        let key = PrivateKeyDer::from_pem_file(tls.join("kubelet-client.key")).ok();
        let config = match key {
            Some(key) if !certs.is_empty() => builder.with_client_auth_cert(certs, key)?,
            _ => builder.with_no_client_auth(),
        };
        Ok(Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }
}

/// Serves one pod connect request by proxying it to the pod's kubelet.
pub async fn serve(
    server: &Arc<ApiServer>,
    target: &Target,
    mut request: axum::extract::Request,
) -> ApiResult<Response> {
    let subresource = target.subresource.as_deref().unwrap_or_default();
    let allowed: &[Method] = match subresource {
        "log" => &[Method::GET],
        _ => &[Method::GET, Method::POST],
    };
    if !allowed.contains(request.method()) {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on pods/{subresource}",
            request.method()
        )));
    }
    let namespace = target.namespace.as_deref().unwrap_or("default");
    let name = target.name.as_deref().unwrap_or_default();
    let pod = server
        .cached("", "pods", Some(namespace), name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "pods", name))?
        .value();
    let node_name =
        pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let query = request.uri().query().unwrap_or("").to_owned();
    let path = match subresource {
        "portforward" => format!("/portForward/{namespace}/{name}"),
        _ => {
            let container = container_of(&pod, name, &query)?;
            let prefix = match subresource {
                "log" => "containerLogs",
                other => other,
            };
            format!("/{prefix}/{namespace}/{name}/{container}")
        }
    };
    let node = server
        .cached("", "nodes", None, node_name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "nodes", node_name))?
        .value();
    let (host, port) = kubelet_endpoint(&node).ok_or_else(|| {
        ApiError::unavailable(format!("node {node_name} reports no address to reach it at"))
    })?;

    let path_and_query = if query.is_empty() { path } else { format!("{path}?{query}") };
    let client_upgrade = hyper::upgrade::on(&mut request);
    let (parts, body) = request.into_parts();
    let mut outgoing = hyper::Request::builder()
        .method(parts.method)
        .uri(Uri::try_from(path_and_query).map_err(|e| ApiError::bad_request(e.to_string()))?)
        .body(body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    *outgoing.headers_mut() = forwarded_headers(&parts.headers, &host, port);

    let failed = |e: &dyn std::fmt::Display| {
        ApiError::unavailable(format!("proxying to node {node_name}: {e}"))
    };
    let sender = dial(&server.kubelets, &host, port).await.map_err(|e| failed(&e))?;
    let mut response = send(sender, outgoing).await.map_err(|e| failed(&e))?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let kubelet_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(kubelet)) = tokio::join!(client_upgrade, kubelet_upgrade) else {
                return;
            };
            let (mut client, mut kubelet) = (TokioIo::new(client), TokioIo::new(kubelet));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
                tracing::debug!(error = %e, "a proxied stream ended");
            }
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// The container a request names, or the pod's only container; 400 otherwise, with upstream's
/// messages.
fn container_of(pod: &Value, pod_name: &str, query: &str) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .map(|list| list.iter().filter_map(|c| c["name"].as_str()).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (containers, init, ephemeral) =
        (names("containers"), names("initContainers"), names("ephemeralContainers"));
    let asked = form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "container" && !v.is_empty())
        .map(|(_, v)| v.into_owned());
    match asked {
        Some(name)
            if containers.contains(&name) || init.contains(&name) || ephemeral.contains(&name) =>
        {
            Ok(name)
        }
        Some(name) => {
            Err(ApiError::bad_request(format!("container {name} is not valid for pod {pod_name}")))
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Where a Node's kubelet listens: its first address by preference, and the port it reports.
fn kubelet_endpoint(node: &Value) -> Option<(String, u16)> {
    let addresses = node["status"]["addresses"].as_array()?;
    let address = ["InternalIP", "ExternalIP", "InternalDNS", "Hostname", "ExternalDNS"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .find(|a| a["type"] == *kind)
                .and_then(|a| a["address"].as_str())
                .filter(|a| !a.is_empty())
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some((address.to_owned(), u16::try_from(port).ok()?))
}

/// The client's headers minus its credentials (the kubelet gets the API server's own).
fn forwarded_headers(incoming: &HeaderMap, host: &str, port: u16) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in incoming {
        if name == header::AUTHORIZATION || name == header::HOST || is_hop_by_hop(name) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    // Upgrades need their Connection/Upgrade pair; other hop-by-hop headers are dropped.
    for name in [header::CONNECTION, header::UPGRADE] {
        if let Some(value) = incoming.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    let authority = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    if let Ok(value) = authority.parse() {
        headers.insert(header::HOST, value);
    }
    headers
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "upgrade"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
    )
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;

async fn dial(client: &KubeletClient, host: &str, port: u16) -> Result<Sender, ProxyError> {
    let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| ProxyError::Timeout(format!("{host}:{port}")))??;
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => {
            ServerName::try_from(host.to_owned()).map_err(|_| ProxyError::Name(host.to_owned()))?
        }
    };
    let tls = tokio::time::timeout(DIAL_TIMEOUT, client.tls.connect(server_name, tcp))
        .await
        .map_err(|_| ProxyError::Timeout(format!("{host}:{port}")))??;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    Ok(sender)
}

async fn send(
    mut sender: Sender,
    request: hyper::Request<Body>,
) -> Result<hyper::Response<hyper::body::Incoming>, ProxyError> {
    sender.ready().await?;
    Ok(sender.send_request(request).await?)
}

#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("{0:?} is not a valid host name")]
    Name(String),
}

/// Accepts any kubelet serving certificate while still checking the handshake's signatures.
#[derive(Debug)]
struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list = |names: &[&str]| names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
        json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    #[test]
    fn the_only_container_is_chosen_when_none_is_named() {
        assert_eq!(container_of(&pod(&["app"], &[]), "web", "").unwrap(), "app");
    }

    #[test]
    fn a_pod_with_several_containers_needs_one_named() {
        let e = container_of(&pod(&["a", "b"], &["setup"]), "web", "tailLines=5").unwrap_err();
        assert_eq!(e.code, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        assert_eq!(
            container_of(&pod(&["a", "b"], &["setup"]), "web", "container=setup").unwrap(),
            "setup"
        );
    }

    #[test]
    fn an_unknown_container_is_a_bad_request() {
        let e = container_of(&pod(&["a"], &[]), "web", "container=zzz").unwrap_err();
        assert_eq!(e.code, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "container zzz is not valid for pod web");
    }

    #[test]
    fn the_kubelet_is_reached_at_the_preferred_address_and_reported_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10999}}
        }});
        assert_eq!(kubelet_endpoint(&node), Some(("10.0.0.5".to_owned(), 10999)));
        let bare = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(kubelet_endpoint(&bare), Some(("n1".to_owned(), 10250)));
        assert_eq!(kubelet_endpoint(&json!({"status": {}})), None);
    }

    #[test]
    fn client_credentials_are_not_forwarded_but_upgrade_headers_are() {
        let mut incoming = HeaderMap::new();
        incoming.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        incoming.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        incoming.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
        incoming.insert("x-stream-protocol-version", "v4.channel.k8s.io".parse().unwrap());
        let headers = forwarded_headers(&incoming, "10.0.0.5", 10250);
        assert!(headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(headers[header::UPGRADE], "SPDY/3.1");
        assert_eq!(headers[header::CONNECTION], "Upgrade");
        assert_eq!(headers["x-stream-protocol-version"], "v4.channel.k8s.io");
        assert_eq!(headers[header::HOST], "10.0.0.5:10250");
    }
}
