//! `capstan server`: the control plane. For now it holds the store and compacts its history;
//! the API server, controllers and scheduler join it as they are built.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use capstan_store::{Compactor, Datastore, Store};

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Where the server keeps its state (the embedded database, certificates, kubeconfig).
    #[arg(long, default_value = "/var/lib/capstan")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` for the embedded store (default: DATA_DIR/db/state.db) or a
    /// comma-separated list of etcd endpoints `http://HOST:2379,…`.
    #[arg(long)]
    pub datastore_endpoint: Option<Datastore>,
    /// How often store history is compacted (history older than this is dropped).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: std::time::Duration,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let datastore = args
        .datastore_endpoint
        .unwrap_or_else(|| Datastore::Sqlite(default_database(&args.data_dir)));
    let store: Arc<dyn Store> =
        datastore.open().await.with_context(|| format!("opening the store {datastore:?}"))?;
    let revision = store.current_revision().await?;
    tracing::info!(?datastore, revision, "store ready");
    tracing::warn!(
        "the API server is not built yet: this server only holds the store and compacts it; \
         kubectl cannot connect until it is"
    );
    let compactor = Compactor::new(store, args.etcd_compaction_interval);
    compactor.run(shutdown_signal()).await;
    tracing::info!("shutting down");
    Ok(())
}

pub fn default_database(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("db").join("state.db")
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Parses Go-style durations as Kubernetes flags take them: `300ms`, `50s`, `5m`, `1h`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
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
