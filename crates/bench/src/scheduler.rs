//! `capstan bench scheduler`: a real `capstan server` child with N Node objects created
//! through the API (no agent needed; kept from timing out), then pods created by concurrent clients; measures each
//! pod's creation → bound latency (watching pods), the throughput, and the server's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use capstan_testkit::CapstanServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::report::{Latencies, print, process_rss_mb, round};

const NAMESPACE: &str = "default";
const ZONES: usize = 10;
/// How long the whole run may take before it is reported as stuck.
const DEADLINE: Duration = Duration::from_secs(1800);

#[derive(clap::Args)]
pub struct SchedulerBench {
    /// Node objects to create.
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Pods to create and wait for until bound.
    #[arg(long, default_value_t = 50_000)]
    pods: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Pods carry required anti-affinity by hostname against their group (groups sized to
    /// half the nodes, so every pod fits).
    #[arg(long)]
    anti_affinity: bool,
    /// Pods carry a DoNotSchedule topology spread constraint over zones (maxSkew 1).
    #[arg(long)]
    topology_spread: bool,
}

pub async fn run(args: SchedulerBench) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes > 0 && args.pods > 0 && args.clients > 0, "need positive counts");
    let binary = std::env::current_exe().context("finding the capstan binary")?;
    // The Node objects have no kubelet behind them, so nothing renews their heartbeats: a
    // long grace period keeps the node lifecycle controller from tainting them mid-run
    // (upstream's scheduler_perf runs with no node lifecycle controller at all).
    let flags = [
        "--node-monitor-grace-period",
        "24h",
        "--cluster-cidr",
        crate::controllers::BENCH_CLUSTER_CIDR,
    ];
    let server =
        tokio::task::spawn_blocking(move || CapstanServer::start(&binary, &flags)).await??;
    bench(&server, &args).await.with_context(|| format!("server log:\n{}", server.log_tail()))
}

fn variant(args: &SchedulerBench) -> &'static str {
    match (args.anti_affinity, args.topology_spread) {
        (true, true) => "anti-affinity+topology-spread",
        (true, false) => "anti-affinity",
        (false, true) => "topology-spread",
        (false, false) => "basic",
    }
}

async fn bench(server: &CapstanServer, args: &SchedulerBench) -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;

    let started = Instant::now();
    create_nodes(&client, args.nodes, args.clients).await?;
    print(json!({
        "scenario": "scheduler", "phase": "nodes", "nodes": args.nodes,
        "seconds": round(started.elapsed().as_secs_f64()),
        "rss_mb": process_rss_mb(server.pid()),
    }));

    // Send times in nanoseconds since `epoch`, by pod number (0: not sent yet).
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..args.pods).map(|_| AtomicU64::new(0)).collect());
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let watcher = tokio::spawn(watch_bound(pods.clone(), sent.clone(), epoch, args.pods));
    // Let the watch start before the first pod is created.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = Arc::new(AtomicUsize::new(0));
    let groups = args.pods.div_ceil((args.nodes / 2).max(1));
    let creators: Vec<_> = (0..args.clients)
        .map(|_| {
            let (pods, sent, next) = (pods.clone(), sent.clone(), next.clone());
            let (anti, spread, total) = (args.anti_affinity, args.topology_spread, args.pods);
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(());
                    }
                    let pod: Pod = serde_json::from_value(pod(i, i % groups, anti, spread))?;
                    sent[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    pods.create(&PostParams::default(), &pod)
                        .await
                        .with_context(|| format!("creating pod {i}"))?;
                }
            })
        })
        .collect();
    for creator in futures::future::join_all(creators).await {
        creator??;
    }
    let created = epoch.elapsed();
    let (mut latencies, last_bound) = tokio::time::timeout(DEADLINE, watcher)
        .await
        .with_context(|| format!("not every pod was bound within {DEADLINE:?}"))???;
    let seconds = last_bound.as_secs_f64();
    print(json!({
        "scenario": "scheduler",
        "variant": variant(args),
        "nodes": args.nodes,
        "pods": args.pods,
        "clients": args.clients,
        "create_seconds": round(created.as_secs_f64()),
        "seconds": round(seconds),
        "pods_per_sec": (args.pods as f64 / seconds).round(),
        "p50_ms": latencies.percentile_ms(0.50),
        "p99_ms": latencies.percentile_ms(0.99),
        "rss_mb": process_rss_mb(server.pid()),
    }));
    Ok(())
}

/// Node `i`: 32 cpu, 256Gi, 110 pods, Ready, in one of ten zones.
fn node(i: usize) -> Value {
    let name = format!("node-{i:05}");
    let resources =
        json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % ZONES),
        }},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    })
}

async fn create_nodes(client: &kube::Client, count: usize, clients: usize) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let node: Node = serde_json::from_value(node(i))?;
                let created = api.create(&PostParams::default(), &node).await?;
                // Servers that drop status on create get it through the subresource.
                if created.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_none() {
                    let mut with_status = created;
                    with_status.status = node.status;
                    let name = with_status.metadata.name.clone().unwrap_or_default();
                    api.replace_status(&name, &PostParams::default(), &with_status).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(clients)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn pod(i: usize, group: usize, anti_affinity: bool, topology_spread: bool) -> Value {
    let group = format!("g{group}");
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "labels": {"app": "bench", "group": group}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]},
    });
    let selector = json!({"matchLabels": {"group": group}});
    if anti_affinity {
        pod["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}});
    }
    if topology_spread {
        pod["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": selector}]);
    }
    pod
}

/// Watches bound pods until all `total` are bound; their latencies and when the last was.
async fn watch_bound(
    api: Api<Pod>,
    sent: Arc<Vec<AtomicU64>>,
    epoch: Instant,
    total: usize,
) -> anyhow::Result<(Latencies, Duration)> {
    let mut seen = vec![false; total];
    let mut latencies = Latencies::default();
    let mut last = Duration::ZERO;
    let mut version = "0".to_owned();
    while latencies.count() < total {
        let params = WatchParams::default().fields("spec.nodeName!=").timeout(290);
        let mut events = api.watch(&params, &version).await?.boxed();
        while let Some(event) = events.try_next().await? {
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                WatchEvent::Bookmark(_) | WatchEvent::Deleted(_) => continue,
                WatchEvent::Error(e) => anyhow::bail!("watch failed: {e:?}"),
            };
            version = pod.metadata.resource_version.clone().unwrap_or(version);
            let index = pod
                .metadata
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix("pod-")?.parse::<usize>().ok());
            let Some(index) = index.filter(|i| *i < total && !seen[*i]) else { continue };
            if pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                continue;
            }
            seen[index] = true;
            let now = epoch.elapsed();
            let sent = Duration::from_nanos(sent[index].load(Ordering::Relaxed));
            latencies.record(now.saturating_sub(sent));
            last = now;
            if latencies.count() == total {
                break;
            }
        }
    }
    Ok((latencies, last))
}
