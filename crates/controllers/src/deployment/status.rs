//! Deployment status and conditions as upstream computes them and `kubectl rollout status`
//! reads them: replica counts over the ReplicaSets, Available and Progressing conditions.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::util::{deployment_fenceposts, replicas, rs_available, rs_replicas};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

pub fn condition(status: &DeploymentStatus, type_: &str) -> Option<DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_).cloned()
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Some(Time(Timestamp::now()));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: now.clone(),
        last_transition_time: now,
    }
}

/// Upstream's SetDeploymentCondition: unchanged if status and reason are the same; the
/// transition time is kept while the status stays.
pub fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

fn some_nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// Counts over all ReplicaSets, the Available condition, and `previous`'s other conditions.
pub fn calculate(
    d: &Deployment,
    all: &[ReplicaSet],
    new: Option<&ReplicaSet>,
    previous: &DeploymentStatus,
) -> DeploymentStatus {
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(f).sum::<i32>();
    let available = sum(&rs_available);
    let status_of =
        |rs: &ReplicaSet, f: &dyn Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> i32| {
            rs.status.as_ref().map(f).unwrap_or(0)
        };
    let total = sum(&rs_replicas);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: some_nonzero(sum(&|rs| status_of(rs, &|s| s.replicas))),
        updated_replicas: some_nonzero(new.map(|rs| status_of(rs, &|s| s.replicas)).unwrap_or(0)),
        ready_replicas: some_nonzero(sum(&|rs| status_of(rs, &|s| s.ready_replicas.unwrap_or(0)))),
        available_replicas: some_nonzero(available),
        unavailable_replicas: some_nonzero((total - available).max(0)),
        collision_count: previous.collision_count,
        conditions: previous.conditions.clone(),
        terminating_replicas: None,
    };
    let (_, max_unavailable) = deployment_fenceposts(d);
    if available >= replicas(d) - max_unavailable {
        let message = "Deployment has minimum availability.".to_owned();
        set_condition(
            &mut status,
            new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", message),
        );
    } else {
        let message = "Deployment does not have minimum availability.".to_owned();
        set_condition(
            &mut status,
            new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable", message),
        );
    }
    status
}

fn count(n: Option<i32>) -> i32 {
    n.unwrap_or(0)
}

/// Every replica updated and available, and this generation observed.
pub fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    count(status.updated_replicas) == want
        && count(status.replicas) == want
        && count(status.available_replicas) == want
        && status.observed_generation >= d.metadata.generation
}

/// Some progress since `old`: more updated, ready or available pods, or fewer old ones.
pub fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).filter(|s| *s != i32::MAX)
}

/// When the Progressing condition last moved, plus the deadline (None: no deadline applies).
pub fn deadline_at(d: &Deployment, status: &DeploymentStatus) -> Option<Timestamp> {
    let seconds = progress_deadline(d)?;
    let cond = condition(status, PROGRESSING)?;
    if cond.reason.as_deref() == Some(NEW_RS_AVAILABLE) || cond.reason.as_deref() == Some(TIMED_OUT)
    {
        return None;
    }
    let from = cond.last_update_time.as_ref()?.0;
    from.checked_add(SignedDuration::from_secs(i64::from(seconds))).ok()
}

pub fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if progress_deadline(d).is_none() {
        return false;
    }
    match condition(status, PROGRESSING) {
        Some(c) if c.reason.as_deref() == Some(TIMED_OUT) => true,
        _ => deadline_at(d, status).is_some_and(|at| now > at),
    }
}

/// A merge patch writing `status` whole: fields it leaves out are removed.
pub fn patch(status: &DeploymentStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        for key in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "collisionCount",
            "conditions",
        ] {
            fields.entry(key).or_insert(Value::Null);
        }
    }
    json!({ "status": value })
}
