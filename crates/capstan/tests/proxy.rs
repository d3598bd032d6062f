//! The Service proxy programming this host's iptables (needs root): ClusterIPs and NodePorts
//! reach a Service's endpoints from the host, spread over them (or stick to one under ClientIP
//! affinity), are rejected without them, and every rule goes away with the Service and with
//! the agent. The `kubernetes` Service reaches
//! the API server over HTTPS.
//!
//! Each test uses its own chain prefix and service CIDR, so tests (and clusters) run in
//! parallel; a guard removes the prefix's chains even when a test fails.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use capstan_proxy::ChainsGuard;
use capstan_testkit::{CapstanAgent, CapstanServer, Kubectl, host_ip, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_capstan"))
}

/// One test's corner of the host: its chain prefix and its service CIDR, both random.
struct Isolation {
    prefix: String,
    service_cidr: String,
}

impl Isolation {
    fn new() -> Self {
        let random = RandomState::new().hash_one(std::process::id());
        // A /24 of 10.96.0.0/12, clear of Docker's 172.17/16 and of this host's networks.
        let third = (random >> 32) % 4096;
        Self {
            prefix: format!("CT{:08X}", random as u32),
            service_cidr: format!("10.{}.{}.0/24", 96 + third / 256, third % 256),
        }
    }
}

/// The nat and filter tables as `iptables-save` prints them.
fn saved_rules() -> String {
    ["nat", "filter"]
        .iter()
        .map(|table| {
            let out =
                Command::new("iptables-save").args(["-t", table]).output().expect("iptables-save");
            assert!(
                out.status.success(),
                "iptables-save: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

fn iptables(args: &[&str]) {
    let out = Command::new("iptables").args(["-w"]).args(args).output().expect("iptables");
    assert!(out.status.success(), "iptables {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A TCP server on the host that answers every connection with its name.
fn backend(ip: Ipv4Addr, name: &'static str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("binding a backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(name.as_bytes());
        }
    });
    port
}

/// What the server at `addr` answers, or why it could not be reached.
fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Connects to `addr` until every one of `names` has answered.
fn wait_for_answers(what: &str, addr: SocketAddr, names: &[&str]) {
    let mut seen = BTreeSet::new();
    wait_until(what, WAIT, || {
        if let Ok(answer) = fetch(addr) {
            seen.insert(answer);
        }
        names.iter().all(|name| seen.contains(*name))
    });
    assert!(
        seen.iter().all(|s| names.contains(&s.as_str())),
        "{what}: unexpected answers {seen:?}"
    );
}

fn wait_for_refusal(what: &str, addr: SocketAddr) {
    wait_until(
        what,
        WAIT,
        || matches!(fetch(addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused),
    );
}

/// Writes the Service's endpoints as an EndpointSlice and an Endpoints object.
fn set_endpoints(kubectl: &Kubectl, ip: Ipv4Addr, ports: &[u16]) {
    // A selector-less Service: every backend is the host, on its own port, so each backend is
    // one slice (a slice has one port number per port name).
    let slices: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            format!(
                r#"{{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {{"name": "web-{i}", "labels": {{"kubernetes.io/service-name": "web"}}}},
                  "addressType": "IPv4",
                  "endpoints": [{{"addresses": ["{ip}"], "conditions": {{"ready": true}}}}],
                  "ports": [{{"name": "http", "port": {port}, "protocol": "TCP"}}]}}"#
            )
        })
        .collect();
    let subsets: Vec<String> = ports
        .iter()
        .map(|port| {
            format!(
                r#"{{"addresses": [{{"ip": "{ip}"}}], "ports": [{{"name": "http", "port": {port}}}]}}"#
            )
        })
        .collect();
    let endpoints = format!(
        r#"{{"apiVersion": "v1", "kind": "Endpoints", "metadata": {{"name": "web"}},
           "subsets": [{}]}}"#,
        subsets.join(",")
    );
    kubectl.ok_with_input(&["apply", "-f", "-"], &endpoints);
    for slice in &slices {
        kubectl.ok_with_input(&["apply", "-f", "-"], slice);
    }
    // Slices of backends that went away.
    for i in ports.len()..2 {
        kubectl.ok(&["delete", "endpointslice", &format!("web-{i}"), "--ignore-not-found"]);
    }
}

/// A free port in the NodePort range, so parallel clusters on this host do not share one.
fn node_port() -> u16 {
    30000 + (RandomState::new().hash_one("node port") % 2768) as u16
}

