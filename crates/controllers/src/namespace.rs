//! The namespace controller: when a namespace is being deleted, delete everything in it, then
//! remove the `kubernetes` finalizer so the API server can remove the namespace itself.

use std::sync::Arc;
use std::time::Duration;

use capstan_api::RESOURCES;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::Error;

/// The finalizer the API server puts on every namespace; this controller owns it.
const FINALIZER: &str = "kubernetes";

pub struct Context {
    client: kube::Client,
}

/// The namespaced resources that can be deleted by collection, as the API serves them.
fn namespaced_resources() -> impl Iterator<Item = ApiResource> {
    RESOURCES
        .iter()
        // events.k8s.io events share storage with core events: deleting one set deletes both.
        .filter(|r| r.namespaced && r.has_verb("deletecollection") && r.storage_plural.is_none())
        .map(|r| ApiResource {
            group: r.group.into(),
            version: r.version.into(),
            api_version: r.api_version(),
            kind: r.kind.into(),
            plural: r.plural.into(),
        })
}

pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let terminating = namespace.metadata.deletion_timestamp.is_some();
    let finalizers = namespace.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if !terminating || !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let mut remaining = 0;
    for resource in namespaced_resources() {
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &name, &resource);
        api.delete_collection(&DeleteParams::background(), &ListParams::default()).await?;
        remaining += api.list_metadata(&ListParams::default().limit(1)).await?.items.len();
    }
    if remaining > 0 {
        // Objects with finalizers or pods still terminating: look again shortly.
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let mut finalized = (*namespace).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    api.replace_subresource("finalize", &name, &PostParams::default(), &finalized).await?;
    tracing::info!(namespace = name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

pub fn error_policy(_namespace: Arc<Namespace>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("namespace controller: {error}");
    Action::requeue(Duration::from_secs(5))
}

/// Runs until the task is dropped.
pub async fn run(client: kube::Client) {
    let api: Api<Namespace> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|_| futures::future::ready(()))
        .await;
}
