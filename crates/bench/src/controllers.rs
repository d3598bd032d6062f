//! `capstan bench controllers`: a `capstan server` child and a simulated agent child with N
//! nodes; Deployments created through the API, then all rolled to a new image. Measures the time
//! until every pod is Running and Available, the rate the ReplicaSet controller creates pods, and
//! the API requests each reconcile sends (from the server's `/metrics`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use capstan_testkit::{CapstanAgent, CapstanServer};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};

use crate::report::{print, process_rss_mb, round};

const NAMESPACE: &str = "bench";
const IMAGE: &str = "registry.k8s.io/pause:3.10";
const NEW_IMAGE: &str = "registry.k8s.io/pause:3.9";
/// How long one phase may take before it is reported as stuck.
const DEADLINE: Duration = Duration::from_secs(1800);

#[derive(clap::Args)]
pub struct ControllersBench {
    /// Simulated nodes (one agent process registers them all).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Deployments to create.
    #[arg(long, default_value_t = 1000)]
    deployments: usize,
    /// Replicas of each Deployment.
    #[arg(long, default_value_t = 30)]
    replicas: usize,
    /// Concurrent clients creating and updating Deployments.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The server's `--concurrent-replicaset-syncs` (upstream's default: 5).
    #[arg(long, default_value_t = 5)]
    concurrent_replicaset_syncs: u16,
    /// The server's `--concurrent-deployment-syncs` (upstream's default: 5).
    #[arg(long, default_value_t = 5)]
    concurrent_deployment_syncs: u16,
}

/// A pod range with a /24 for each of up to 16,384 nodes.
pub const BENCH_CLUSTER_CIDR: &str = "100.64.0.0/10";

pub async fn run(args: ControllersBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.nodes > 0 && args.deployments > 0 && args.replicas > 0 && args.clients > 0,
        "need positive counts"
    );
    let binary = std::env::current_exe().context("finding the capstan binary")?;
    let syncs = [
        "--concurrent-replicaset-syncs".to_owned(),
        args.concurrent_replicaset_syncs.to_string(),
        "--concurrent-deployment-syncs".to_owned(),
        args.concurrent_deployment_syncs.to_string(),
        // Room for every node's /24 (the default 10.42.0.0/16 has 256, like k3s').
        "--cluster-cidr".to_owned(),
        BENCH_CLUSTER_CIDR.to_owned(),
    ];
    let server = tokio::task::spawn_blocking({
        let binary = binary.clone();
        move || CapstanServer::start(&binary, &syncs.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await??;
    let count = args.nodes.to_string();
    let agent =
        CapstanAgent::start(&binary, &server, &["--node-name", "sim", "--node-count", &count])?;
    bench(&server, &agent, &args).await.with_context(|| {
        format!("server log:\n{}\nagent log:\n{}", server.log_tail(), agent.log_tail())
    })
}

async fn bench(
    server: &CapstanServer,
    agent: &CapstanAgent,
    args: &ControllersBench,
) -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;
    let memory = || {
        json!({
            "server_rss_mb": process_rss_mb(server.pid()),
            "agent_rss_mb": process_rss_mb(agent.pid()),
            "server_cpu_seconds": cpu_seconds(server.pid()),
            "agent_cpu_seconds": cpu_seconds(agent.pid()),
        })
    };

    let started = Instant::now();
    wait_for_ready_nodes(&client, args.nodes).await?;
    print(merge(
        json!({"scenario": "controllers", "phase": "nodes", "nodes": args.nodes,
            "seconds": round(started.elapsed().as_secs_f64())}),
        memory(),
    ));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    namespaces.create(&PostParams::default(), &serde_json::from_value(namespace)?).await?;

    // Deployments as the API reports them, and when each pod was first seen.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let (store, writer) = reflector::store();
    let reflect = tokio::spawn(
        watcher(deployments.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(|_| futures::future::ready(())),
    );
    let epoch = Instant::now();
    let pods_seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let pod_watch = tokio::spawn(record_new_pods(
        Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), NAMESPACE),
        pods_seen.clone(),
        epoch,
    ));
    store.wait_until_ready().await?;
    let pods = args.deployments * args.replicas;

    // Phase 1: create every Deployment; wait until all their pods are Available.
    let before = controller_metrics(&client).await?;
    let phase_start = epoch.elapsed();
    let generations = for_each_deployment(args, |i| {
        let api = deployments.clone();
        async move {
            let d: Deployment = serde_json::from_value(deployment(i, args.replicas))?;
            let created = api.create(&PostParams::default(), &d).await?;
            anyhow::Ok(created.metadata.generation.unwrap_or(1))
        }
    })
    .await?;
    let submitted = epoch.elapsed() - phase_start;
    wait_for_rollout(&store, &generations, args.replicas).await?;
    let done = epoch.elapsed() - phase_start;
    let after = controller_metrics(&client).await?;
    let created = pods_created(&pods_seen, phase_start, pods)?;
    let mut line = phase_report(args, "create", created, done);
    line["submit_seconds"] = json!(round(submitted.as_secs_f64()));
    print(merge(line, merge(per_reconcile(&before, &after), memory())));

    // Phase 2: a new image for every Deployment; wait until all are rolled out.
    let before = after;
    let phase_start = epoch.elapsed();
    let generations = for_each_deployment(args, |i| {
        let api = deployments.clone();
        async move {
            let patch =
                json!({"spec": {"template": {"spec": {"containers": [container(NEW_IMAGE)]}}}});
            let patched =
                api.patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch)).await?;
            anyhow::Ok(patched.metadata.generation.unwrap_or(2))
        }
    })
    .await?;
    wait_for_rollout(&store, &generations, args.replicas).await?;
    let done = epoch.elapsed() - phase_start;
    let after = controller_metrics(&client).await?;
    let created = pods_created(&pods_seen, phase_start, pods)?;
    let line = phase_report(args, "rolling-update", created, done);
    print(merge(line, merge(per_reconcile(&before, &after), memory())));
    reflect.abort();
    pod_watch.abort();
    Ok(())
}

