//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets
//! (RollingUpdate within maxSurge/maxUnavailable, or Recreate), scales them proportionally,
//! keeps revision history, and reports progress as `kubectl rollout status` reads it.

mod rolling;
mod status;
#[cfg(test)]
mod tests;
pub mod util;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::Selector;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::events::{EventRecorder, reference};
use crate::informer::{Change, Informer};
use crate::ownership::claim;
use crate::pods::{controller_of, controller_ref};
use crate::selector::LabelSelector;
use rolling::{Counts, new_rs_target, old_rs_targets};
use status::{
    NEW_RS_AVAILABLE, PAUSED, PROGRESSING, REPLICA_FAILURE, RESUMED, TIMED_OUT, condition,
    new_condition, remove_condition, set_condition,
};
use util::*;

pub const CONTROLLER: &str = "deployment-controller";

pub struct Context {
    pub client: kube::Client,
    pub replica_sets: Informer<ReplicaSet>,
    pub pods: Informer<CachedPod>,
    pub deployments: Informer<Deployment>,
    pub events: EventRecorder,
}

fn selector_of(d: &Deployment) -> Option<LabelSelector> {
    let selector = d.spec.as_ref()?.selector.clone();
    LabelSelector::new(Selector::try_from(selector).ok()?)
}

pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(selector) = selector_of(&d) else {
        return Ok(Action::await_change());
    };
    let namespace = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut candidates = ctx.replica_sets.indexed(&format!("owner:{uid}"));
    candidates.extend(ctx.replica_sets.indexed(&format!("orphan:{namespace}")));
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = claim(&rs_api, &controller_ref(&*d), deleting, &selector, candidates).await?;
    let mut all: Vec<ReplicaSet> = owned.iter().map(|rs| (**rs).clone()).collect();
    all.sort_by(|a, b| {
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a).cmp(&created(b)).then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let previous = d.status.clone().unwrap_or_default();
    let mut rollout =
        Rollout { status: previous.clone(), previous, d: (*d).clone(), all, rs_api, ctx: &ctx };
    rollout.run(deleting).await
}

/// One sync of one Deployment: its ReplicaSets (oldest first) and the status being built.
struct Rollout<'a> {
    d: Deployment,
    all: Vec<ReplicaSet>,
    previous: DeploymentStatus,
    status: DeploymentStatus,
    rs_api: Api<ReplicaSet>,
    ctx: &'a Context,
}

