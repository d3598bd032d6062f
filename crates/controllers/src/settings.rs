//! Settings of the node lifecycle, IPAM, pod GC and workload controllers, with upstream's defaults
//! (the binary's flags of the same names fill them in).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a quiet node's health is looked at again (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// A node whose heartbeat is older than this is unreachable (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// Nodes tainted for eviction per second in a healthy zone (`--node-eviction-rate`).
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted large zone (`--secondary-node-eviction-rate`).
    pub secondary_node_eviction_rate: f64,
    /// Share of not-ready nodes above which a zone is partially disrupted.
    pub unhealthy_zone_threshold: f64,
    /// Zones of at most this many nodes stop evicting when partially disrupted.
    pub large_cluster_size_threshold: usize,
    /// Where nodes' pod CIDRs come from (`--cluster-cidr`).
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Finished pods kept before the oldest are deleted (`--terminated-pod-gc-threshold`).
    pub terminated_pod_gc_threshold: usize,
    /// ReplicaSets (and ReplicationControllers) synced at once (`--concurrent-replicaset-syncs`).
    pub concurrent_replicaset_syncs: u16,
    /// Deployments synced at once (`--concurrent-deployment-syncs`).
    pub concurrent_deployment_syncs: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_size_threshold: 50,
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            terminated_pod_gc_threshold: 12500,
            concurrent_replicaset_syncs: 5,
            concurrent_deployment_syncs: 5,
        }
    }
}
