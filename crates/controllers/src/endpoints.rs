//! The endpoints controller: keeps each selector Service's Endpoints listing the ready and
//! not-ready addresses of the pods it selects, with each pod's resolved target ports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::informer::{Change, Informer};

/// Marks Endpoints this controller wrote, so it only ever deletes its own.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

pub struct Context {
    pub client: kube::Client,
    pub pods: Store<CachedPod>,
    pub endpoints: Store<Endpoints>,
}

/// The selector of a Service this controller manages; `None` for one the user manages.
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

pub fn selects(selector: &BTreeMap<String, String>, pod: &CachedPod) -> bool {
    selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
}

pub fn is_ready(pod: &CachedPod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's IP, for a pod that can serve (has an IP, has not finished).
pub fn serving_ip(pod: &CachedPod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    status.pod_ip.clone().filter(|ip| !ip.is_empty())
}

/// The selected pods of a Service's namespace, by name (a stable order).
pub fn selected_pods(service: &Service, pods: &Store<CachedPod>) -> Vec<Arc<CachedPod>> {
    let Some(selector) = selector(service) else { return Vec::new() };
    let namespace = service.metadata.namespace.as_deref();
    let mut selected: Vec<Arc<CachedPod>> = pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == namespace && selects(selector, p))
        .collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    selected
}

/// The container port a Service port reaches on one pod; `None` when a named target port
/// names no port of this pod.
pub fn target_port(port: &ServicePort, pod: &CachedPod) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            pod.spec.as_ref()?.containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(
                |p| {
                    (p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                },
            )
        }
    }
}

