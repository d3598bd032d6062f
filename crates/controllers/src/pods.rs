//! Pod facts controllers share: active, ready, available (after minReadySeconds), and the order
//! in which a controller with too many pods deletes them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::cached_pod::CachedPod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Lower deletes first (upstream's `controller.kubernetes.io/pod-deletion-cost`).
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Neither finished nor being deleted: counts towards a controller's replicas.
pub fn is_active(pod: &CachedPod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// When the pod's Ready condition became True, if it is True.
pub fn ready_since(pod: &CachedPod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then(|| ready.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &CachedPod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &CachedPod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// The controller ownerReference of `object`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// A controller ownerReference to `owner`, as upstream's controllers set it.
pub fn controller_ref<K: kube::Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A new pod from `template`, named `<prefix>-<random>` by the API server.
pub fn from_template(template: &PodTemplateSpec, prefix: &str, owner: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// True when every label of the template is on the pod (upstream's fullyLabeledReplicas).
pub fn fully_labeled(pod: &CachedPod, template_labels: &BTreeMap<String, String>) -> bool {
    template_labels.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
}

/// A pod with what deletion ranking needs: `co_located` is how many related pods share its node.
pub struct Ranked<'a> {
    pub pod: &'a CachedPod,
    pub co_located: usize,
}

fn phase_rank(pod: &CachedPod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &CachedPod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn restarts(pod: &CachedPod) -> i32 {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.map(|s| s.iter().map(|c| c.restart_count).max().unwrap_or(0)).unwrap_or(0)
}

/// Upstream's ActivePodsWithRanks order: `Less` means `a` is deleted before `b`. Unscheduled,
/// then pending, not ready, cheaper, doubled-up, recently ready, restarting, and newer pods go
/// first.
pub fn deletion_order(a: &Ranked, b: &Ranked) -> Ordering {
    let assigned = |p: &CachedPod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    let created = |p: &CachedPod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a.pod)
        .cmp(&assigned(b.pod))
        .then_with(|| phase_rank(a.pod).cmp(&phase_rank(b.pod)))
        .then_with(|| is_ready(a.pod).cmp(&is_ready(b.pod)))
        .then_with(|| deletion_cost(a.pod).cmp(&deletion_cost(b.pod)))
        .then_with(|| b.co_located.cmp(&a.co_located))
        .then_with(|| match (ready_since(a.pod).flatten(), ready_since(b.pod).flatten()) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b.pod).cmp(&restarts(a.pod)))
        .then_with(|| match (created(a.pod), created(b.pod)) {
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (x, y) => y.cmp(&x),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created_s: i64) -> CachedPod {
        CachedPod::from(&Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created_s).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec { node_name: node.map(Into::into), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(Timestamp::from_second(created_s).unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn order(pods: &[CachedPod]) -> Vec<String> {
        let mut ranked: Vec<Ranked> =
            pods.iter().map(|pod| Ranked { pod, co_located: 0 }).collect();
        ranked.sort_by(deletion_order);
        ranked.iter().map(|r| r.pod.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn surplus_deletion_prefers_unscheduled_then_pending_then_not_ready_then_newest() {
        let pods = [
            pod("running-old", Some("n1"), "Running", true, 100),
            pod("running-new", Some("n1"), "Running", true, 200),
            pod("not-ready", Some("n1"), "Running", false, 50),
            pod("pending", Some("n1"), "Pending", false, 10),
            pod("unscheduled", None, "Pending", false, 5),
        ];
        assert_eq!(
            order(&pods),
            ["unscheduled", "pending", "not-ready", "running-new", "running-old"]
        );
    }

    #[test]
    fn doubled_up_pods_go_before_lonely_ones() {
        let a = pod("alone", Some("n1"), "Running", true, 100);
        let b = pod("crowded", Some("n2"), "Running", true, 100);
        let mut ranked = [Ranked { pod: &a, co_located: 1 }, Ranked { pod: &b, co_located: 3 }];
        ranked.sort_by(deletion_order);
        assert_eq!(ranked[0].pod.metadata.name.as_deref(), Some("crowded"));
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("p", Some("n1"), "Running", true, 1000);
        let at = |s| Timestamp::from_second(s).unwrap();
        assert!(is_available(&p, 0, at(1000)));
        assert!(!is_available(&p, 10, at(1005)));
        assert!(is_available(&p, 10, at(1010)));
        assert!(!is_available(&pod("q", None, "Pending", false, 0), 0, at(5)));
    }
}
