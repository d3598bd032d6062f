//! The node controllers wired together: lifecycle (heartbeats, taints), taint-based eviction,
//! IPAM, pod GC and disruption budgets (what draining honours), sharing the node, Lease and
//! PodDisruptionBudget informers (and the pods with everyone else).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::watcher;

use crate::cached_pod::CachedPod;
use crate::events::EventRecorder;
use crate::informer::{Informer, by_namespace_and_controller};
use crate::nodeipam::Cidr;
use crate::nodelifecycle::{self, LEASE_NAMESPACE, taint_eviction};
use crate::settings::Settings;
use crate::{disruption, nodeipam, podgc};

pub async fn run(client: kube::Client, pods: Informer<CachedPod>, settings: Settings) {
    let (nodes, nodes_feed) = Informer::new(
        Api::<Node>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (leases, leases_feed) = Informer::new(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (pdbs, pdbs_feed) = Informer::new(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (node_events, node_events_feed) = EventRecorder::new(client.clone(), "node-controller");
    let (eviction_events, eviction_events_feed) =
        EventRecorder::new(client.clone(), "taint-eviction-controller");
    let ipam = async {
        match Cidr::parse(&settings.cluster_cidr) {
            Some(cidr) => {
                nodeipam::run(
                    client.clone(),
                    nodes.clone(),
                    cidr,
                    settings.node_cidr_mask_size,
                    node_events.clone(),
                )
                .await
            }
            None => tracing::error!(cidr = settings.cluster_cidr, "invalid cluster CIDR: no IPAM"),
        }
    };
    tokio::join!(
        nodes_feed,
        leases_feed,
        pdbs_feed,
        disruption::run(client.clone(), pdbs, pods.clone()),
        node_events_feed,
        eviction_events_feed,
        nodelifecycle::run(
            client.clone(),
            nodes.clone(),
            leases,
            pods.clone(),
            settings.clone(),
            node_events.clone(),
        ),
        taint_eviction::run(client.clone(), nodes.clone(), pods.clone(), eviction_events),
        ipam,
        podgc::run(client.clone(), pods, nodes.clone(), settings.terminated_pod_gc_threshold),
    );
}
