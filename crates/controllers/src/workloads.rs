//! The workload controllers wired together: ReplicaSet, ReplicationController and Deployment,
//! sharing one informer per kind.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ReplicationController;
use kube::api::Api;
use kube::runtime::watcher;

use crate::cached_pod::CachedPod;
use crate::deployment;
use crate::events::EventRecorder;
use crate::informer::{Informer, by_namespace_and_controller};
use crate::metrics;
use crate::replicaset::{self, ReplicaKind};
use crate::settings::Settings;

/// Runs the workload controllers, with `pods` shared with the rest of the controller manager.
pub async fn run(client: kube::Client, pods: Informer<CachedPod>, settings: &Settings) {
    let (replica_sets, replica_sets_feed) = Informer::new(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (controllers, controllers_feed) = Informer::new(
        Api::<ReplicationController>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (deployments, deployments_feed) = Informer::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    // Each controller acts through its own counted client, as upstream gives each its own.
    let d_client = metrics::counted(client.clone(), deployment::CONTROLLER);
    let rs_client = metrics::counted(client.clone(), ReplicaSet::CONTROLLER);
    let rc_client = metrics::counted(client, ReplicationController::CONTROLLER);
    let (d_events, d_events_feed) = EventRecorder::new(d_client.clone(), deployment::CONTROLLER);
    let (rs_events, rs_events_feed) = EventRecorder::new(rs_client.clone(), ReplicaSet::CONTROLLER);
    let (rc_events, rc_events_feed) =
        EventRecorder::new(rc_client.clone(), ReplicationController::CONTROLLER);
    tokio::join!(
        replica_sets_feed,
        controllers_feed,
        rs_events_feed,
        rc_events_feed,
        deployments_feed,
        d_events_feed,
        deployment::run(
            d_client,
            deployments,
            replica_sets.clone(),
            pods.clone(),
            d_events,
            settings.concurrent_deployment_syncs,
        ),
        replicaset::run(
            rs_client,
            pods.clone(),
            replica_sets,
            rs_events,
            settings.concurrent_replicaset_syncs
        ),
        replicaset::run(
            rc_client,
            pods,
            controllers,
            rc_events,
            settings.concurrent_replicaset_syncs
        ),
    );
}
