//! The namespace controller: when a namespace is being deleted, delete everything in it, report
//! what is left in its status conditions as upstream does, then remove the `kubernetes`
//! finalizer so the API server can remove the namespace itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capstan_api::RESOURCES;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use serde_json::json;

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

/// What one pass over a terminating namespace found, for its status conditions.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    /// `<resource> has <n> resource instances`, for each kind with objects left.
    pub remaining: Vec<String>,
    /// Finalizer name → objects still carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Deletions or lists that failed.
    pub errors: Vec<String>,
}

const CONDITION_TYPES: [&str; 5] = [
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

impl Pass {
    /// The (status, reason, message) of each condition type, worded as upstream's deleter.
    fn condition(&self, kind: &str) -> (&'static str, &'static str, String) {
        match kind {
            "NamespaceDeletionContentFailure" if !self.errors.is_empty() => (
                "True",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    self.errors.len(),
                    self.errors.join(", ")
                ),
            ),
            "NamespaceDeletionContentFailure" => (
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            ),
            "NamespaceContentRemaining" if !self.remaining.is_empty() => (
                "True",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", self.remaining.join(", ")),
            ),
            "NamespaceContentRemaining" => {
                ("False", "ContentRemoved", "All content successfully removed".into())
            }
            "NamespaceFinalizersRemaining" if !self.finalizers.is_empty() => (
                "True",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    self.finalizers
                        .iter()
                        .map(|(f, n)| format!("{f} in {n} resource instances"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            "NamespaceFinalizersRemaining" => (
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            ),
            "NamespaceDeletionGroupVersionParsingFailure" => {
                ("False", "ParsedGroupVersions", "All legacy kube types successfully parsed".into())
            }
            // The served kinds come from the built-in table: discovery cannot fail.
            _ => ("False", "ResourcesDiscovered", "All resources successfully discovered".into()),
        }
    }

    /// `existing` with every deleter condition set from this pass; a condition keeps its
    /// transition time while its status and message stay the same.
    pub fn conditions(
        &self,
        existing: &[NamespaceCondition],
        now: Time,
    ) -> Vec<NamespaceCondition> {
        let mut conditions = existing.to_vec();
        for kind in CONDITION_TYPES {
            let (status, reason, message) = self.condition(kind);
            let new = NamespaceCondition {
                type_: kind.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(now.clone()),
            };
            match conditions.iter_mut().find(|c| c.type_ == kind) {
                Some(old) if old.status == new.status && old.message == new.message => {}
                Some(old) => *old = new,
                None => conditions.push(new),
            }
        }
        conditions
    }
}

/// Deletes every namespaced object in `namespace` and says what is left.
async fn delete_content(client: &kube::Client, namespace: &str) -> Pass {
    let mut pass = Pass::default();
    for resource in namespaced_resources() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let group_resource = match resource.group.as_str() {
            "" => resource.plural.clone(),
            group => format!("{}.{group}", resource.plural),
        };
        if let Err(e) =
            api.delete_collection(&DeleteParams::background(), &ListParams::default()).await
        {
            pass.errors.push(format!("{group_resource}: {e}"));
        }
        let left = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                pass.errors.push(format!("{group_resource}: {e}"));
                continue;
            }
        };
        if left.is_empty() {
            continue;
        }
        pass.remaining.push(format!("{group_resource} has {} resource instances", left.len()));
        for object in &left {
            for finalizer in object.metadata.finalizers.iter().flatten() {
                *pass.finalizers.entry(finalizer.clone()).or_insert(0) += 1;
            }
        }
    }
    pass
}

pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let terminating = namespace.metadata.deletion_timestamp.is_some();
    let finalizers = namespace.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
    if !terminating || !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let pass = delete_content(&ctx.client, &name).await;
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let existing = namespace.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let conditions = pass.conditions(&existing, Time(Timestamp::now()));
    if conditions != existing {
        let patch = json!({"status": {"conditions": conditions}});
        match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        }
    }
    if !pass.errors.is_empty() || !pass.remaining.is_empty() {
        // Objects with finalizers or pods still terminating: look again shortly.
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let mut finalized = (*namespace).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn find<'a>(conditions: &'a [NamespaceCondition], kind: &str) -> &'a NamespaceCondition {
        conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn remaining_content_and_finalizers_show_in_conditions_worded_as_upstream() {
        let pass = Pass {
            remaining: vec!["pods has 2 resource instances".into()],
            finalizers: BTreeMap::from([("example.com/keep".into(), 2)]),
            errors: Vec::new(),
        };
        let conditions = pass.conditions(&[], at(1));
        assert_eq!(conditions.len(), 5);
        let remaining = find(&conditions, "NamespaceContentRemaining");
        assert_eq!(
            (remaining.status.as_str(), remaining.reason.as_deref(), remaining.message.as_deref()),
            (
                "True",
                Some("SomeResourcesRemain"),
                Some("Some resources are remaining: pods has 2 resource instances")
            )
        );
        let finalizers = find(&conditions, "NamespaceFinalizersRemaining");
        assert_eq!(finalizers.reason.as_deref(), Some("SomeFinalizersRemain"));
        assert_eq!(
            finalizers.message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/keep in 2 resource instances"
            )
        );
        let content = find(&conditions, "NamespaceDeletionContentFailure");
        assert_eq!(
            (content.status.as_str(), content.reason.as_deref()),
            ("False", Some("ContentDeleted"))
        );
        let discovery = find(&conditions, "NamespaceDeletionDiscoveryFailure");
        assert_eq!(discovery.reason.as_deref(), Some("ResourcesDiscovered"));

        // The same findings later keep their transition times; cleared ones turn False anew.
        let again = pass.conditions(&conditions, at(2));
        assert_eq!(again, conditions);
        let done = Pass::default().conditions(&again, at(3));
        let remaining = find(&done, "NamespaceContentRemaining");
        assert_eq!(
            (remaining.status.as_str(), remaining.reason.as_deref()),
            ("False", Some("ContentRemoved"))
        );
        assert_eq!(remaining.last_transition_time, Some(at(3)));
        assert_eq!(
            find(&done, "NamespaceDeletionDiscoveryFailure").last_transition_time,
            Some(at(1))
        );
    }

    #[test]
    fn failed_deletions_are_reported_as_a_content_failure() {
        let pass = Pass { errors: vec!["pods: boom".into()], ..Pass::default() };
        let conditions = pass.conditions(&[], at(1));
        let failure = find(&conditions, "NamespaceDeletionContentFailure");
        assert_eq!(
            (failure.status.as_str(), failure.reason.as_deref(), failure.message.as_deref()),
            (
                "True",
                Some("ContentDeletionFailed"),
                Some("Failed to delete all resource types, 1 remaining: pods: boom")
            )
        );
    }
}
