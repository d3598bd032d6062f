//! The EndpointSlice controller: keeps each selector Service's EndpointSlices (at most 100
//! endpoints each, one set per resolved port mapping) listing its pods with their conditions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::endpoints::{
    endpoint_labels, is_ready, pod_reference, selected_pods, selector, serving_ip, target_port,
};
use crate::informer::Informer;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

pub struct Context {
    pub client: kube::Client,
    pub pods: Store<CachedPod>,
    pub slices: Store<EndpointSlice>,
}

/// What one slice should hold (everything the controller decides; names and versions aside).
#[derive(Debug, Clone, PartialEq)]
pub struct SliceContent {
    pub address_type: String,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

fn endpoint(pod: &CachedPod, ip: String, publish_not_ready: bool) -> Endpoint {
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let serving = publish_not_ready || is_ready(pod);
    Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(serving && (!terminating || publish_not_ready)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    }
}

/// The slices a Service should have: endpoints grouped by address type and resolved ports,
/// chunked to at most `MAX_ENDPOINTS_PER_SLICE`.
pub fn desired_slices(service: &Service, pods: &[Arc<CachedPod>]) -> Vec<SliceContent> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    let mut groups: Vec<SliceContent> = Vec::new();
    for pod in pods {
        let Some(ip) = serving_ip(pod) else { continue };
        let ports: Vec<EndpointPort> = service_ports
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(target_port(p, pod)?),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && !service_ports.is_empty() {
            continue;
        }
        let address_type = if ip.contains(':') { "IPv6" } else { "IPv4" }.to_owned();
        let endpoint = endpoint(pod, ip, publish_not_ready);
        match groups.iter_mut().find(|g| g.ports == ports && g.address_type == address_type) {
            Some(group) => group.endpoints.push(endpoint),
            None => groups.push(SliceContent { address_type, ports, endpoints: vec![endpoint] }),
        }
    }
    let mut slices = Vec::new();
    for group in groups {
        for chunk in group.endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push(SliceContent {
                address_type: group.address_type.clone(),
                ports: group.ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    slices
}

fn content_of(slice: &EndpointSlice) -> SliceContent {
    SliceContent {
        address_type: slice.address_type.clone(),
        ports: slice.ports.clone().unwrap_or_default(),
        endpoints: slice.endpoints.clone(),
    }
}

fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = endpoint_labels(service);
    labels.insert(SERVICE_NAME_LABEL.into(), service.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

fn owner(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The slices this controller keeps for a Service.
pub fn owned_slices(service: &Service, slices: &Store<EndpointSlice>) -> Vec<Arc<EndpointSlice>> {
    let mut owned: Vec<Arc<EndpointSlice>> = slices
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace == service.metadata.namespace)
        .filter(|s| {
            let labels = s.metadata.labels.clone().unwrap_or_default();
            labels.get(SERVICE_NAME_LABEL) == service.metadata.name.as_ref()
                && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
        })
        .collect();
    owned.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    owned
}

pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = owned_slices(&service, &ctx.slices);
    let desired = if selector(&service).is_some() {
        desired_slices(&service, &selected_pods(&service, &ctx.pods))
    } else {
        Vec::new()
    };
    let labels = slice_labels(&service);
    // Slices already right stay; the others are rewritten in place, then created or deleted.
    let mut unmatched: Vec<SliceContent> = Vec::new();
    let mut reusable: Vec<Arc<EndpointSlice>> = existing.clone();
    for content in desired {
        match reusable
            .iter()
            .position(|s| content_of(s) == content && s.metadata.labels.as_ref() == Some(&labels))
        {
            Some(i) => {
                reusable.remove(i);
            }
            None => unmatched.push(content),
        }
    }
    let mut reusable = reusable.into_iter();
    for content in unmatched {
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(namespace.clone()),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner(&service)]),
                ..Default::default()
            },
            address_type: content.address_type,
            endpoints: content.endpoints,
            ports: Some(content.ports),
        };
        match reusable.next() {
            Some(old) => {
                let mut slice = slice;
                slice.metadata.name = old.metadata.name.clone();
                slice.metadata.generate_name = old.metadata.generate_name.clone();
                slice.metadata.resource_version = old.metadata.resource_version.clone();
                let old_name = old.metadata.name.clone().unwrap_or_default();
                if old.address_type != slice.address_type {
                    // The address type of a slice cannot change: replace it.
                    delete_slice(&api, &old_name).await?;
                    slice.metadata.name = None;
                    slice.metadata.resource_version = None;
                    create_slice(&api, &slice, &service).await?;
                } else {
                    api.replace(&old_name, &PostParams::default(), &slice).await?;
                }
            }
            None => create_slice(&api, &slice, &service).await?,
        }
    }
    for surplus in reusable {
        delete_slice(&api, &surplus.metadata.name.clone().unwrap_or_default()).await?;
    }
    Ok(Action::await_change())
}

