//! `capstan bench store`: many clients creating keys concurrently; each write counts once it is
//! acknowledged (durable). For etcd, the same load as raw etcd-client puts gives the baseline.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use capstan_store::{Datastore, Store};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde_json::json;

use crate::report::{Latencies, print, round, rss_mb};

#[derive(clap::Args)]
pub struct StoreBench {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Writes in total.
    #[arg(long, default_value_t = 100_000)]
    ops: usize,
    /// Bytes per value (a small ConfigMap is about 1 KiB).
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// etcd endpoints to use; without it a local etcd is started in a temp dir.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Directory for the SQLite database (a temp dir by default).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Backend {
    Sqlite,
    Etcd,
}

struct Figures {
    writes_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(args: StoreBench) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0 && args.ops >= args.clients, "need ops >= clients > 0");
    let value = Bytes::from(vec![b'x'; args.value_bytes]);
    match args.backend {
        Backend::Sqlite => {
            let temp =
                tempfile::tempdir_in(args.data_dir.clone().unwrap_or_else(std::env::temp_dir))?;
            let store = Datastore::Sqlite(temp.path().join("state.db")).open().await?;
            let figures = store_load(store, args.clients, args.ops, value).await?;
            print(line("sqlite", &args, &figures, &[]));
        }
        Backend::Etcd => {
            // A fresh local etcd per load (unless endpoints are given): etcd slows as its
            // database grows, and each load should start from the same state.
            let raw_put = with_etcd(&args, |endpoints| {
                raw_etcd_load(endpoints, args.clients, args.ops, value.clone(), RawOp::Put)
            })
            .await?;
            let raw_txn = with_etcd(&args, |endpoints| {
                raw_etcd_load(endpoints, args.clients, args.ops, value.clone(), RawOp::CreateTxn)
            })
            .await?;
            let backend = with_etcd(&args, |endpoints| async {
                let store = Datastore::Etcd(endpoints).open().await?;
                store_load(store, args.clients, args.ops, value.clone()).await
            })
            .await?;
            print(line("etcd-raw-put", &args, &raw_put, &[]));
            print(line("etcd-raw-create-txn", &args, &raw_txn, &[]));
            let ratios = [
                ("ratio_to_raw", backend.writes_per_sec / raw_put.writes_per_sec),
                ("ratio_to_raw_create_txn", backend.writes_per_sec / raw_txn.writes_per_sec),
            ];
            print(line("etcd", &args, &backend, &ratios));
        }
    }
    Ok(())
}

fn line(
    backend: &str,
    args: &StoreBench,
    f: &Figures,
    ratios: &[(&str, f64)],
) -> serde_json::Value {
    let mut line = json!({
        "scenario": "store",
        "backend": backend,
        "clients": args.clients,
        "ops": args.ops,
        "value_bytes": args.value_bytes,
        "writes_per_sec": f.writes_per_sec,
        "p50_ms": f.p50_ms,
        "p99_ms": f.p99_ms,
        "rss_mb": rss_mb(),
    });
    for (name, ratio) in ratios {
        line[*name] = json!(round(*ratio));
    }
    line
}

/// Runs `clients` tasks that together perform `ops` writes via `write(client, i)`.
async fn drive<F, Fut>(clients: usize, ops: usize, write: F) -> anyhow::Result<Figures>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let write = write.clone();
            // Spread the remainder so the total is exactly `ops`.
            let count = ops / clients + usize::from(client < ops % clients);
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                for i in 0..count {
                    let t = Instant::now();
                    write(client, i).await?;
                    latencies.record(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    for task in futures::future::join_all(tasks).await {
        latencies.merge(task??);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Figures {
        writes_per_sec: (ops as f64 / seconds).round(),
        p50_ms: latencies.percentile_ms(0.50),
        p99_ms: latencies.percentile_ms(0.99),
    })
}

async fn store_load(
    store: Arc<dyn Store>,
    clients: usize,
    ops: usize,
    value: Bytes,
) -> anyhow::Result<Figures> {
    drive(clients, ops, move |client, i| {
        let store = store.clone();
        let value = value.clone();
        async move {
            let key = format!("/registry/configmaps/bench/store-{client}-{i}");
            store.create(&key, value).await?;
            Ok(())
        }
    })
    .await
}

/// Runs `load` against the given etcd endpoints, or a fresh local etcd.
async fn with_etcd<F, Fut>(args: &StoreBench, load: F) -> anyhow::Result<Figures>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Figures>>,
{
    if !args.etcd_endpoints.is_empty() {
        return load(args.etcd_endpoints.clone()).await;
    }
    let etcd = capstan_testkit::EtcdServer::start()
        .context("starting a local etcd (is the etcd-server package installed?)")?;
    load(vec![etcd.endpoint()]).await
}

/// The baseline operations, issued with etcd-client directly.
#[derive(Clone, Copy)]
enum RawOp {
    /// A plain put: etcd's cheapest write.
    Put,
    /// Create-if-absent, the transaction a store create needs (etcd 3.4 runs these slower).
    CreateTxn,
}

async fn raw_etcd_load(
    endpoints: Vec<String>,
    clients: usize,
    ops: usize,
    value: Bytes,
    op: RawOp,
) -> anyhow::Result<Figures> {
    let client = etcd_client::Client::connect(endpoints, None).await?;
    drive(clients, ops, move |c, i| {
        let mut kv = client.kv_client();
        let value = value.to_vec();
        async move {
            let key = format!("/registry/configmaps/bench/raw-{c}-{i}");
            match op {
                RawOp::Put => drop(kv.put(key, value, None).await?),
                RawOp::CreateTxn => {
                    let txn = Txn::new()
                        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key.as_str(), value, None)]);
                    anyhow::ensure!(kv.txn(txn).await?.succeeded(), "{key} already exists");
                }
            }
            Ok(())
        }
    })
    .await
}
