//! `capstan scheduler`: the scheduler as its own process, against any API server.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// The kubeconfig with the API server's address and credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Schedule only while holding the `kube-system/kube-scheduler` Lease, so several
    /// schedulers can run for availability.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// The Lease (in kube-system) schedulers of one kind compete for.
    #[arg(long, default_value = capstan_scheduler::LEASE_NAME)]
    pub leader_elect_resource_name: String,
    /// Pods naming this scheduler in `spec.schedulerName` are scheduled; others are left alone.
    #[arg(long, default_value = capstan_scheduler::DEFAULT_SCHEDULER_NAME)]
    pub scheduler_name: String,
    /// Share of nodes to find feasible before scoring (0: upstream's adaptive default).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = crate::client::named(config, crate::client::SCHEDULER)?;
    let config = capstan_scheduler::Config {
        scheduler_name: args.scheduler_name,
        percentage_of_nodes_to_score: Some(args.percentage_of_nodes_to_score).filter(|p| *p > 0),
    };
    let shutdown = crate::server::shutdown_signal()?();
    if args.leader_elect {
        let identity = capstan_scheduler::identity();
        tracing::info!(identity, "scheduler starting, electing a leader");
        capstan_scheduler::run_with_leader_election(
            client,
            config,
            &args.leader_elect_resource_name,
            &identity,
            shutdown,
        )
        .await;
    } else {
        tokio::select! {
            () = capstan_scheduler::run(client, config) => {}
            () = shutdown => {}
        }
    }
    Ok(())
}
