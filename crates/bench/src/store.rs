//! `capstan bench store`: many clients creating keys concurrently; each write counts once it is
//! acknowledged (durable). For etcd, the same load as raw etcd-client puts gives the baseline.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use capstan_store::{Datastore, Store};
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
            print(line("sqlite", &args, &figures, None));
        }
        Backend::Etcd => {
            let (_etcd, endpoints) = if args.etcd_endpoints.is_empty() {
                let etcd = capstan_testkit::EtcdServer::start()
                    .context("starting a local etcd (is the etcd-server package installed?)")?;
                let endpoint = etcd.endpoint();
                (Some(etcd), vec![endpoint])
            } else {
                (None, args.etcd_endpoints.clone())
            };
            let raw = raw_etcd_load(&endpoints, args.clients, args.ops, value.clone()).await?;
            let store = Datastore::Etcd(endpoints).open().await?;
            let figures = store_load(store, args.clients, args.ops, value).await?;
            print(line("etcd-raw", &args, &raw, None));
            print(line(
                "etcd",
                &args,
                &figures,
                Some(round(figures.writes_per_sec / raw.writes_per_sec)),
            ));
        }
    }
    Ok(())
}

fn line(backend: &str, args: &StoreBench, f: &Figures, ratio: Option<f64>) -> serde_json::Value {
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
    if let Some(ratio) = ratio {
        line["ratio_to_raw"] = json!(ratio);
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

async fn raw_etcd_load(
    endpoints: &[String],
    clients: usize,
    ops: usize,
    value: Bytes,
) -> anyhow::Result<Figures> {
    let client = etcd_client::Client::connect(endpoints, None).await?;
    drive(clients, ops, move |c, i| {
        let mut kv = client.kv_client();
        let value = value.clone();
        async move {
            let key = format!("/registry/configmaps/bench/raw-{c}-{i}");
            kv.put(key, value.to_vec(), None).await?;
            Ok(())
        }
    })
    .await
}
