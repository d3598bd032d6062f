//! `capstan bench api`: a real `capstan server` child process driven by kube-rs — its memory idle
//! and loaded, concurrent creates, full consistent lists, and watch fan-out latency.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use capstan_testkit::CapstanServer;
use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::report::{Latencies, print, process_rss_mb};

const NAMESPACE: &str = "bench";
/// Bytes of data per ConfigMap: a small but realistic object.
const VALUE_BYTES: usize = 1024;
/// Lists are also timed when this many objects exist, on the way to `--objects`.
const LIST_CHECKPOINT: usize = 10_000;
const LIST_REPEATS: usize = 5;
/// Slow enough that the writer measures fan-out, not a queue it builds itself.
const WATCH_WRITES_PER_SEC: u64 = 50;
/// How long the watchers may take to start (each its own connection and TLS handshake).
const WATCH_START: Duration = Duration::from_secs(60);
/// How long watchers may still wait for events after the last write.
const WATCH_GRACE: Duration = Duration::from_secs(60);
/// Lets start-up work (controllers connecting, first syncs) finish before idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// Each watched write carries its client send time, so a watcher can compute delivery latency.
const SENT_ANNOTATION: &str = "bench.capstan.dev/sent-unix-nanos";

#[derive(clap::Args)]
pub struct ApiBench {
    /// Concurrent clients creating ConfigMaps.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// ConfigMaps created in total; lists are timed at 10,000 on the way and at this count.
    #[arg(long, default_value_t = 50_000)]
    objects: usize,
    /// Concurrent watchers of the namespace.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// ConfigMaps written (at 50/s) while the watchers watch.
    #[arg(long, default_value_t = 200)]
    watch_writes: usize,
    /// Passed to the server: `sqlite://PATH` or etcd endpoints (default: its embedded SQLite).
    #[arg(long)]
    datastore_endpoint: Option<String>,
}

pub async fn run(args: ApiBench) -> anyhow::Result<()> {
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
    // The server's log is the first thing to read when a phase fails.
    bench(&server, &args).await.with_context(|| format!("server log:\n{}", server.log_tail()))
}

async fn bench(server: &CapstanServer, args: &ApiBench) -> anyhow::Result<()> {
    tokio::time::sleep(SETTLE).await;
    print(json!({"scenario": "api", "phase": "idle", "rss_mb": process_rss_mb(server.pid())}));

    let kubeconfig = Kubeconfig::read_from(server.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(config)?;
    let namespace = Namespace {
        metadata: ObjectMeta { name: Some(NAMESPACE.into()), ..Default::default() },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);

    let mut checkpoints = vec![args.objects];
    if args.objects > LIST_CHECKPOINT {
        checkpoints.insert(0, LIST_CHECKPOINT);
    }
    let mut latencies = Latencies::default();
    let mut creating = Duration::ZERO;
    let mut created = 0;
    for checkpoint in checkpoints {
        let started = Instant::now();
        latencies.merge(create(&api, args.clients, created..checkpoint).await?);
        creating += started.elapsed();
        created = checkpoint;
        if created == args.objects {
            print(json!({
                "scenario": "api",
                "phase": "create",
                "clients": args.clients,
                "objects": args.objects,
                "writes_per_sec": (args.objects as f64 / creating.as_secs_f64()).round(),
                "p50_ms": latencies.percentile_ms(0.50),
                "p99_ms": latencies.percentile_ms(0.99),
            }));
            // Read before the big list below, whose buffers the allocator may keep: this is the
            // memory the stored objects cost.
            print(json!({
                "scenario": "api",
                "phase": "loaded",
                "objects": args.objects,
                "rss_mb": process_rss_mb(server.pid()),
            }));
        }
        let mut lists = list(&client, &api, created).await?;
        print(json!({
            "scenario": "api",
            "phase": "list",
            "objects": created,
            "p50_ms": lists.percentile_ms(0.50),
            "p99_ms": lists.percentile_ms(0.99),
        }));
    }

    let mut deliveries = watch_delivery(&api, args.watchers, args.watch_writes).await?;
    print(json!({
        "scenario": "api",
        "phase": "watch",
        "watchers": args.watchers,
        "writes": args.watch_writes,
        "events": deliveries.count(),
        "p50_ms": deliveries.percentile_ms(0.50),
        "p99_ms": deliveries.percentile_ms(0.99),
    }));
    Ok(())
}

fn configmap(name: String, sent: Option<SystemTime>) -> ConfigMap {
    let annotations = sent.map(|sent| {
        let nanos = sent.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        [(SENT_ANNOTATION.to_owned(), nanos.to_string())].into()
    });
    ConfigMap {
        metadata: ObjectMeta { name: Some(name), annotations, ..Default::default() },
        data: Some([("payload".to_owned(), "x".repeat(VALUE_BYTES))].into()),
        ..Default::default()
    }
}

/// `clients` tasks create the ConfigMaps numbered `range`, each taking the next number until
/// none is left, so every client stays busy to the end.
async fn create(
    api: &Api<ConfigMap>,
    clients: usize,
    range: Range<usize>,
) -> anyhow::Result<Latencies> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let api = api.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= range.end {
                        return anyhow::Ok(latencies);
                    }
                    let name = format!("cm-{i:06}");
                    let object = configmap(name.clone(), None);
                    let started = Instant::now();
                    api.create(&PostParams::default(), &object)
                        .await
                        .with_context(|| format!("creating ConfigMap {name}"))?;
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

/// Times full lists of the namespace: no limit, JSON, resourceVersion unset (a consistent read).
/// The clock stops when the whole body has arrived; decoding it is the client's business.
async fn list(
    client: &kube::Client,
    api: &Api<ConfigMap>,
    expected: usize,
) -> anyhow::Result<Latencies> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<serde::de::IgnoredAny>,
    }
    let mut latencies = Latencies::default();
    for repeat in 0..LIST_REPEATS {
        let request = kube::core::Request::new(api.resource_url()).list(&ListParams::default())?;
        let started = Instant::now();
        let response = client.send(request.map(kube::client::Body::from)).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        latencies.record(started.elapsed());
        anyhow::ensure!(status.is_success(), "list failed with {status}");
        if repeat == 0 {
            let listed = serde_json::from_slice::<Items>(&body)?.items.len();
            anyhow::ensure!(listed >= expected, "listed {listed} ConfigMaps, expected {expected}");
        }
    }
    Ok(latencies)
}