/// One phase's line: the run's settings, when its pods were all created and when all were
/// Available, and the rates those make.
fn phase_report(args: &ControllersBench, phase: &str, created: Duration, done: Duration) -> Value {
    let pods = args.deployments * args.replicas;
    json!({
        "scenario": "controllers", "phase": phase, "nodes": args.nodes,
        "concurrent_replicaset_syncs": args.concurrent_replicaset_syncs,
        "concurrent_deployment_syncs": args.concurrent_deployment_syncs,
        "deployments": args.deployments, "replicas": args.replicas, "pods": pods,
        "pods_created_seconds": round(created.as_secs_f64()),
        "created_pods_per_sec": (pods as f64 / created.as_secs_f64()).round(),
        "seconds": round(done.as_secs_f64()),
        "pods_per_sec": (pods as f64 / done.as_secs_f64()).round(),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn name(i: usize) -> String {
    format!("d-{i:05}")
}

fn container(image: &str) -> Value {
    json!({"name": "c", "image": image,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}})
}

fn deployment(i: usize, replicas: usize) -> Value {
    let labels = json!({"app": name(i)});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name(i)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container(IMAGE)]}},
        },
    })
}

/// Runs `op` for every Deployment index on `args.clients` concurrent clients; the generation
/// each returned, by Deployment name.
async fn for_each_deployment<F, Fut>(
    args: &ControllersBench,
    op: F,
) -> anyhow::Result<BTreeMap<String, i64>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<i64>>,
{
    futures::stream::iter(0..args.deployments)
        .map(|i| {
            let done = op(i);
            async move { done.await.map(|generation| (name(i), generation)) }
        })
        .buffer_unordered(args.clients)
        .try_collect()
        .await
}