#[test]
fn cluster_ips_and_node_ports_reach_ready_endpoints_until_they_go_away() {
    let isolation = Isolation::new();
    let server =
        CapstanServer::start(binary(), &["--service-cluster-ip-range", &isolation.service_cidr])
            .expect("capstan starts");
    let _guard = ChainsGuard(isolation.prefix.clone());
    let mut agent = CapstanAgent::start(
        binary(),
        &server,
        &["--proxy-mode", "iptables", "--proxy-chain-prefix", &isolation.prefix],
    )
    .expect("agent starts");
    let kubectl = server.kubectl();
    let ip = host_ip();
    let (a, b) = (backend(ip, "a"), backend(ip, "b"));

    let node_port = node_port();
    kubectl.create(&format!(
        "apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  ports: [{{name: http, port: 80, targetPort: 8080, nodePort: {node_port}}}]
"
    ));
    let cluster_ip: Ipv4Addr = kubectl
        .ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .parse()
        .expect("a ClusterIP");
    let (cluster, node) = (SocketAddr::from((cluster_ip, 80)), SocketAddr::from((ip, node_port)));

    set_endpoints(&kubectl, ip, &[a]);
    wait_for_answers("the ClusterIP reaches a", cluster, &["a"]);
    wait_for_answers("the NodePort reaches a", node, &["a"]);
    let rules = saved_rules();
    assert!(
        rules.contains(&format!("-j {}-SERVICES", isolation.prefix)),
        "the hooks name this proxy's chains:\n{rules}\n{}",
        agent.log_tail()
    );

    set_endpoints(&kubectl, ip, &[a, b]);
    wait_for_answers("the ClusterIP spreads over a and b", cluster, &["a", "b"]);
    wait_for_answers("the NodePort spreads over a and b", node, &["a", "b"]);

    kubectl.ok(&[
        "patch",
        "service",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    wait_until("ClientIP affinity is programmed", WAIT, || {
        saved_rules().lines().any(|l| l.contains("--rcheck") && l.contains(&isolation.prefix))
    });
    let first = fetch(cluster).expect("the ClusterIP answers");
    for _ in 0..10 {
        assert_eq!(
            fetch(cluster).expect("the ClusterIP answers"),
            first,
            "a client keeps its backend"
        );
    }

    set_endpoints(&kubectl, ip, &[]);
    wait_for_refusal("the ClusterIP without endpoints refuses", cluster);
    wait_for_refusal("the NodePort without endpoints refuses", node);
    assert!(saved_rules().contains("default/web:http has no endpoints"));

    kubectl.ok(&["delete", "service", "web"]);
    wait_until("the Service's rules are gone", WAIT, || {
        let rules = saved_rules();
        !rules.contains("default/web:") && !rules.contains(&format!("{cluster_ip}/32"))
    });

    assert!(agent.terminate(WAIT), "the agent stops on SIGTERM:\n{}", agent.log_tail());
    let rules = saved_rules();
    assert!(
        !rules.contains(&format!("{}-", isolation.prefix)),
        "the stopped agent left rules:\n{rules}"
    );
}

#[test]
fn the_kubernetes_service_reaches_the_api_server_over_https() {
    let isolation = Isolation::new();
    let ip = host_ip().to_string();
    // Bound to the host's address, which becomes the `kubernetes` Service's endpoint: a
    // loopback address could not be DNATed to from a pod.
    let server = CapstanServer::start(
        binary(),
        &["--bind-address", &ip, "--service-cluster-ip-range", &isolation.service_cidr],
    )
    .expect("capstan starts");
    let _guard = ChainsGuard(isolation.prefix.clone());
    // What an earlier agent with this prefix could have left, had it been killed.
    let stale = format!("{}-SVC-STALE", isolation.prefix);
    iptables(&["-t", "nat", "-N", &stale]);
    let _agent = CapstanAgent::start(
        binary(),
        &server,
        &["--proxy-mode", "iptables", "--proxy-chain-prefix", &isolation.prefix],
    )
    .expect("agent starts");
    let kubectl = server.kubectl();
    let endpoint = kubectl.ok(&[
        "get",
        "endpointslice",
        "kubernetes",
        "-o",
        "jsonpath={.endpoints[0].addresses[0]}",
    ]);
    assert_eq!(endpoint, ip, "the kubernetes Service's endpoint is the advertised address");
    let cluster_ip =
        kubectl.ok(&["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(cluster_ip, isolation.service_cidr.replace(".0/24", ".1"));

    // The admin kubeconfig, pointed at the ClusterIP: the server's certificate must verify
    // against the cluster CA for that address.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
        let mut config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        config.cluster_url = format!("https://{cluster_ip}:443").parse().unwrap();
        config.connect_timeout = Some(IO_TIMEOUT);
        config.read_timeout = Some(IO_TIMEOUT);
        kube::Client::try_from(config).unwrap()
    });
    wait_until("GET /version through the kubernetes Service answers", WAIT, || {
        runtime.block_on(client.apiserver_version()).is_ok_and(|v| !v.git_version.is_empty())
    });
    assert!(!saved_rules().contains(&stale), "the agent swept the stale chain {stale} at start");
}

#[test]
fn the_servers_local_agent_runs_the_proxy_and_removes_its_rules_on_sigterm() {
    let isolation = Isolation::new();
    let _guard = ChainsGuard(isolation.prefix.clone());
    let server = CapstanServer::start(
        binary(),
        &[
            "--service-cluster-ip-range",
            &isolation.service_cidr,
            "--runtime",
            "simulated",
            "--kubelet-port",
            "0",
            "--proxy-mode",
            "iptables",
            "--proxy-chain-prefix",
            &isolation.prefix,
        ],
    )
    .expect("capstan starts");
    let kubernetes = format!("{}/32", isolation.service_cidr.replace(".0/24", ".1"));
    wait_until("the local agent's proxy programs the kubernetes Service", WAIT, || {
        saved_rules().lines().any(|l| l.contains(&kubernetes) && l.contains(&isolation.prefix))
    });

    let status = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()), "signalling the server");
    wait_until("the server's local agent removes its rules", WAIT, || {
        !saved_rules().contains(&format!("{}-", isolation.prefix))
    });
}
