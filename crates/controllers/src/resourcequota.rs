//! The resource quota controller: keeps each ResourceQuota's `status.hard` and `status.used`
//! current, so `kubectl describe quota` shows what the namespace uses. (Admission enforces the
//! quota itself; this controller only reports.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capstan_api::quantity::format_millis;
use capstan_api::quota::{self, Usage};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::informer::Informer;

/// Usage also changes through kinds not watched here; a periodic look catches those.
const RESYNC: Duration = Duration::from_secs(30);

pub struct Context {
    client: kube::Client,
}

/// What the namespace uses of everything a quota can limit.
async fn namespace_usage(client: &kube::Client, namespace: &str) -> Result<Usage, Error> {
    let mut usage = Usage::new();
    for resource in capstan_api::RESOURCES
        .iter()
        .filter(|r| r.namespaced && r.storage_plural.is_none() && r.has_verb("list"))
    {
        let api_resource = ApiResource {
            group: resource.group.into(),
            version: resource.version.into(),
            api_version: resource.api_version(),
            kind: resource.kind.into(),
            plural: resource.plural.into(),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &api_resource);
        for object in api.list(&ListParams::default()).await?.items {
            let value = serde_json::to_value(&object)?;
            quota::add(&mut usage, &quota::usage_of(resource, &value));
        }
    }
    Ok(usage)
}

pub async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = quota.metadata.namespace.clone().unwrap_or_default();
    let name = quota.metadata.name.clone().unwrap_or_default();
    let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let usage = namespace_usage(&ctx.client, &namespace).await?;
    let used: BTreeMap<String, Quantity> = hard
        .keys()
        .map(|key| (key.clone(), Quantity(format_millis(usage.get(key).copied().unwrap_or(0)))))
        .collect();
    let status = ResourceQuotaStatus { hard: Some(hard), used: Some(used) };
    if quota.status.as_ref() != Some(&status) {
        let mut updated = (*quota).clone();
        updated.status = Some(status);
        let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &namespace);
        api.replace_status(&name, &PostParams::default(), &updated).await?;
    }
    Ok(Action::requeue(RESYNC))
}

pub fn error_policy(_quota: Arc<ResourceQuota>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("resourcequota controller: {error}");
    Action::requeue(Duration::from_secs(5))
}

/// Runs until the task is dropped. `pods` is the controller manager's shared pod cache: a pod
/// coming, going or changing wakes the quotas of its namespace.
pub async fn run(client: kube::Client, pods: Informer<CachedPod>) {
    let quotas: Api<ResourceQuota> = Api::all(client.clone());
    let controller = Controller::new(quotas, watcher::Config::default());
    let store = controller.store();
    controller
        .watches_shared_stream(pods.touched(), move |pod| {
            let namespace = pod.metadata.namespace.clone();
            store
                .state()
                .into_iter()
                .filter(|q| q.metadata.namespace == namespace)
                .map(|q| ObjectRef::from_obj(&*q))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|_| futures::future::ready(()))
        .await;
}
