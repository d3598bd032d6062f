//! `capstan agent`: the node agent — the kubelet of one node, or of many simulated ones — as
//! a client of a `capstan server` it joins with the server's join token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use capstan_kubelet::node_status::Capacity;
use capstan_kubelet::runtime::docker::{DEFAULT_PAUSE_IMAGE, DockerRuntime};
use capstan_kubelet::runtime::simulated::SimulatedRuntime;
use capstan_kubelet::{KubeletConfig, NodeRuntime};

/// The runtimes pods can run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Docker Engine (DOCKER_HOST or /var/run/docker.sock).
    Docker,
    /// In-memory containers that run at once (kwok-style simulated nodes).
    Simulated,
}

/// How the node's Services reach their endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyMode {
    /// kube-proxy's iptables mode: NAT rules in the host's kernel (needs root).
    Iptables,
    /// No Service data plane on this node.
    None,
}

const JOIN_DEADLINE: Duration = Duration::from_secs(30);

const AGENT_ABOUT: &str = "\
Runs the kubelet of a node (or, with --runtime simulated --node-count N, of N simulated nodes \
NAME-0 … NAME-(N-1)) against a capstan server.

The agent authenticates with the server's join token (the server's DATA_DIR/token) and verifies \
the server's certificate against the cluster CA (the server's DATA_DIR/tls/ca.crt), given with \
--certificate-authority; without it the agent looks for tls/ca.crt beside the token file, which \
is where it is when the token file is the server's own. It never connects without checking.