/// Starts `watchers` watches of the namespace from its current resourceVersion, then writes
/// `writes` stamped ConfigMaps; each watcher records receive time − send time per event.
async fn watch_delivery(
    api: &Api<ConfigMap>,
    watchers: usize,
    writes: usize,
) -> anyhow::Result<Latencies> {
    let list = api.list_metadata(&ListParams::default().limit(1)).await?;
    let revision = list.metadata.resource_version.context("the list has no resourceVersion")?;
    let (ready_tx, mut ready) = mpsc::channel(watchers.max(1));
    let (stop_tx, stop) = watch::channel(false);
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            let (api, revision, ready, mut stop) =
                (api.clone(), revision.clone(), ready_tx.clone(), stop.clone());
            tokio::spawn(async move {
                let events = match api.watch(&WatchParams::default(), &revision).await {
                    Ok(events) => {
                        let _ = ready.send(Ok(())).await;
                        events
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e)).await;
                        return Latencies::default();
                    }
                };
                futures::pin_mut!(events);
                let mut latencies = Latencies::default();
                while latencies.count() < writes {
                    let event = tokio::select! {
                        event = events.next() => event,
                        _ = stop.changed() => break,
                    };
                    match event {
                        Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                            if let Some(sent) = sent_at(&object) {
                                let now = SystemTime::now();
                                latencies.record(now.duration_since(sent).unwrap_or_default());
                            }
                        }
                        Some(Ok(WatchEvent::Bookmark(_) | WatchEvent::Deleted(_))) => {}
                        // The watch ended early: the missing events show in the count.
                        Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => break,
                    }
                }
                latencies
            })
        })
        .collect();
    drop(ready_tx);
    tokio::time::timeout(WATCH_START, async {
        for _ in 0..watchers {
            ready.recv().await.context("a watcher vanished")??;
        }
        anyhow::Ok(())
    })
    .await
    .with_context(|| format!("{watchers} watches did not start in {WATCH_START:?}"))??;

    let mut ticks = tokio::time::interval(Duration::from_secs(1) / WATCH_WRITES_PER_SEC as u32);
    for i in 0..writes {
        ticks.tick().await;
        let object = configmap(format!("watch-{i:04}"), Some(SystemTime::now()));
        api.create(&PostParams::default(), &object).await?;
    }
    // Bounded: watchers that have not seen every write by then stop with what they have.
    tokio::spawn(async move {
        tokio::time::sleep(WATCH_GRACE).await;
        let _ = stop_tx.send(true);
    });
    let mut latencies = Latencies::default();
    for task in futures::future::join_all(tasks).await {
        latencies.merge(task?);
    }
    Ok(latencies)
}

fn sent_at(object: &ConfigMap) -> Option<SystemTime> {
    let nanos: u64 = object.metadata.annotations.as_ref()?.get(SENT_ANNOTATION)?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}