impl Rollout<'_> {
    async fn run(&mut self, deleting: bool) -> Result<Action, Error> {
        if deleting {
            return self.sync_status().await;
        }
        self.check_paused_conditions();
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event() {
            self.sync_revision().await?;
            self.scale().await?;
            if paused {
                self.cleanup().await?;
            }
            return self.sync_status().await;
        }
        if is_recreate(&self.d) { self.recreate().await } else { self.rolling().await }
    }

    fn new_index(&self) -> Option<usize> {
        let template = self.d.spec.as_ref()?.template.clone();
        self.all.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignoring_hash(t, &template))
        })
    }

    fn old_indices(&self) -> Vec<usize> {
        let new = self.new_index();
        (0..self.all.len()).filter(|i| Some(*i) != new).collect()
    }

    fn desired(&self) -> i32 {
        replicas(&self.d)
    }

    fn check_paused_conditions(&mut self) {
        if status::progress_deadline(&self.d).is_none() {
            return;
        }
        let current = condition(&self.status, PROGRESSING);
        if current.as_ref().and_then(|c| c.reason.as_deref()) == Some(TIMED_OUT) {
            return;
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let reason = current.as_ref().and_then(|c| c.reason.as_deref());
        if paused && reason != Some(PAUSED) {
            let c = new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into());
            set_condition(&mut self.status, c);
        } else if !paused && reason == Some(PAUSED) {
            let c = new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into());
            set_condition(&mut self.status, c);
        }
    }

    /// Upstream's isScalingEvent: an active ReplicaSet was sized for another replica count.
    fn is_scaling_event(&self) -> bool {
        let desired = self.desired();
        self.all.iter().any(|rs| {
            rs_replicas(rs) > 0 && desired_annotation(rs).is_some_and(|want| want != desired)
        })
    }

    /// Brings an existing new ReplicaSet's revision and annotations up to date, and the
    /// Deployment's revision annotation with it (upstream's getNewReplicaSet for an existing one).
    async fn sync_revision(&mut self) -> Result<(), Error> {
        let Some(new) = self.new_index() else { return Ok(()) };
        let revision = self.next_revision(new);
        let updates = annotation_updates(&self.d, &self.all[new], revision);
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let rs_min_ready = self.all[new].spec.as_ref().and_then(|s| s.min_ready_seconds);
        if !updates.is_empty() || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
            let patch = json!({"metadata": {"annotations": updates}, "spec": {"minReadySeconds": min_ready}});
            self.rs_api
                .patch(&self.all[new].name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            let rs = &mut self.all[new];
            rs.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(updates);
            if let Some(spec) = rs.spec.as_mut() {
                spec.min_ready_seconds = min_ready;
            }
        }
        let rs_revision = revision_of(&self.all[new]);
        self.set_deployment_revision(rs_revision).await?;
        if status::progress_deadline(&self.d).is_some()
            && condition(&self.status, PROGRESSING).is_none()
        {
            let message = format!("Found new replica set {:?}", self.all[new].name_any());
            set_condition(
                &mut self.status,
                new_condition(PROGRESSING, "True", "FoundNewReplicaSet", message),
            );
        }
        Ok(())
    }

    /// The revision the new ReplicaSet should carry: one more than any old one's.
    fn next_revision(&self, new: usize) -> i64 {
        let max_old = self
            .all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != new)
            .map(|(_, rs)| revision_of(rs))
            .max()
            .unwrap_or(0);
        let current = revision_of(&self.all[new]);
        if current > max_old { current } else { max_old + 1 }
    }

    async fn set_deployment_revision(&mut self, revision: i64) -> Result<(), Error> {
        let current = self.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).cloned();
        if current.as_deref() == Some(revision.to_string().as_str()) {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.ctx.client.clone(), &self.d.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {REVISION: revision.to_string()}}});
        api.patch(&self.d.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await?;
        self.d
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION.into(), revision.to_string());
        Ok(())
    }

    /// Creates the ReplicaSet for the current template (upstream's getNewReplicaSet with
    /// createIfNotExisted), sized `replicas`.
    async fn create_new(&mut self, replicas: i32) -> Result<usize, Error> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.status.collision_count;
        let hash = template_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let max_old = self.all.iter().map(revision_of).max().unwrap_or(0);
        let (surge, _) = deployment_fenceposts(&self.d);
        let name = format!("{}-{hash}", self.d.name_any());
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.namespace(),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                annotations: Some(new_rs_annotations(&self.d, max_old + 1, self.desired() + surge)),
                owner_references: Some(vec![controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let created = match self.rs_api.create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Same name: ours with this template (a stale cache) is fine; else a hash collision.
                let existing = self.rs_api.get(&name).await?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignoring_hash(t, &spec.template));
                if ours && same {
                    existing
                } else {
                    self.status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    self.write_status().await?;
                    return Err(Error::Api(kube::Error::Api(s)));
                }
            }
            Err(e) => {
                let message = match &e {
                    kube::Error::Api(s) => s.message.clone(),
                    other => other.to_string(),
                };
                set_condition(
                    &mut self.status,
                    new_condition(REPLICA_FAILURE, "True", "FailedRSCreate", message),
                );
                self.write_status().await?;
                return Err(e.into());
            }
        };
        if replicas > 0 {
            self.ctx.events.normal(
                reference(&self.d),
                "ScalingReplicaSet",
                "Scale",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
        }
        self.set_deployment_revision(max_old + 1).await?;
        let message = format!("Created new replica set {name:?}");
        set_condition(
            &mut self.status,
            new_condition(PROGRESSING, "True", "NewReplicaSetCreated", message),
        );
        self.all.push(created);
        Ok(self.all.len() - 1)
    }

    /// Sizes a ReplicaSet and stamps it with the deployment's replica annotations.
    async fn scale_rs(&mut self, index: usize, size: i32) -> Result<(), Error> {
        let (surge, _) = deployment_fenceposts(&self.d);
        let desired = self.desired().to_string();
        let max = (self.desired() + surge).to_string();
        let rs = &self.all[index];
        let old = rs_replicas(rs);
        let annotations = rs.metadata.annotations.clone().unwrap_or_default();
        if old == size
            && annotations.get(DESIRED_REPLICAS) == Some(&desired)
            && annotations.get(MAX_REPLICAS) == Some(&max)
        {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"annotations": {DESIRED_REPLICAS: desired, MAX_REPLICAS: max}},
            "spec": {"replicas": size},
        });
        let name = rs.name_any();
        self.rs_api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        let rs = &mut self.all[index];
        let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(DESIRED_REPLICAS.into(), desired);
        annotations.insert(MAX_REPLICAS.into(), max);
        rs.spec.get_or_insert_with(Default::default).replicas = Some(size);
        if old != size {
            let direction = if size > old { "up" } else { "down" };
            self.ctx.events.normal(
                reference(&self.d),
                "ScalingReplicaSet",
                "Scale",
                format!("Scaled {direction} replica set {name} from {old} to {size}"),
            );
        }
        Ok(())
    }

    async fn rolling(&mut self) -> Result<Action, Error> {
        self.sync_revision().await?;
        let desired = self.desired();
        let new = match self.new_index() {
            Some(new) => new,
            None => {
                let (surge, _) = deployment_fenceposts(&self.d);
                let all_replicas: i32 = self.all.iter().map(rs_replicas).sum();
                self.create_new(new_rs_target(desired, surge, all_replicas, 0)).await?
            }
        };
        let (surge, max_unavailable) = deployment_fenceposts(&self.d);
        let all_replicas: i32 = self.all.iter().map(rs_replicas).sum();
        let current = rs_replicas(&self.all[new]);
        let target = new_rs_target(desired, surge, all_replicas, current);
        if target != current {
            self.scale_rs(new, target).await?;
            return self.sync_rollout_status().await;
        }
        let old = self.old_indices();
        // A ReplicaSet just scaled down may still report the pods it is deleting as available.
        let counts = |rs: &ReplicaSet| Counts {
            replicas: rs_replicas(rs),
            available: rs_available(rs).min(rs_replicas(rs)),
        };
        let old_counts: Vec<Counts> = old.iter().map(|i| counts(&self.all[*i])).collect();
        let targets = old_rs_targets(desired, max_unavailable, counts(&self.all[new]), &old_counts);
        let mut scaled_down = false;
        for (index, target) in old.iter().zip(targets) {
            if target != rs_replicas(&self.all[*index]) {
                self.scale_rs(*index, target).await?;
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        let status = status::calculate(&self.d, &self.all, Some(&self.all[new]), &self.status);
        if status::complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    async fn recreate(&mut self) -> Result<Action, Error> {
        self.sync_revision().await?;
        let mut scaled_down = false;
        for index in self.old_indices() {
            if rs_replicas(&self.all[index]) > 0 {
                self.scale_rs(index, 0).await?;
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        // Old pods must be gone (or finished) before new ones start.
        let old_pods_running = self.old_indices().iter().any(|i| {
            let uid = self.all[*i].uid().unwrap_or_default();
            self.ctx.pods.indexed(&format!("owner:{uid}")).iter().any(|pod| {
                !matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
        });
        if old_pods_running {
            return self.sync_rollout_status().await;
        }
        let desired = self.desired();
        let new = match self.new_index() {
            Some(new) => new,
            None => self.create_new(desired).await?,
        };
        self.scale_rs(new, desired).await?;
        let status = status::calculate(&self.d, &self.all, Some(&self.all[new]), &self.status);
        if status::complete(&self.d, &status) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// Upstream's scale(): resize for a changed replica count, proportionally across the
    /// active ReplicaSets while a rollout is in flight.
    async fn scale(&mut self) -> Result<(), Error> {
        let desired = self.desired();
        let new = self.new_index();
        let active: Vec<usize> =
            (0..self.all.len()).filter(|i| rs_replicas(&self.all[*i]) > 0).collect();
        if active.len() <= 1 {
            let target = active
                .first()
                .copied()
                .or(new)
                .or_else(|| (!self.all.is_empty()).then(|| self.all.len() - 1));
            if let Some(index) = target {
                self.scale_rs(index, desired).await?;
            }
            return Ok(());
        }
        if let Some(new) = new {
            let rs = &self.all[new];
            let saturated = rs_replicas(rs) == desired
                && desired_annotation(rs) == Some(desired)
                && rs_available(rs) == desired;
            if saturated {
                for index in self.old_indices() {
                    if rs_replicas(&self.all[index]) > 0 {
                        self.scale_rs(index, 0).await?;
                    }
                }
                return Ok(());
            }
        }
        if is_recreate(&self.d) {
            return Ok(());
        }
        let (surge, _) = deployment_fenceposts(&self.d);
        let allowed = if desired > 0 { desired + surge } else { 0 };
        let current: i32 = active.iter().map(|i| rs_replicas(&self.all[*i])).sum();
        let to_add = allowed - current;
        let mut order = active.clone();
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        order.sort_by(|a, b| {
            let (ra, rb) = (&self.all[*a], &self.all[*b]);
            let by_size = rs_replicas(rb).cmp(&rs_replicas(ra));
            if to_add > 0 {
                by_size.then_with(|| created(rb).cmp(&created(ra)))
            } else {
                by_size.then_with(|| created(ra).cmp(&created(rb)))
            }
        });
        let previous_total = self.previous.replicas.unwrap_or(0);
        let mut added = 0;
        let mut sizes = Vec::new();
        for index in &order {
            let rs = &self.all[*index];
            let size = rs_replicas(rs);
            let proportion = if to_add == 0 || to_add == added {
                0
            } else {
                let annotated = max_annotation(rs).unwrap_or(previous_total);
                let fraction = if desired == 0 || annotated == 0 {
                    -size
                } else {
                    (f64::from(size * (desired + surge)) / f64::from(annotated)).round() as i32
                        - size
                };
                let allowed = to_add - added;
                if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
            };
            added += proportion;
            sizes.push((*index, size + proportion));
        }
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (index, size) in sizes {
            self.scale_rs(index, size).await?;
        }
        Ok(())
    }

    /// Deletes the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit.
    async fn cleanup(&mut self) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut old: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| self.all[*i].metadata.deletion_timestamp.is_none())
            .collect();
        let surplus = old.len() as i64 - i64::from(limit);
        if surplus <= 0 {
            return Ok(());
        }
        old.sort_by_key(|i| revision_of(&self.all[*i]));
        let mut deleted = Vec::new();
        for index in old.into_iter().take(surplus as usize) {
            let rs = &self.all[index];
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation > status.observed_generation
            {
                continue;
            }
            match self.rs_api.delete(&rs.name_any(), &DeleteParams::default()).await {
                Ok(_) => deleted.push(index),
                Err(kube::Error::Api(s)) if s.code == 404 => deleted.push(index),
                Err(e) => return Err(e.into()),
            }
        }
        deleted.sort_unstable();
        for index in deleted.into_iter().rev() {
            self.all.remove(index);
        }
        Ok(())
    }

    /// Status without progress bookkeeping (scaling, paused, deleting).
    async fn sync_status(&mut self) -> Result<Action, Error> {
        let new = self.new_index().map(|i| &self.all[i]);
        self.status = status::calculate(&self.d, &self.all, new, &self.status);
        self.write_status().await?;
        Ok(Action::await_change())
    }

    /// Status with the Progressing condition and the progress deadline.
    async fn sync_rollout_status(&mut self) -> Result<Action, Error> {
        let new = self.new_index();
        let new_rs = new.map(|i| &self.all[i]);
        let mut next = status::calculate(&self.d, &self.all, new_rs, &self.status);
        let name = new_rs.map(|rs| rs.name_any()).unwrap_or_default();
        let current = condition(&self.previous, PROGRESSING);
        let already_complete = next.replicas == next.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let now = Timestamp::now();
        if status::progress_deadline(&self.d).is_some() && !already_complete {
            if status::complete(&self.d, &next) {
                let message = format!("ReplicaSet {name:?} has successfully progressed.");
                set_condition(
                    &mut next,
                    new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message),
                );
            } else if status::progressing(&self.previous, &next) {
                let message = format!("ReplicaSet {name:?} is progressing.");
                let mut c = new_condition(PROGRESSING, "True", "ReplicaSetUpdated", message);
                if let Some(current) = condition(&next, PROGRESSING).filter(|c| c.status == "True")
                {
                    c.last_transition_time = current.last_transition_time;
                }
                remove_condition(&mut next, PROGRESSING);
                set_condition(&mut next, c);
            } else if status::timed_out(&self.d, &next, now) {
                let message = format!("ReplicaSet {name:?} has timed out progressing.");
                set_condition(&mut next, new_condition(PROGRESSING, "False", TIMED_OUT, message));
            }
        }
        let failure = new_rs.and_then(|rs| {
            rs.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == REPLICA_FAILURE)
                .cloned()
        });
        match failure {
            Some(f) => set_condition(
                &mut next,
                new_condition(
                    REPLICA_FAILURE,
                    &f.status,
                    f.reason.as_deref().unwrap_or("FailedCreate"),
                    f.message.unwrap_or_default(),
                ),
            ),
            None => remove_condition(&mut next, REPLICA_FAILURE),
        }
        self.status = next;
        self.write_status().await?;
        // A rollout that stops moving must still time out: look again at its deadline.
        if !status::complete(&self.d, &self.status)
            && let Some(at) = status::deadline_at(&self.d, &self.status)
        {
            let wait = at.duration_since(now).as_secs().max(0) as u64 + 1;
            return Ok(Action::requeue(Duration::from_secs(wait)));
        }
        Ok(Action::await_change())
    }

    async fn write_status(&mut self) -> Result<(), Error> {
        if self.status == self.previous {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.ctx.client.clone(), &self.d.namespace().unwrap_or_default());
        match api
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(status::patch(&self.status)),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.previous = self.status.clone();
        Ok(())
    }
}

pub fn error_policy(d: Arc<Deployment>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("deployment {}: {error}", d.name_any());
    Action::requeue(Duration::from_secs(5))
}

/// The Deployments a ReplicaSet change concerns: its controller, or for an orphan every
/// Deployment in its namespace whose selector matches it.
fn deployments_for(
    rs: &ReplicaSet,
    deployments: &Informer<Deployment>,
) -> Vec<ObjectRef<Deployment>> {
    let namespace = rs.namespace().unwrap_or_default();
    match controller_of(&rs.metadata) {
        Some(r) if r.kind == "Deployment" => vec![ObjectRef::new(&r.name).within(&namespace)],
        Some(_) => Vec::new(),
        None => deployments
            .indexed(&format!("ns:{namespace}"))
            .iter()
            .filter(|d| selector_of(d).is_some_and(|s| s.matches(rs)))
            .map(|d| ObjectRef::from_obj(&**d))
            .collect(),
    }
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<CachedPod>,
    events: EventRecorder,
    concurrency: u16,
) {
    deployments.wait_until_ready().await;
    replica_sets.wait_until_ready().await;
    pods.wait_until_ready().await;
    let rs_triggers = replica_sets.subscribe().flat_map({
        let deployments = deployments.clone();
        move |change| {
            let refs: Vec<_> =
                change.objects().iter().flat_map(|rs| deployments_for(rs, &deployments)).collect();
            futures::stream::iter(refs)
        }
    });
    // Recreate waits for old pods to go: their deletion wakes the Deployment.
    let pod_triggers = pods.subscribe().flat_map({
        let replica_sets = replica_sets.clone();
        move |change| {
            let refs: Vec<ObjectRef<Deployment>> = match change {
                Change::Deleted(pod) => {
                    let namespace = pod.namespace().unwrap_or_default();
                    controller_of(&pod.metadata)
                        .filter(|r| r.kind == "ReplicaSet")
                        .and_then(|r| {
                            replica_sets.store().get(&ObjectRef::new(&r.name).within(&namespace))
                        })
                        .and_then(|rs| {
                            controller_of(&rs.metadata)
                                .filter(|r| r.kind == "Deployment")
                                .map(|r| ObjectRef::new(&r.name).within(&namespace))
                        })
                        .into_iter()
                        .collect()
                }
                _ => Vec::new(),
            };
            futures::stream::iter(refs)
        }
    });
    let deployment_changes =
        deployments.subscribe().flat_map(|change| futures::stream::iter(change.objects()));
    let deployment_changes =
        futures::stream::iter(deployments.store().state()).chain(deployment_changes);
    let ctx =
        Arc::new(Context { client, replica_sets, pods, deployments: deployments.clone(), events });
    let counters = crate::metrics::counters(CONTROLLER);
    Controller::for_shared_stream(deployment_changes, deployments.store())
        .with_config(controller::Config::default().concurrency(concurrency))
        .reconcile_on(rs_triggers)
        .reconcile_on(pod_triggers)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| {
            counters.reconciled();
            future::ready(())
        })
        .await;
}
