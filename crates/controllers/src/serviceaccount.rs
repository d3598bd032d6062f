//! Per-namespace essentials: the `default` ServiceAccount (the serviceaccounts controller) and
//! the `kube-root-ca.crt` ConfigMap with the cluster CA (the root CA publisher), re-created if
//! deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::Error;

const ACCOUNT: &str = "default";
const ROOT_CA: &str = "kube-root-ca.crt";

pub struct Context {
    client: kube::Client,
    /// The cluster CA in PEM, published to every namespace.
    ca_pem: String,
}

/// Creates `object` unless it exists (a conflict means someone else just did).
async fn ensure<K>(api: Api<K>, name: &str, object: K) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    if api.get_opt(name).await?.is_some() {
        return Ok(());
    }
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        // The namespace is going away: nothing to do.
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let meta = |object: &str| ObjectMeta {
        name: Some(object.into()),
        namespace: Some(name.clone()),
        ..Default::default()
    };
    let account = ServiceAccount { metadata: meta(ACCOUNT), ..Default::default() };
    ensure(Api::namespaced(ctx.client.clone(), &name), ACCOUNT, account).await?;
    let ca = ConfigMap {
        metadata: meta(ROOT_CA),
        data: Some(BTreeMap::from([("ca.crt".to_owned(), ctx.ca_pem.clone())])),
        ..Default::default()
    };
    ensure(Api::namespaced(ctx.client.clone(), &name), ROOT_CA, ca).await?;
    Ok(Action::await_change())
}

pub fn error_policy(_namespace: Arc<Namespace>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("serviceaccount controller: {error}");
    Action::requeue(Duration::from_secs(5))
}

fn namespace_of<K: kube::Resource>(object: K) -> Option<ObjectRef<Namespace>> {
    object.meta().namespace.clone().map(|ns| ObjectRef::new(&ns))
}

/// Runs until the task is dropped.
pub async fn run(client: kube::Client, ca_pem: String) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let configmaps: Api<ConfigMap> = Api::all(client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            accounts,
            watcher::Config::default().fields(&format!("metadata.name={ACCOUNT}")),
            namespace_of,
        )
        .watches(
            configmaps,
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA}")),
            namespace_of,
        )
        .run(reconcile, error_policy, Arc::new(Context { client, ca_pem }))
        .for_each(|_| futures::future::ready(()))
        .await;
}
