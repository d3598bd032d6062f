//! The controller manager: level-triggered kube-rs Controllers that act through the API like
//! any other client, so each can run inside `capstan server` or on its own.

pub mod cached_pod;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod events;
pub mod expectations;
pub mod fanout;
pub mod gc;
pub mod informer;
pub mod metrics;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod nodes;
pub mod ownership;
pub mod podgc;
pub mod pods;
pub mod replicaset;
pub mod resourcequota;
pub mod selector;
pub mod serviceaccount;
pub mod services;
pub mod settings;
#[cfg(test)]
mod testing;
pub mod workloads;

/// What a reconcile can fail with; the controller retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

pub use settings::Settings;

/// Runs every controller until the task running it is dropped. `ca_pem` is the cluster CA the
/// root CA publisher hands to every namespace.
pub async fn run(client: kube::Client, ca_pem: String, settings: Settings) {
    let (pods, pods_feed) = informer::Informer::<cached_pod::CachedPod>::new(
        kube::Api::all(client.clone()),
        kube::runtime::watcher::Config::default(),
        informer::pods_by_namespace_controller_and_node,
    );
    tokio::join!(
        pods_feed,
        services::run(client.clone(), pods.clone()),
        nodes::run(client.clone(), pods.clone(), settings.clone()),
        gc::run(client.clone()),
        workloads::run(client.clone(), pods.clone(), &settings),
        namespace::run(client.clone()),
        resourcequota::run(client.clone(), pods.clone()),
        serviceaccount::run(client, ca_pem)
    );
}