async fn create_slice(
    api: &Api<EndpointSlice>,
    slice: &EndpointSlice,
    service: &Service,
) -> Result<(), Error> {
    match api.create(&PostParams::default(), slice).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s))
            if s.code == 403 && service.metadata.deletion_timestamp.is_some() =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_slice(api: &Api<EndpointSlice>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn error_policy(_service: Arc<Service>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("endpointslice controller: {error}");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<CachedPod>,
    slices: Informer<EndpointSlice>,
) {
    pods.wait_until_ready().await;
    slices.wait_until_ready().await;
    services.wait_until_ready().await;
    let ctx = Arc::new(Context { client, pods: pods.store(), slices: slices.store() });
    let service_store = services.store();
    Controller::for_shared_stream(services.touched(), services.store())
        .watches_shared_stream(pods.touched(), move |pod| {
            crate::endpoints::services_of_pod(&pod, &service_store)
        })
        .watches_shared_stream(slices.touched(), |slice| {
            let namespace = slice.metadata.namespace.clone().unwrap_or_default();
            let labels = slice.metadata.labels.clone().unwrap_or_default();
            labels.get(SERVICE_NAME_LABEL).map(|n| ObjectRef::<Service>::new(n).within(&namespace))
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeApi, store};

    use serde_json::json;

    fn pod(i: usize, ready: bool, terminating: bool) -> Arc<CachedPod> {
        let mut meta =
            json!({"name": format!("p{i}"), "namespace": "default", "labels": {"app": "web"}});
        if terminating {
            meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "c"}]},
            "status": {"podIP": format!("10.42.{}.{}", i / 250, i % 250 + 1), "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        })).unwrap())
    }

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
        }))
        .unwrap()
    }

    #[test]
    fn slices_hold_at_most_a_hundred_endpoints() {
        let pods: Vec<Arc<CachedPod>> = (0..250).map(|i| pod(i, true, false)).collect();
        let slices = desired_slices(&service(), &pods);
        let sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(slices[0].ports[0].port, Some(8080));
    }

    #[test]
    fn terminating_pods_are_listed_as_terminating_and_not_ready() {
        let slices = desired_slices(&service(), &[pod(1, true, true), pod(2, false, false)]);
        let conditions: Vec<_> =
            slices[0].endpoints.iter().map(|e| e.conditions.clone().unwrap()).collect();
        assert_eq!(conditions[0].ready, Some(false));
        assert_eq!(conditions[0].serving, Some(true));
        assert_eq!(conditions[0].terminating, Some(true));
        assert_eq!(conditions[1].ready, Some(false));
        assert_eq!(conditions[1].serving, Some(false));
    }

    #[tokio::test]
    async fn reconcile_creates_a_labelled_owned_slice_and_deletes_surplus_ones() {
        let fake = FakeApi::default();
        let surplus = |name: &str| EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(slice_labels(&service())),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![],
            ports: None,
        };
        let pods: Vec<CachedPod> = vec![(*pod(1, true, false)).clone()];
        let ctx = Arc::new(Context {
            client: fake.client(),
            pods: store(pods),
            slices: store(vec![surplus("web-a"), surplus("web-b")]),
        });
        reconcile(Arc::new(service()), ctx).await.unwrap();
        assert_eq!(
            fake.writes(),
            [
                "PUT /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-a",
                "DELETE /apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-b"
            ]
        );
        let body = &fake.calls()[0].body;
        assert_eq!(body["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert_eq!(body["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
        assert_eq!(body["endpoints"][0]["addresses"][0], "10.42.0.2");
    }
}
