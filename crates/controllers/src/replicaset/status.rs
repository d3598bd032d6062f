//! A ReplicaSet's or ReplicationController's status (the two have the same shape), computed
//! from its pods, and the merge patch that writes it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::cached_pod::CachedPod;
use crate::pods::{fully_labeled, is_available, is_ready};

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

#[derive(Debug, Clone, PartialEq)]
pub struct StatusCondition {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

/// Status with upstream's omitted-when-zero fields read as zero.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
    pub conditions: Vec<StatusCondition>,
}

impl ReplicaStatus {
    /// Counts over the controller's active pods; `failure` is why creating pods failed, if it
    /// did (the ReplicaFailure condition), carried over from `previous` when it already said so.
    pub fn calculate(
        pods: &[&CachedPod],
        template_labels: &BTreeMap<String, String>,
        min_ready_seconds: i32,
        generation: i64,
        previous: &ReplicaStatus,
        failure: Option<String>,
        now: Timestamp,
    ) -> Self {
        let mut conditions: Vec<StatusCondition> =
            previous.conditions.iter().filter(|c| c.type_ != REPLICA_FAILURE).cloned().collect();
        if let Some(message) = failure {
            let old = previous.conditions.iter().find(|c| c.type_ == REPLICA_FAILURE);
            conditions.push(StatusCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                message: Some(message),
                last_transition_time: old
                    .and_then(|c| c.last_transition_time.clone())
                    .or(Some(Time(now))),
            });
        }
        let count = |f: &dyn Fn(&CachedPod) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
        Self {
            replicas: pods.len() as i32,
            fully_labeled_replicas: count(&|p| fully_labeled(p, template_labels)),
            ready_replicas: count(&is_ready),
            available_replicas: count(&|p| is_available(p, min_ready_seconds, now)),
            observed_generation: generation,
            conditions,
        }
    }

    /// The body of a merge patch on the status subresource; zero counts are omitted as
    /// upstream omits them (null removes them).
    pub fn patch(&self) -> Value {
        let omit_zero = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                let mut condition = json!({
                    "type": c.type_, "status": c.status, "reason": c.reason,
                    "message": c.message, "lastTransitionTime": c.last_transition_time,
                });
                if let Some(fields) = condition.as_object_mut() {
                    fields.retain(|_, v| !v.is_null());
                }
                condition
            })
            .collect();
        json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": omit_zero(self.fully_labeled_replicas),
            "readyReplicas": omit_zero(self.ready_replicas),
            "availableReplicas": omit_zero(self.available_replicas),
            "observedGeneration": self.observed_generation,
            "conditions": if conditions.is_empty() { Value::Null } else { json!(conditions) },
        }})
    }
}
