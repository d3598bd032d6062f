//! `capstan server`: the control plane — the store, and the API server in front of it.
//! Controllers and the scheduler join it as they are built.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use capstan_apiserver::admission::AdmissionConfig;
use capstan_apiserver::services::ServiceRange;
use capstan_apiserver::{ApiServer, Config, MetricsSource, Pki, ServingNames};
use capstan_store::{Compactor, Datastore, Store};

use crate::agent::{AgentArgs, ProxyMode, RuntimeKind};

/// How long the local agent may take to stop after the API server has.
const AGENT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Where the server keeps its state (the embedded database, certificates, kubeconfig).
    #[arg(long, default_value = "/var/lib/capstan")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` for the embedded store (default: DATA_DIR/db/state.db) or a
    /// comma-separated list of etcd endpoints `http://HOST:2379,…`.
    #[arg(long)]
    pub datastore_endpoint: Option<Datastore>,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The port the API server listens on (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// The address clients (and the `kubernetes` Service's endpoints) reach the API server at
    /// [default: the bind address; when binding every address, this host's address on its
    /// default route, or 127.0.0.1 without one].
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// The range Service ClusterIPs come from; its first address is the `kubernetes` Service's.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cluster_ip_range: String,
    /// Events the watch cache keeps per resource, so watchers can resume from a recent
    /// resourceVersion (older ones get 410 Gone and relist).
    #[arg(long, default_value_t = 4096)]
    pub default_watch_cache_size: usize,
    /// Seconds pods tolerate a not-ready node (added to pods without such a toleration).
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// Seconds pods tolerate an unreachable node (added to pods without such a toleration).
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// How long Events are kept after they last happened.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: std::time::Duration,
    /// How often store history is compacted (history older than this is dropped).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,
    /// Don't run the local agent.
    #[arg(long)]
    pub disable_agent: bool,
    /// The local agent's node name [default: hostname].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The local agent's runtime: the server runs a local agent (one node) only when this is
    /// given (`simulated` for in-memory containers, `docker` for the Docker Engine); without it,
    /// no local agent runs, as before the Docker runtime existed.
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// The local agent's sandbox ("pause") image (docker runtime).
    #[arg(long, default_value = capstan_kubelet::runtime::docker::DEFAULT_PAUSE_IMAGE)]
    pub pod_infra_container_image: String,
    /// The local agent's kubelet port (0 picks a free one).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The local agent's Service proxy (see `capstan agent --help`).
    #[arg(long, value_enum)]
    pub proxy_mode: Option<ProxyMode>,
    /// The prefix of the local agent's iptables chains.
    #[arg(long)]
    pub proxy_chain_prefix: Option<String>,
    #[command(flatten)]
    pub controllers: crate::controller_flags::ControllerFlags,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let datastore = args
        .datastore_endpoint
        .clone()
        .unwrap_or_else(|| Datastore::Sqlite(default_database(&args.data_dir)));
    let store: Arc<dyn Store> =
        datastore.open().await.with_context(|| format!("opening the store {datastore:?}"))?;
    let revision = store.current_revision().await?;
    tracing::info!(?datastore, revision, "store ready");

    let service_range = ServiceRange::parse(&args.service_cluster_ip_range).with_context(|| {
        format!(
            "--service-cluster-ip-range {:?} is not an IPv4 CIDR like 10.43.0.0/16 (prefix 0-30)",
            args.service_cluster_ip_range
        )
    })?;
    let kubernetes_service_ip = IpAddr::V4(service_range.first());
    let advertise_address =
        args.advertise_address.unwrap_or(if args.bind_address.is_unspecified() {
            primary_ipv4()
        } else {
            args.bind_address
        });
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.https_listen_port))
            .await
            .with_context(|| {
                format!("listening on {}:{}", args.bind_address, args.https_listen_port)
            })?;
    let port = listener.local_addr()?.port();
    let pki = Pki::load_or_create(
        &args.data_dir,
        &serving_names(&args, advertise_address, kubernetes_service_ip),
    )
    .context("preparing certificates")?;
    let config = Config {
        data_dir: args.data_dir.clone(),
        advertise_address,
        port,
        service_range,
        watch_cache_size: args.default_watch_cache_size.max(1),
        event_ttl: args.event_ttl,
        admission: AdmissionConfig {
            not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
            unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        },
        metrics: MetricsSource(Some(Arc::new(capstan_controllers::metrics::render))),
    };
    let server =
        ApiServer::start(store.clone(), config).await.context("starting the API server")?;
    let kubeconfig = pki.write_admin_kubeconfig(&server.url())?;
    tracing::info!(url = server.url(), kubeconfig = %kubeconfig.display(), "API server ready");
    eprintln!(
        "capstan is serving at {}; try:\n  kubectl --kubeconfig {} get namespaces",
        server.url(),
        kubeconfig.display()
    );

    let compactor =
        tokio::spawn(Compactor::new(store, args.etcd_compaction_interval).run(shutdown()));
    // Controllers are API clients of this server, connected in-process (no TCP or TLS).
    let controllers = tokio::spawn(crate::controller_manager::run_elected(
        crate::client::in_process(&server, &pki, crate::client::CONTROLLER_MANAGER)?,
        pki.ca_cert.clone(),
        args.controllers.settings()?,
        shutdown(),
    ));
    // The scheduler, too, under leader election: several servers may share one store.
    let scheduler = tokio::spawn({
        let client = crate::client::in_process(&server, &pki, crate::client::SCHEDULER)?;
        let identity = capstan_scheduler::identity();
        let stopped = shutdown();
        async move {
            let config = capstan_scheduler::Config::default();
            capstan_scheduler::run_with_leader_election(
                client,
                config,
                capstan_scheduler::LEASE_NAME,
                &identity,
                stopped,
            )
            .await
        }
    });
    let agent = match args.runtime {
        Some(runtime) if !args.disable_agent => {
            let agent = AgentArgs::local(&server.url(), &args.data_dir, args.node_name.clone());
            Some(tokio::spawn(async move {
                let agent = AgentArgs {
                    kubelet_port: args.kubelet_port,
                    proxy_mode: args.proxy_mode,
                    proxy_chain_prefix: args.proxy_chain_prefix,
                    cluster_cidr: args.controllers.cluster_cidr,
                    runtime,
                    pod_infra_container_image: args.pod_infra_container_image,
                    ..agent
                };
                if let Err(e) = crate::agent::run(agent).await {
                    tracing::error!("local agent: {e:#}");
                }
            }))
        }
        _ => None,
    };
    capstan_apiserver::serve(server, &pki, listener, shutdown()).await?;
    compactor.abort();
    controllers.abort();
    scheduler.abort();
    if let Some(mut agent) = agent {
        // The agent heard the signal too; its proxy removes its iptables rules before it ends.
        if tokio::time::timeout(AGENT_STOP_GRACE, &mut agent).await.is_err() {
            tracing::warn!("the local agent did not stop within {AGENT_STOP_GRACE:?}");
            agent.abort();
        }
    }
    tracing::info!("shutting down");
    Ok(())
}