pub fn pod_reference(pod: &CachedPod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The labels of the objects that describe a Service's endpoints: the Service's own, plus
/// the headless marker.
pub fn endpoint_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The subsets a Service's Endpoints should hold: pods grouped by their resolved ports.
pub fn desired_subsets(service: &Service, pods: &[Arc<CachedPod>]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    let headless_without_ports = service_ports.is_empty() && is_headless(service);
    let mut groups: Vec<(Vec<EndpointPort>, Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        Vec::new();
    for pod in pods {
        let Some(ip) = serving_ip(pod) else { continue };
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if terminating && !publish_not_ready {
            continue;
        }
        let ports: Vec<EndpointPort> = service_ports
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: p.name.clone(),
                    port: target_port(p, pod)?,
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && !headless_without_ports {
            continue;
        }
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
            ..Default::default()
        };
        let index = match groups.iter().position(|(p, _, _)| *p == ports) {
            Some(i) => i,
            None => {
                groups.push((ports, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        if publish_not_ready || is_ready(pod) {
            groups[index].1.push(address);
        } else {
            groups[index].2.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    if selector(&service).is_none() {
        return Ok(Action::await_change());
    }
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let subsets = desired_subsets(&service, &selected_pods(&service, &ctx.pods));
    let labels = endpoint_labels(&service);
    let existing = ctx.endpoints.get(&ObjectRef::new(&name).within(&namespace));
    let unchanged = existing.as_ref().is_some_and(|e| {
        e.subsets.clone().unwrap_or_default() == subsets
            && e.metadata.labels.clone().unwrap_or_default() == labels
    });
    if unchanged {
        return Ok(Action::await_change());
    }
    let mut annotations =
        existing.as_ref().and_then(|e| e.metadata.annotations.clone()).unwrap_or_default();
    annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), now());
    let endpoints = Endpoints {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            resource_version: existing.as_ref().and_then(|e| e.metadata.resource_version.clone()),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = match existing {
        Some(_) => api.replace(&name, &PostParams::default(), &endpoints).await.map(|_| ()),
        None => api.create(&PostParams::default(), &endpoints).await.map(|_| ()),
    };
    match result {
        Ok(()) => Ok(Action::await_change()),
        // The namespace is going away.
        Err(kube::Error::Api(s))
            if s.code == 403 && service.metadata.deletion_timestamp.is_some() =>
        {
            Ok(Action::await_change())
        }
        Err(e) => Err(e.into()),
    }
}

pub fn error_policy(_service: Arc<Service>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("endpoints controller: {error}");
    Action::requeue(Duration::from_secs(2))
}

/// The Services a pod (as it is now, or as it was before a change) is selected by.
pub fn services_of_pod(pod: &CachedPod, services: &Store<Service>) -> Vec<ObjectRef<Service>> {
    services
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace)
        .filter(|s| selector(s).is_some_and(|sel| selects(sel, pod)))
        .map(|s| ObjectRef::from_obj(&*s))
        .collect()
}

/// Endpoints left behind by a deleted Service go with it (only those this controller wrote).
async fn delete_leftovers(ctx: Arc<Context>, services: Informer<Service>) {
    let mut changes = std::pin::pin!(services.subscribe());
    while let Some(change) = changes.next().await {
        let Change::Deleted(service) = change else { continue };
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let Some(endpoints) = ctx.endpoints.get(&ObjectRef::new(&name).within(&namespace)) else {
            continue;
        };
        let ours = endpoints
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LAST_CHANGE_TRIGGER_TIME));
        if ours {
            let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
            if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
                tracing::debug!("deleting endpoints {namespace}/{name}: {e}");
            }
        }
    }
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<CachedPod>,
    endpoints: Informer<Endpoints>,
) {
    pods.wait_until_ready().await;
    endpoints.wait_until_ready().await;
    services.wait_until_ready().await;
    let ctx = Arc::new(Context { client, pods: pods.store(), endpoints: endpoints.store() });
    let service_store = services.store();
    let controller = Controller::for_shared_stream(services.touched(), services.store())
        .watches_shared_stream(pods.touched(), move |pod| services_of_pod(&pod, &service_store))
        .watches_shared_stream(endpoints.touched(), |e| {
            let namespace = e.metadata.namespace.clone().unwrap_or_default();
            e.metadata.name.clone().map(|n| ObjectRef::<Service>::new(&n).within(&namespace))
        })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    tokio::join!(controller, delete_leftovers(ctx, services));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeApi, store};

    use serde_json::json;

    fn pod(name: &str, ip: &str, ready: bool, port: i32) -> CachedPod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    fn service(extra: serde_json::Value) -> Service {
        let mut spec = json!({"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn context(fake: &FakeApi, pods: Vec<CachedPod>, endpoints: Vec<Endpoints>) -> Arc<Context> {
        Arc::new(Context { client: fake.client(), pods: store(pods), endpoints: store(endpoints) })
    }

    #[tokio::test]
    async fn reconcile_writes_ready_and_not_ready_addresses_with_ports_resolved_per_pod() {
        let fake = FakeApi::default();
        let pods = vec![pod("a", "10.42.0.2", true, 8080), pod("b", "10.42.0.3", false, 9090)];
        reconcile(Arc::new(service(json!({}))), context(&fake, pods, vec![])).await.unwrap();
        let requests = fake.calls();
        assert_eq!(fake.writes(), ["POST /api/v1/namespaces/default/endpoints"]);
        let subsets = &requests[0].body["subsets"];
        assert_eq!(subsets[0]["addresses"][0]["ip"], "10.42.0.2");
        assert_eq!(subsets[0]["ports"][0]["port"], 8080);
        assert_eq!(subsets[1]["notReadyAddresses"][0]["ip"], "10.42.0.3");
        assert_eq!(subsets[1]["ports"][0]["port"], 9090);
        assert_eq!(subsets[1]["notReadyAddresses"][0]["targetRef"]["name"], "b");
    }

    #[tokio::test]
    async fn endpoints_already_right_are_not_written_again() {
        let fake = FakeApi::default();
        let pods = vec![pod("a", "10.42.0.2", true, 8080)];
        let svc = service(json!({}));
        let current = Endpoints {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            subsets: Some(desired_subsets(
                &svc,
                &pods.iter().cloned().map(Arc::new).collect::<Vec<_>>(),
            )),
        };
        reconcile(Arc::new(svc), context(&fake, pods, vec![current])).await.unwrap();
        assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    }

    #[tokio::test]
    async fn publish_not_ready_addresses_and_selectorless_services() {
        let fake = FakeApi::default();
        let pods = vec![pod("a", "10.42.0.2", false, 8080)];
        let svc = service(json!({"publishNotReadyAddresses": true}));
        reconcile(Arc::new(svc), context(&fake, pods.clone(), vec![])).await.unwrap();
        assert_eq!(fake.calls()[0].body["subsets"][0]["addresses"][0]["ip"], "10.42.0.2");

        let fake = FakeApi::default();
        let mut manual = service(json!({}));
        manual.spec.as_mut().unwrap().selector = None;
        reconcile(Arc::new(manual), context(&fake, pods, vec![])).await.unwrap();
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn a_named_port_the_pod_lacks_leaves_the_pod_out() {
        let mut other = pod("a", "10.42.0.2", true, 8080);
        other.spec.as_mut().unwrap().containers[0].ports.as_mut().unwrap()[0].name =
            Some("metrics".into());
        assert!(desired_subsets(&service(json!({})), &[Arc::new(other)]).is_empty());
    }
}
