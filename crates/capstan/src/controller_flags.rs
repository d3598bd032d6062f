//! The controller manager's flags (upstream's names and defaults), shared by `capstan server`
//! and `capstan controller-manager`.

use capstan_controllers::Settings;

#[derive(clap::Args, Clone)]
pub struct ControllerFlags {
    /// How often the node lifecycle controller looks again at nodes that went quiet.
    #[arg(long, default_value = "5s", value_parser = crate::server::parse_duration)]
    pub node_monitor_period: std::time::Duration,
    /// How long a node may go without a heartbeat before it is marked unreachable.
    #[arg(long, default_value = "50s", value_parser = crate::server::parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// Nodes per second tainted for eviction in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// Nodes per second tainted for eviction in a partially disrupted large zone.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    /// Share of not-ready nodes (at least 3) that makes a zone partially disrupted.
    #[arg(long, default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Partially disrupted zones of at most this many nodes stop evicting altogether.
    #[arg(long, default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// The range nodes' pod CIDRs are carved from.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The prefix length of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Finished pods kept before the oldest are deleted (0 keeps all).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// ReplicaSets (and ReplicationControllers) synced at once; more is more responsive and
    /// more CPU and API load.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_replicaset_syncs: u16,
    /// Deployments synced at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_deployment_syncs: u16,
}

impl ControllerFlags {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        if capstan_controllers::nodeipam::Cidr::parse(&self.cluster_cidr).is_none() {
            anyhow::bail!(
                "--cluster-cidr {:?} is not an IPv4 CIDR like 10.42.0.0/16",
                self.cluster_cidr
            );
        }
        if self.node_monitor_period.is_zero() {
            anyhow::bail!("--node-monitor-period must be positive");
        }
        Ok(Settings {
            node_monitor_period: self.node_monitor_period,
            node_monitor_grace_period: self.node_monitor_grace_period,
            node_eviction_rate: self.node_eviction_rate,
            secondary_node_eviction_rate: self.secondary_node_eviction_rate,
            unhealthy_zone_threshold: self.unhealthy_zone_threshold,
            large_cluster_size_threshold: self.large_cluster_size_threshold,
            cluster_cidr: self.cluster_cidr.clone(),
            node_cidr_mask_size: self.node_cidr_mask_size,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
            concurrent_replicaset_syncs: self.concurrent_replicaset_syncs,
            concurrent_deployment_syncs: self.concurrent_deployment_syncs,
        })
    }
}