Runtimes: `docker` runs the pods in the Docker Engine at DOCKER_HOST (default \
unix:///var/run/docker.sock), as upstream's dockershim did: each pod gets a sandbox container \
(--pod-infra-container-image, pulled if missing) on the bridge network capstan-NODE, whose \
subnet is the node's spec.podCIDR, and its containers join the sandbox's network. Containers \
get their env (valueFrom, envFrom, the Service variables), their volumes (emptyDir, hostPath, \
configMap, secret, downwardAPI, projected with service-account tokens from the TokenRequest \
API) under DATA_DIR/pods, and their terminationMessagePath. Everything is labelled \
(io.kubernetes.pod.uid, capstan.io/node, …) so a restarted agent finds its pods again.

`simulated` keeps containers in memory: images pull and containers start at once, and pods get \
IPs from the node's spec.podCIDR (or 10.(64+i/256).(i%256).0/24 for node i). A container ends \
only when its pod has the annotation capstan.io/simulated-exit-code (every non-init container) \
or capstan.io/simulated-exit-code.<container>: it then exits with that code \
capstan.io/simulated-run-duration (e.g. 5s; default 0s) after starting. Init containers exit 0 \
at once.

The proxy (--proxy-mode iptables, the default with the docker runtime) programs this host's \
iptables NAT rules so ClusterIPs and NodePorts reach their endpoints, like kube-proxy's iptables \
mode. Its chains are named PREFIX-… (--proxy-chain-prefix), so several clusters can share a \
host; they are removed when the agent stops (SIGTERM) and swept when it starts. Simulated \
nodes run no proxy unless asked, and never with --node-count.";

#[derive(clap::Args)]
#[command(long_about = AGENT_ABOUT)]
pub struct AgentArgs {
    /// The API server's URL, e.g. https://10.0.0.1:6443.
    #[arg(long)]
    pub server: String,
    /// A file holding the join token (the server writes it to DATA_DIR/token).
    #[arg(long)]
    pub token_file: PathBuf,
    /// The cluster CA certificate (PEM) the server's certificate must be signed by
    /// [default: tls/ca.crt beside the token file].
    #[arg(long)]
    pub certificate_authority: Option<PathBuf>,
    /// The node's name; with --node-count, the prefix of the nodes' names [default: hostname].
    #[arg(long)]
    pub node_name: Option<String>,
    /// What runs the pods' containers.
    #[arg(long, value_enum, default_value = "docker")]
    pub runtime: RuntimeKind,
    /// The image of the pods' sandbox ("pause") containers (docker runtime).
    #[arg(long, default_value = DEFAULT_PAUSE_IMAGE)]
    pub pod_infra_container_image: String,
    /// Registers this many simulated nodes NAME-0 … NAME-(N-1) (needs --runtime simulated).
    #[arg(long)]
    pub node_count: Option<usize>,
    /// Where the agent keeps its state.
    #[arg(long, default_value = "/var/lib/capstan/agent")]
    pub data_dir: PathBuf,
    /// The port the kubelet's HTTPS API (self-signed; /healthz for now) listens on (0 picks a
    /// free one); reported in the Node's status.daemonEndpoints.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The node's InternalIP [default: the address this host reaches the server from].
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// CPUs each simulated node offers (a Docker node offers the host's CPUs and memory).
    #[arg(long, default_value = "32")]
    pub sim_cpu: String,
    /// Memory each simulated node offers.
    #[arg(long, default_value = "256Gi")]
    pub sim_memory: String,
    /// Pods each node takes.
    #[arg(long, default_value = "110")]
    pub sim_pods: String,
    /// Pods synced (and pod statuses written) at once.
    #[arg(long, default_value_t = 64)]
    pub pod_sync_concurrency: u16,
    /// The Service proxy [default: iptables with the docker runtime, none when simulated].
    #[arg(long, value_enum)]
    pub proxy_mode: Option<ProxyMode>,
    /// Starts the names of the proxy's iptables chains: 1-10 of A-Z, 0-9 [default: CP and a
    /// hash of the node name].
    #[arg(long)]
    pub proxy_chain_prefix: Option<String>,
    /// Pod IPs come from this range; traffic to Services from elsewhere is masqueraded.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
}

impl AgentArgs {
    /// The agent `capstan server` runs beside itself: simulated, with the server's own token
    /// and CA.
    pub fn local(server: &str, data_dir: &Path, node_name: Option<String>) -> Self {
        Self {
            server: server.to_owned(),
            token_file: data_dir.join("token"),
            certificate_authority: Some(data_dir.join("tls").join("ca.crt")),
            node_name,
            runtime: RuntimeKind::Simulated,
            pod_infra_container_image: DEFAULT_PAUSE_IMAGE.into(),
            node_count: None,
            data_dir: data_dir.join("agent"),
            kubelet_port: 10250,
            node_ip: None,
            sim_cpu: "32".into(),
            sim_memory: "256Gi".into(),
            sim_pods: "110".into(),
            pod_sync_concurrency: 64,
            proxy_mode: None,
            proxy_chain_prefix: None,
            cluster_cidr: "10.42.0.0/16".into(),
        }
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    if args.runtime == RuntimeKind::Docker && args.node_count.is_some() {
        bail!("--node-count needs --runtime simulated");
    }
    if args.node_count == Some(0) {
        bail!("--node-count must be at least 1");
    }
    let proxy_mode = args.proxy_mode.unwrap_or(match args.runtime {
        RuntimeKind::Docker => ProxyMode::Iptables,
        RuntimeKind::Simulated => ProxyMode::None,
    });
    if proxy_mode == ProxyMode::Iptables && args.node_count.is_some() {
        bail!(
            "--proxy-mode iptables programs this host, which is no simulated node of --node-count"
        );
    }
    let shutdown = crate::server::shutdown_signal()?;
    let ca = match &args.certificate_authority {
        Some(ca) => ca.clone(),
        None => args.token_file.parent().unwrap_or(Path::new(".")).join("tls").join("ca.crt"),
    };
    let client = join_client(&args.server, &args.token_file, &ca).await?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let base = match &args.node_name {
        Some(name) => name.clone(),
        None => hostname(),
    };
    let node_names = match args.node_count {
        Some(count) => (0..count).map(|i| format!("{base}-{i}")).collect(),
        None => vec![base],
    };
    let proxy_config = match proxy_mode {
        ProxyMode::Iptables => {
            Some(proxy_config(&args.proxy_chain_prefix, &node_names[0], &args.cluster_cidr)?)
        }
        ProxyMode::None => None,
    };
    let host_ip = match args.node_ip {
        Some(ip) => ip,
        None => outbound_ip(&args.server),
    };
    let docker = match args.runtime {
        RuntimeKind::Docker => Some(
            DockerRuntime::connect(&node_names[0], &args.pod_infra_container_image)
                .await
                .context("connecting to the Docker Engine")?,
        ),
        RuntimeKind::Simulated => None,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        args.kubelet_port,
    ))
    .await
    .with_context(|| format!("listening on the kubelet port {}", args.kubelet_port))?;
    let config = KubeletConfig {
        node_names,
        host_ip,
        kubelet_port: listener.local_addr()?.port(),
        capacity: match args.runtime {
            RuntimeKind::Docker => host_capacity(&args.sim_pods),
            RuntimeKind::Simulated => Capacity {
                cpu: args.sim_cpu,
                memory: args.sim_memory,
                pods: args.sim_pods,
                ..Capacity::default()
            },
        },
        labels: [("capstan.io/runtime".to_owned(), runtime_label(args.runtime).to_owned())].into(),
        pod_concurrency: args.pod_sync_concurrency,
        pods_dir: docker.is_some().then(|| args.data_dir.join("pods")),
    };
    tracing::info!(nodes = config.node_names.len(), port = config.kubelet_port, "agent starting");
    let name = config.node_names[0].clone();
    // The proxy stops with the agent, on a signal or when the kubelet fails.
    let (stop_proxy, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = proxy_config.map(|config| {
        let signalled = shutdown();
        tokio::spawn(capstan_proxy::run(
            client.clone(),
            config,
            std::sync::Arc::new(capstan_proxy::SystemIptables),
            async move {
                tokio::select! {
                    () = signalled => {}
                    _ = proxy_stopped => {}
                }
            },
        ))
    });
    let stopped = shutdown();
    let server = tokio::spawn(async move {
        if let Err(e) = capstan_kubelet::server::serve(listener, host_ip, &name, stopped).await {
            tracing::error!("kubelet port: {e}");
        }
    });
    let runtime_for = |node: &str| match &docker {
        Some(docker) => NodeRuntime {
            containers: std::sync::Arc::new(docker.clone()),
            images: std::sync::Arc::new(docker.clone()),
        },
        None => simulated_runtime(node),
    };
    let kubelet = capstan_kubelet::run(client, config, runtime_for, shutdown()).await;
    server.abort();
    drop(stop_proxy);
    if let Some(proxy) = proxy {
        // It removes its iptables rules on the way out.
        match proxy.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("proxy: {e}"),
            Err(e) => tracing::error!("proxy task: {e}"),
        }
    }
    kubelet?;
    tracing::info!("agent stopped");
    Ok(())
}

fn proxy_config(
    prefix: &Option<String>,
    node: &str,
    cluster_cidr: &str,
) -> anyhow::Result<capstan_proxy::ProxyConfig> {
    let prefix = prefix.clone().unwrap_or_else(|| capstan_proxy::rules::prefix_for(node));
    if !capstan_proxy::rules::valid_prefix(&prefix) {
        bail!("--proxy-chain-prefix {prefix:?} must be 1 to 10 of A-Z and 0-9");
    }
    if capstan_proxy::rules::parse_cidr(cluster_cidr).is_none() {
        bail!("--cluster-cidr {cluster_cidr:?} is not an IPv4 CIDR like 10.42.0.0/16");
    }
    Ok(capstan_proxy::ProxyConfig::new(capstan_proxy::RuleConfig {
        prefix,
        cluster_cidr: Some(cluster_cidr.to_owned()),
    }))
}

/// What this host offers a real node: its CPUs and memory (`--sim-pods` pods).
fn host_capacity(pods: &str) -> Capacity {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    let defaults = Capacity::default();
    Capacity {
        cpu: cpus.to_string(),
        memory: memory_kib.map_or(defaults.memory.clone(), |kib| format!("{kib}Ki")),
        pods: pods.to_owned(),
        ..defaults
    }
}

fn runtime_label(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Docker => "docker",
        RuntimeKind::Simulated => "simulated",
    }
}

