//! The disruption controller: each PodDisruptionBudget's status (expected, current and desired
//! healthy pods, disruptions allowed), which the eviction subresource enforces.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use capstan_api::selector::LabelSelector;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::informer::Informer;

pub struct Context {
    pub client: kube::Client,
    pub pods: Informer<CachedPod>,
}

fn selector_of(pdb: &PodDisruptionBudget) -> Option<LabelSelector> {
    let selector = pdb.spec.as_ref()?.selector.as_ref()?;
    LabelSelector::from_label_selector_json(&serde_json::to_value(selector).ok()?).ok()
}

pub fn selected(pdb: &PodDisruptionBudget, pods: &[Arc<CachedPod>]) -> Vec<Arc<CachedPod>> {
    let Some(selector) = selector_of(pdb) else { return Vec::new() };
    pods.iter()
        .filter(|p| p.metadata.namespace == pdb.metadata.namespace)
        .filter(|p| selector.matches_with(|key| p.labels.get(key)))
        .cloned()
        .collect()
}

fn healthy(pod: &CachedPod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && crate::pods::is_ready(pod)
}

/// `value` of `total` (a count, or a percentage rounded up as upstream does).
pub fn scaled(value: &IntOrString, total: i32) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((percent * i64::from(total) + 99) / 100) as i32
        }
    }
}

/// (expected pods, desired healthy) for a budget over `pods`; `scale` is the replicas their
/// controllers want (upstream reads it for percentages and maxUnavailable).
pub fn budget(pdb: &PodDisruptionBudget, pods: usize, scale: i32) -> (i32, i32) {
    let spec = pdb.spec.clone().unwrap_or_default();
    let pods = i32::try_from(pods).unwrap_or(i32::MAX);
    match (spec.min_available, spec.max_unavailable) {
        (Some(IntOrString::Int(n)), _) => (pods, n),
        (Some(percent), _) => (scale, scaled(&percent, scale)),
        (None, Some(max)) => (scale, (scale - scaled(&max, scale)).max(0)),
        (None, None) => (pods, pods),
    }
}

/// The replicas the pods' controllers want (a ReplicaSet owned by a Deployment counts as the
/// Deployment); a pod without a controller counts as one.
async fn controller_scale(
    client: &kube::Client,
    namespace: &str,
    pods: &[Arc<CachedPod>],
) -> Result<i32, Error> {
    let mut owners: HashMap<String, OwnerReference> = HashMap::new();
    let mut loose = 0;
    for pod in pods {
        match crate::pods::controller_of(&pod.metadata) {
            Some(owner) => {
                owners.insert(owner.uid.clone(), owner.clone());
            }
            None => loose += 1,
        }
    }
    let mut total = loose;
    for owner in owners.values() {
        let mut owner = owner.clone();
        // Follow a ReplicaSet up to its Deployment.
        for _ in 0..2 {
            let Some(object) = get_owner(client, namespace, &owner).await? else { break };
            match crate::pods::controller_of(&object.metadata) {
                Some(parent) if parent.kind == "Deployment" && owner.kind == "ReplicaSet" => {
                    owner = parent.clone()
                }
                _ => {
                    total += object.data["spec"]["replicas"].as_i64().unwrap_or(1) as i32;
                    break;
                }
            }
        }
    }
    Ok(total)
}

async fn get_owner(
    client: &kube::Client,
    namespace: &str,
    owner: &OwnerReference,
) -> Result<Option<DynamicObject>, Error> {
    let (group, version) = owner.api_version.split_once('/').unwrap_or(("", &owner.api_version));
    let Some(resource) = capstan_api::registry::find_kind(group, version, &owner.kind) else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::gc::metadata::api_resource(resource),
    );
    let object = api.get_opt(&owner.name).await?;
    Ok(object.filter(|o| o.metadata.uid.as_deref() == Some(&owner.uid)))
}

