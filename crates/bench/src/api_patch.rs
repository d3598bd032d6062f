//! `capstan bench api-patch`: a real `capstan server` child driven by kube-rs — Deployments
//! created by server-side apply, then changed by strategic merge patches and by server-side
//! applies, each phase reported with its throughput and latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use capstan_testkit::CapstanServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::report::{Latencies, print};

const NAMESPACE: &str = "bench-patch";
const MANAGER: &str = "bench";

#[derive(clap::Args)]
pub struct ApiPatchBench {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Deployments created, then each patched once and applied once.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Passed to the server: `sqlite://PATH` or etcd endpoints (default: its embedded SQLite).
    #[arg(long)]
    datastore_endpoint: Option<String>,
}

pub async fn run(args: ApiPatchBench) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0 && args.objects > 0, "need --clients and --objects > 0");
    let binary = std::env::current_exe().context("finding the capstan binary")?;
    let mut extra_args = Vec::new();
    if let Some(endpoint) = &args.datastore_endpoint {
        extra_args.extend(["--datastore-endpoint".to_owned(), endpoint.clone()]);
    }
    let server = tokio::task::spawn_blocking(move || {
        let extra_args: Vec<&str> = extra_args.iter().map(String::as_str).collect();
        CapstanServer::start(&binary, &extra_args)
    })
    .await??;
    bench(&server, &args).await.with_context(|| format!("server log:\n{}", server.log_tail()))
}

/// A Deployment as a manifest would have it; `version` changes its image and replicas.
fn deployment(i: usize, version: usize) -> Value {
    let name = format!("web-{i:06}");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, "tier": "bench"}},
        "spec": {
            "replicas": 1 + version,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {
                        "name": "web",
                        "image": format!("registry.local/web:{version}"),
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "env": [{"name": "MODE", "value": "bench"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
                    },
                    {"name": "sidecar", "image": "registry.local/sidecar:1"}
                ]}
            }
        }
    })
}

async fn bench(server: &CapstanServer, args: &ApiPatchBench) -> anyhow::Result<()> {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;
    let namespace = Namespace {
        metadata: ObjectMeta { name: Some(NAMESPACE.into()), ..Default::default() },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
    let api: Api<Deployment> = Api::namespaced(client, NAMESPACE);
    let apply = PatchParams::apply(MANAGER);

    let phases: [(&str, &str); 3] = [
        ("apply-create", "applies_per_sec"),
        ("strategic", "patches_per_sec"),
        ("apply", "applies_per_sec"),
    ];
    for (phase, figure) in phases {
        let started = Instant::now();
        let apply = apply.clone();
        let mut latencies = each(&api, args, move |api, i| {
            let apply = apply.clone();
            async move {
                let name = format!("web-{i:06}");
                match phase {
                    "apply-create" => {
                        api.patch(&name, &apply, &Patch::Apply(deployment(i, 0))).await
                    }
                    "strategic" => {
                        let patch = json!({"spec": {"template": {"spec": {"containers": [
                            {"name": "web", "image": "registry.local/web:patched"}
                        ]}}}});
                        api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch)).await
                    }
                    _ => {
                        let forced = apply.force();
                        api.patch(&name, &forced, &Patch::Apply(deployment(i, 1))).await
                    }
                }
                .with_context(|| format!("{phase} of Deployment {name}"))
                .map(drop)
            }
        })
        .await?;
        let mut line = json!({
            "scenario": "api-patch",
            "phase": phase,
            "clients": args.clients,
            "objects": args.objects,
            "p50_ms": latencies.percentile_ms(0.50),
            "p99_ms": latencies.percentile_ms(0.99),
        });
        line[figure] = json!((args.objects as f64 / started.elapsed().as_secs_f64()).round());
        print(line);
    }
    Ok(())
}

/// Runs `op` once for each object number, from `clients` tasks taking the next number until
/// none is left.
async fn each<F, Fut>(
    api: &Api<Deployment>,
    args: &ApiPatchBench,
    op: F,
) -> anyhow::Result<Latencies>
where
    F: Fn(Api<Deployment>, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let total = args.objects;
    let tasks: Vec<_> = (0..args.clients)
        .map(|_| {
            let (api, next, op) = (api.clone(), next.clone(), op.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(latencies);
                    }
                    let started = Instant::now();
                    op(api.clone(), i).await?;
                    latencies.record(started.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    for task in futures::future::join_all(tasks).await {
        latencies.merge(task??);
    }
    Ok(latencies)
}
