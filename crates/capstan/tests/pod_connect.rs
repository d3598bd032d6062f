//! Pods' log, exec, attach and port-forward reach the kubelet of the pod's node through the API
//! server. A stand-in kubelet (TLS, HTTP/1.1 with upgrades) records what it is asked for.

use std::path::Path;
use std::sync::Arc;

use capstan_testkit::CapstanServer;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A kubelet stand-in: logs answer with the path and query they were asked for; upgrade
/// requests switch protocols, say the path they were asked for, then echo what they read.
async fn start_kubelet() -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = service_fn(|mut request: hyper::Request<hyper::body::Incoming>| {
                    let asked = request.uri().to_string();
                    let upgrade = request.headers().get(hyper::header::UPGRADE).cloned();
                    let on_upgrade = hyper::upgrade::on(&mut request);
                    async move {
                        let Some(protocol) = upgrade else {
                            let body = format!("kubelet was asked for {asked}\n");
                            return Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )));
                        };
                        tokio::spawn(async move {
                            let Ok(upgraded) = on_upgrade.await else { return };
                            let mut stream = TokioIo::new(upgraded);
                            let _ = stream.write_all(format!("{asked}\n").as_bytes()).await;
                            let mut buffer = [0u8; 1024];
                            while let Ok(n) = stream.read(&mut buffer).await {
                                if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                                    break;
                                }
                            }
                        });
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                        response.headers_mut().insert(hyper::header::UPGRADE, protocol);
                        response
                            .headers_mut()
                            .insert(hyper::header::CONNECTION, "Upgrade".parse().unwrap());
                        Ok(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

fn node_and_pods(kubelet_port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {{name: stand-in}}
  status:
    addresses: [{{type: InternalIP, address: 127.0.0.1}}]
    daemonEndpoints: {{kubeletEndpoint: {{Port: {kubelet_port}}}}}
- apiVersion: v1
  kind: Pod
  metadata: {{name: web}}
  spec:
    nodeName: stand-in
    containers: [{{name: app, image: busybox}}, {{name: sidecar, image: busybox}}]
- apiVersion: v1
  kind: Pod
  metadata: {{name: unscheduled}}
  spec:
    containers: [{{name: app, image: busybox}}]
"#
    )
}

// kubectl runs as a blocking child process: the stand-in kubelet needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_fetched_from_the_kubelet_of_the_pods_node() {
    let kubelet_port = start_kubelet().await;
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let kubectl = server.kubectl();
    kubectl.ok_with_input(&["create", "-f", "-"], &node_and_pods(kubelet_port));
    // Nodes keep the status they are created with; make sure, as the kubelet would write it.
    kubectl.ok(&[
        "patch",
        "node",
        "stand-in",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{kubelet_port}}}}}}}}}"#
        ),
    ]);

    let out = kubectl.ok(&["logs", "web", "-c", "sidecar", "--tail=3", "--timestamps"]);
    assert!(out.starts_with("kubelet was asked for /containerLogs/default/web/sidecar?"), "{out}");
    assert!(out.contains("tailLines=3") && out.contains("timestamps=true"), "{out}");

    // kubectl itself picks a default container; the API server's own rule shows in a raw GET.
    let many = kubectl.run(&["get", "--raw", "/api/v1/namespaces/default/pods/web/log"]);
    assert!(!many.success);
    assert!(
        many.stderr.contains(
            "a container name must be specified for pod web, choose one of: [app sidecar]"
        ),
        "{}",
        many.stderr
    );

    let unknown = kubectl.run(&["logs", "web", "-c", "nope"]);
    assert!(
        unknown.stderr.contains("container nope is not valid for pod web"),
        "{}",
        unknown.stderr
    );

    let unscheduled = kubectl.run(&["logs", "unscheduled"]);
    assert!(!unscheduled.success);
    assert!(
        unscheduled.stderr.contains("pod unscheduled does not have a host assigned"),
        "{}",
        unscheduled.stderr
    );
}

/// Speaks raw HTTP/1.1 to the API server with the admin's client certificate, as kubectl does
/// for exec and port-forward upgrades.
async fn admin_connection(
    server: &CapstanServer,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tls = server.data_dir().join("tls");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(tls.join("ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let certs: Vec<_> =
        CertificateDer::pem_file_iter(tls.join("admin.crt")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(tls.join("admin.key")).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    let address = server.url().trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn exec_and_port_forward_upgrades_are_spliced_through_to_the_kubelet() {
    let kubelet_port = start_kubelet().await;
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    server.kubectl().ok_with_input(&["create", "-f", "-"], &node_and_pods(kubelet_port));

    for (path, expected) in [
        (
            "/api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true&stdout=true&container=app",
            "/exec/default/web/app?command=sh&stdin=true&stdout=true&container=app\n",
        ),
        (
            "/api/v1/namespaces/default/pods/web/portforward?ports=8080",
            "/portForward/default/web?ports=8080\n",
        ),
    ] {
        let mut stream = admin_connection(&server).await;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
             X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.expect("the response head arrives");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: spdy/3.1"), "{head}");

        let mut asked = vec![0u8; expected.len()];
        stream.read_exact(&mut asked).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&asked), expected);
        stream.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping");
    }
}