fn serving_names(args: &ServerArgs, advertise: IpAddr, service_ip: IpAddr) -> ServingNames {
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), advertise, service_ip];
    if !args.bind_address.is_unspecified() {
        ips.push(args.bind_address);
    }
    ips.dedup();
    let mut dns: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && !dns.iter().any(|d| d == host) {
            dns.push(host.to_owned());
        }
    }
    ServingNames { ips, dns }
}

/// The address this host's default route leaves from (no packet is sent), or 127.0.0.1: pods
/// can reach it, which they cannot a loopback address.
fn primary_ipv4() -> IpAddr {
    // Any address outside the local networks selects the default route; this one is TEST-NET-3.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.connect("203.0.113.1:53").and_then(|()| socket.local_addr()))
        .map(|addr| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

pub fn default_database(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

/// Installs SIGTERM and SIGINT handlers now (a signal that arrives before anything waits for
/// it must still mean "shut down cleanly") and returns a maker of futures that resolve on one.
pub(crate) fn shutdown_signal()
-> anyhow::Result<impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = stop.send(true);
    });
    Ok(move || {
        let mut stopped = stopped.clone();
        Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    })
}

/// Parses Go-style durations as Kubernetes flags take them: `300ms`, `50s`, `5m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 5m"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    Ok(std::time::Duration::from_millis(number * millis))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_kubernetes_flags() {
        assert_eq!(parse_duration("50s"), Ok(Duration::from_secs(50)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
