//! The Service controllers wired together: Endpoints and EndpointSlices, sharing one informer
//! per kind (and the pods with the rest of the controller manager).

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;

use crate::cached_pod::CachedPod;
use crate::informer::{Informer, by_namespace_and_controller};
use crate::{endpoints, endpointslice};

pub async fn run(client: kube::Client, pods: Informer<CachedPod>) {
    let (services, services_feed) = Informer::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (endpoints, endpoints_feed) = Informer::new(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    let (slices, slices_feed) = Informer::new(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
        by_namespace_and_controller,
    );
    tokio::join!(
        services_feed,
        endpoints_feed,
        slices_feed,
        endpoints::run(client.clone(), services.clone(), pods.clone(), endpoints),
        endpointslice::run(client, services, pods, slices),
    );
}
