//! What the replica controller needs from its two kinds: apps/v1 ReplicaSet (label selector)
//! and v1 ReplicationController (map selector, defaulted from the template's labels).

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use kube::core::Selector;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::status::{ReplicaStatus, StatusCondition};
use crate::selector::LabelSelector;

/// A kind whose controller keeps `replicas` pods from a template running.
pub trait ReplicaKind:
    kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The event source and field manager, as upstream names it.
    const CONTROLLER: &'static str;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    /// `None` when the selector is missing, empty or invalid: such an object manages nothing.
    fn selector(&self) -> Option<LabelSelector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn status(&self) -> ReplicaStatus;
}

impl ReplicaKind for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn selector(&self) -> Option<LabelSelector> {
        let selector = self.spec.as_ref()?.selector.clone();
        LabelSelector::new(Selector::try_from(selector).ok()?)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn status(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else { return ReplicaStatus::default() };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| StatusCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}

impl ReplicaKind for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    fn selector(&self) -> Option<LabelSelector> {
        let spec = self.spec.as_ref()?;
        let labels = match spec.selector.as_ref().filter(|s| !s.is_empty()) {
            Some(selector) => selector.clone(),
            None => spec.template.as_ref()?.metadata.as_ref()?.labels.clone()?,
        };
        LabelSelector::new(labels.into_iter().collect())
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn status(&self) -> ReplicaStatus {
        let Some(s) = self.status.as_ref() else { return ReplicaStatus::default() };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c| StatusCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
                .collect(),
        }
    }
}