pub fn simulated_runtime(_node: &str) -> NodeRuntime {
    let runtime = SimulatedRuntime::new();
    NodeRuntime {
        containers: std::sync::Arc::new(runtime.clone()),
        images: std::sync::Arc::new(runtime),
    }
}

/// A client that presents the join token and trusts only the cluster CA.
pub async fn join_client(
    server: &str,
    token_file: &Path,
    ca: &Path,
) -> anyhow::Result<kube::Client> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading the join token from {}", token_file.display()))?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", token_file.display());
    }
    let pem = std::fs::read_to_string(ca).with_context(|| {
        format!("reading the cluster CA from {} (set --certificate-authority)", ca.display())
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        bail!("{} holds no PEM certificate", ca.display());
    }
    let mut config = kube::Config::new(
        server.parse().with_context(|| format!("--server {server:?} is not a URL"))?,
    );
    if config.cluster_url.scheme_str() != Some("https") {
        bail!("--server {server:?} must be an https:// URL");
    }
    config.root_cert_file = Some(ca.to_owned());
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    let client = crate::client::named(config, crate::client::KUBELET)?;
    // The server may still be starting (or restarting): keep trying for a while.
    let deadline = std::time::Instant::now() + JOIN_DEADLINE;
    loop {
        match client.apiserver_version().await {
            Ok(_) => return Ok(client),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!("reaching the API server at {server}: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reaching the API server at {server}"));
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The local address packets to the server leave from (no packet is sent).
fn outbound_ip(server: &str) -> IpAddr {
    let authority = server.split("://").nth(1).unwrap_or(server).split('/').next().unwrap_or("");
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Some(target) = authority.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return fallback;
    };
    let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    UdpSocket::bind(bind)
        .and_then(|socket| socket.connect(target).and_then(|()| socket.local_addr()))
        .map(|addr| addr.ip())
        .unwrap_or(fallback)
}
