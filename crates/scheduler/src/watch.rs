//! Watches nodes and pods through the API (kube-runtime watchers, relisting on 410 Gone) and
//! hands what changed to the scheduling thread; pods are parsed here, off that thread.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};

use crate::framework::PodInfo;
use crate::framework::types::{PdbInfo, PodKey};

/// What the scheduling thread learns from the watches and from its own bindings.
pub enum Input {
    NodeApplied(Box<Node>),
    NodeDeleted(String),
    /// A relist finished: nodes not named here are gone.
    NodesListed(HashSet<String>),
    PodApplied(PodUpdate),
    PodDeleted(PodKey),
    /// A relist finished: pods not named here are gone.
    PodsListed(HashSet<PodKey>),
    PdbApplied(String, PdbInfo),
    PdbDeleted(String),
    /// A relist finished: PodDisruptionBudgets not named here are gone.
    PdbsListed(HashSet<String>),
    /// A binding failed; `retry` unless the pod is gone or already bound.
    BindFailed {
        pod: Arc<PodInfo>,
        attempts: u32,
        retry: bool,
    },
}

pub struct PodUpdate {
    pub pod: Arc<PodInfo>,
    /// The node it is bound to, if any.
    pub node: Option<String>,
    /// Whether it names this scheduler.
    pub ours: bool,
}

fn pod_update(pod: &Pod, scheduler_name: &str) -> PodUpdate {
    let spec = pod.spec.as_ref();
    PodUpdate {
        pod: Arc::new(PodInfo::new(pod)),
        node: spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        ours: spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
            == scheduler_name,
    }
}

fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

pub async fn nodes(client: kube::Client, inputs: Sender<Input>) {
    let api: Api<Node> = Api::all(client);
    let mut listed: Option<HashSet<String>> = None;
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let input = match event {
            Ok(Event::Apply(node)) => Input::NodeApplied(Box::new(node)),
            Ok(Event::InitApply(node)) => {
                listed
                    .get_or_insert_default()
                    .insert(node.metadata.name.clone().unwrap_or_default());
                Input::NodeApplied(Box::new(node))
            }
            Ok(Event::Delete(node)) => Input::NodeDeleted(node.metadata.name.unwrap_or_default()),
            Ok(Event::Init) => {
                listed = Some(HashSet::new());
                continue;
            }
            Ok(Event::InitDone) => Input::NodesListed(listed.take().unwrap_or_default()),
            Err(error) => {
                tracing::warn!("scheduler: watching nodes: {error}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if inputs.send(input).is_err() {
            return;
        }
    }
}

pub async fn pods(client: kube::Client, scheduler_name: String, inputs: Sender<Input>) {
    let api: Api<Pod> = Api::all(client);
    // Finished pods hold no resources (upstream's scheduler filters them the same way).
    let config = watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    let mut listed: Option<HashSet<PodKey>> = None;
    let mut events = watcher::watcher(api, config).boxed();
    while let Some(event) = events.next().await {
        let input = match event {
            Ok(Event::Apply(pod)) => Input::PodApplied(pod_update(&pod, &scheduler_name)),
            Ok(Event::InitApply(pod)) => {
                listed.get_or_insert_default().insert(pod_key(&pod));
                Input::PodApplied(pod_update(&pod, &scheduler_name))
            }
            Ok(Event::Delete(pod)) => Input::PodDeleted(pod_key(&pod)),
            Ok(Event::Init) => {
                listed = Some(HashSet::new());
                continue;
            }
            Ok(Event::InitDone) => Input::PodsListed(listed.take().unwrap_or_default()),
            Err(error) => {
                tracing::warn!("scheduler: watching pods: {error}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if inputs.send(input).is_err() {
            return;
        }
    }
}

/// Watches PodDisruptionBudgets, which preemption weighs when it picks victims.
pub async fn pdbs(client: kube::Client, inputs: Sender<Input>) {
    let api: Api<PodDisruptionBudget> = Api::all(client);
    let key = |pdb: &PodDisruptionBudget| {
        format!(
            "{}/{}",
            pdb.metadata.namespace.as_deref().unwrap_or_default(),
            pdb.metadata.name.as_deref().unwrap_or_default()
        )
    };
    let mut listed: Option<HashSet<String>> = None;
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let input = match event {
            Ok(Event::Apply(pdb)) => Input::PdbApplied(key(&pdb), PdbInfo::new(&pdb)),
            Ok(Event::InitApply(pdb)) => {
                listed.get_or_insert_default().insert(key(&pdb));
                Input::PdbApplied(key(&pdb), PdbInfo::new(&pdb))
            }
            Ok(Event::Delete(pdb)) => Input::PdbDeleted(key(&pdb)),
            Ok(Event::Init) => {
                listed = Some(HashSet::new());
                continue;
            }
            Ok(Event::InitDone) => Input::PdbsListed(listed.take().unwrap_or_default()),
            Err(error) => {
                tracing::warn!("scheduler: watching PodDisruptionBudgets: {error}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if inputs.send(input).is_err() {
            return;
        }
    }
}