pub fn status(
    pdb: &PodDisruptionBudget,
    expected: i32,
    desired: i32,
    current: i32,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let allowed = (current - desired).max(0);
    let (condition_status, reason) =
        if allowed > 0 { ("True", "SufficientPods") } else { ("False", "InsufficientPods") };
    let old = pdb
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let transition = match old {
        Some(c) if c.status == condition_status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    PodDisruptionBudgetStatus {
        observed_generation: pdb.metadata.generation,
        disruptions_allowed: allowed,
        current_healthy: current,
        desired_healthy: desired,
        expected_pods: expected,
        disrupted_pods: Some(BTreeMap::new()),
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: condition_status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: transition,
            observed_generation: pdb.metadata.generation,
        }]),
    }
}

pub async fn reconcile(pdb: Arc<PodDisruptionBudget>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = pdb.metadata.namespace.clone().unwrap_or_default();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let pods = selected(&pdb, &ctx.pods.store().state());
    let needs_scale = pdb.spec.as_ref().is_some_and(|s| {
        !matches!(s.min_available, Some(IntOrString::Int(_)))
            && (s.min_available.is_some() || s.max_unavailable.is_some())
    });
    let scale =
        if needs_scale { controller_scale(&ctx.client, &namespace, &pods).await? } else { 0 };
    let (expected, desired) = budget(&pdb, pods.len(), scale);
    let current = pods.iter().filter(|p| healthy(p)).count() as i32;
    let new = status(&pdb, expected, desired, current, Timestamp::now());
    if pdb.status.as_ref() == Some(&new) {
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let mut updated = (*pdb).clone();
    updated.status = Some(new);
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.replace_status(&name, &PostParams::default(), &updated).await {
        Ok(_) => Ok(Action::requeue(Duration::from_secs(30))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

pub fn error_policy(_pdb: Arc<PodDisruptionBudget>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("disruption controller: {error}");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<CachedPod>,
) {
    pdbs.wait_until_ready().await;
    pods.wait_until_ready().await;
    let pdb_store = pdbs.store();
    let ctx = Arc::new(Context { client, pods: pods.clone() });
    Controller::for_shared_stream(pdbs.touched(), pdbs.store())
        .watches_shared_stream(pods.touched(), move |pod| {
            pdb_store
                .state()
                .into_iter()
                .filter(|pdb| !selected(pdb, std::slice::from_ref(&pod)).is_empty())
                .map(|pdb| ObjectRef::from_obj(&*pdb))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": "b", "namespace": "default", "generation": 2}, "spec": spec})).unwrap()
    }

    #[test]
    fn budgets_as_upstream_computes_them() {
        assert_eq!(budget(&pdb(json!({"minAvailable": 2})), 3, 0), (3, 2));
        assert_eq!(budget(&pdb(json!({"minAvailable": "50%"})), 3, 3), (3, 2));
        assert_eq!(budget(&pdb(json!({"maxUnavailable": 1})), 3, 4), (4, 3));
        assert_eq!(budget(&pdb(json!({"maxUnavailable": "30%"})), 3, 10), (10, 7));
    }

    #[test]
    fn disruptions_allowed_is_the_healthy_surplus() {
        let b = pdb(json!({"minAvailable": 2}));
        let s = status(&b, 3, 2, 3, Timestamp::now());
        assert_eq!(
            (s.disruptions_allowed, s.current_healthy, s.desired_healthy, s.expected_pods),
            (1, 3, 2, 3)
        );
        assert_eq!(s.conditions.unwrap()[0].reason, "SufficientPods");
        let s = status(&b, 3, 2, 1, Timestamp::now());
        assert_eq!(s.disruptions_allowed, 0);
        assert_eq!(s.conditions.unwrap()[0].status, "False");
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn the_selector_picks_pods_of_the_namespace() {
        let b = pdb(json!({"selector": {"matchLabels": {"app": "web"}}}));
        let pod = |ns: &str, app: &str| -> Arc<CachedPod> {
            Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"name": "p", "namespace": ns, "labels": {"app": app}}}),
                )
                .unwrap(),
            )
        };
        let pods = [pod("default", "web"), pod("other", "web"), pod("default", "db")];
        assert_eq!(selected(&b, &pods).len(), 1);
    }
}
