//! `capstan controller-manager`: the controllers on their own, against any API server, taking
//! turns with other instances (and `capstan server`'s own) through a Lease in kube-system.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use capstan_leaderelection::{LeaderElector, Timings};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The Lease all controller managers of a cluster compete for (upstream's name).
const LEASE: &str = "kube-controller-manager";
const LEASE_NAMESPACE: &str = "kube-system";

#[derive(clap::Args)]
pub struct ControllerManagerArgs {
    /// Kubeconfig naming the API server and the credentials to act with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    #[command(flatten)]
    pub controllers: crate::controller_flags::ControllerFlags,
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let shutdown = crate::server::shutdown_signal()?;
    let kubeconfig = Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let ca_pem = cluster_ca(&kubeconfig).context("reading the cluster CA from the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the kubeconfig")?;
    let client = crate::client::named(config, crate::client::CONTROLLER_MANAGER)?;
    run_elected(client, ca_pem, args.controllers.settings()?, shutdown()).await;
    tracing::info!("controller manager stopped");
    Ok(())
}

/// Runs the controllers whenever this process holds the controller-manager Lease, until
/// `shutdown`; then releases the Lease so a standby takes over at once.
pub async fn run_elected(
    client: kube::Client,
    ca_pem: String,
    settings: capstan_controllers::Settings,
    shutdown: impl Future<Output = ()>,
) {
    let elector =
        LeaderElector::new(client.clone(), LEASE_NAMESPACE, LEASE, &identity(), Timings::default());
    elector
        .run(
            || capstan_controllers::run(client.clone(), ca_pem.clone(), settings.clone()),
            shutdown,
        )
        .await;
}

/// Host name plus something unique to this process, like upstream's `<hostname>_<uuid>`.
fn identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}_{}_{nanos:x}", host.trim(), std::process::id())
}

/// The current context's cluster CA in PEM (the root CA publisher hands it to namespaces).
fn cluster_ca(kubeconfig: &Kubeconfig) -> anyhow::Result<String> {
    let context_name = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .context("the kubeconfig has no current context")?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .with_context(|| format!("cluster {cluster_name:?} is not in the kubeconfig"))?;
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
        return Ok(String::from_utf8(pem)?);
    }
    match &cluster.certificate_authority {
        Some(path) => Ok(std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?),
        None => anyhow::bail!("cluster {cluster_name:?} names no certificate authority"),
    }
}