/// Polls the node list until `count` nodes are Ready.
async fn wait_for_ready_nodes(client: &kube::Client, count: usize) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = nodes
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|n| {
                let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
                conditions
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready >= count {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {ready} of {count} nodes became Ready");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until every Deployment in `generations` has observed at least that generation and
/// reports `replicas` pods, all updated and available (old ReplicaSets scaled to nothing).
async fn wait_for_rollout(
    store: &reflector::Store<Deployment>,
    generations: &BTreeMap<String, i64>,
    replicas: usize,
) -> anyhow::Result<()> {
    let replicas = replicas as i32;
    let deadline = Instant::now() + DEADLINE;
    let mut last_progress = Instant::now();
    loop {
        let rolled_out = store
            .state()
            .iter()
            .filter(|d| {
                let Some(generation) = d.metadata.name.as_ref().and_then(|n| generations.get(n))
                else {
                    return false;
                };
                let Some(s) = d.status.as_ref() else { return false };
                s.observed_generation.unwrap_or(0) >= *generation
                    && s.replicas == Some(replicas)
                    && s.updated_replicas == Some(replicas)
                    && s.available_replicas == Some(replicas)
            })
            .count();
        if rolled_out == generations.len() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {rolled_out} of {} Deployments rolled out within {DEADLINE:?}",
            generations.len()
        );
        if last_progress.elapsed() > Duration::from_secs(10) {
            eprintln!("{rolled_out} of {} Deployments rolled out", generations.len());
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records when each new pod (by uid) was first seen, from a metadata-only watch.
async fn record_new_pods(
    api: Api<PartialObjectMeta<Pod>>,
    seen: Arc<Mutex<Vec<Duration>>>,
    epoch: Instant,
) {
    let mut known = std::collections::HashSet::new();
    let mut events =
        watcher(api, watcher::Config::default()).default_backoff().applied_objects().boxed();
    while let Some(event) = events.next().await {
        let Ok(pod) = event else { continue };
        if let Some(uid) = pod.metadata.uid
            && known.insert(uid)
        {
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(epoch.elapsed());
        }
    }
}

/// How long after `since` the `count`-th pod created after it was first seen.
fn pods_created(
    seen: &Mutex<Vec<Duration>>,
    since: Duration,
    count: usize,
) -> anyhow::Result<Duration> {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut after: Vec<Duration> = seen.iter().copied().filter(|t| *t >= since).collect();
    after.sort_unstable();
    let last = after.get(count.saturating_sub(1)).copied().with_context(|| {
        format!("only {} of {count} new pods were seen by the pod watch", after.len())
    })?;
    Ok(last - since)
}

/// Per controller: (reconciles, requests) from the server's `/metrics`.
async fn controller_metrics(client: &kube::Client) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await.context("reading /metrics")?;
    let mut figures: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<u64>() else { continue };
        let Some(controller) = series
            .split_once("controller=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(controller, _)| controller.to_owned())
        else {
            continue;
        };
        let entry = figures.entry(controller).or_default();
        if series.starts_with("capstan_controller_reconciles_total") {
            entry.0 += value;
        } else if series.starts_with("capstan_controller_requests_total") {
            entry.1 += value;
        }
    }
    Ok(figures)
}

/// Reconciles, requests and requests per reconcile of each controller that ran in between.
fn per_reconcile(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) -> Value {
    let mut reconciles = serde_json::Map::new();
    let mut requests = serde_json::Map::new();
    let mut ratio = serde_json::Map::new();
    for (controller, (r1, q1)) in after {
        let (r0, q0) = before.get(controller).copied().unwrap_or_default();
        let (r, q) = (r1 - r0, q1 - q0);
        if r == 0 && q == 0 {
            continue;
        }
        reconciles.insert(controller.clone(), json!(r));
        requests.insert(controller.clone(), json!(q));
        ratio.insert(controller.clone(), json!(round(q as f64 / r.max(1) as f64)));
    }
    json!({"reconciles": reconciles, "requests": requests, "requests_per_reconcile": ratio})
}

/// User plus system CPU time a process has used so far, in seconds (0 where /proc is missing).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields.iter().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum();
    round(ticks / 100.0)
}
