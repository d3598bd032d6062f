//! Workload defaulting (apps/v1, batch/v1, ReplicationController, PodTemplate): replica counts,
//! rollout strategies, history limits, Job completion settings, and each pod template; plus a
//! new Job's generated selector.

use serde_json::{Map, Value, json};

use super::{
    default_pointer, default_string, is_empty_map, is_unset, items, non_empty_object, pod,
    pointer_field, struct_field,
};

/// `spec.template` of a workload (a Go struct: always there to default).
fn spec_template(spec: &mut Map<String, Value>) {
    if let Some(template) = struct_field(spec, "template") {
        pod::template(template);
    }
}

pub(super) fn pod_template(object: &mut Map<String, Value>) {
    if let Some(template) = struct_field(object, "template") {
        pod::template(template);
    }
}

pub(super) fn replication_controller(rc: &mut Map<String, Value>) {
    let Some(spec) = struct_field(rc, "spec") else { return };
    default_pointer(spec, "replicas", 1);
    // The template is a pointer here, unlike in apps/v1.
    let Some(template) = pointer_field(spec, "template") else { return };
    pod::template(template);
    // The selector and the controller's own labels come from the template when absent.
    let Some(labels) =
        template.get("metadata").and_then(|m| non_empty_object(m.as_object()?, "labels")).cloned()
    else {
        return;
    };
    if is_empty_map(spec, "selector") {
        spec.insert("selector".into(), Value::Object(labels.clone()));
    }
    copy_labels_if_none(rc, labels);
}

/// Sets `metadata.labels` when the object has none (RC and Job take their template's).
fn copy_labels_if_none(object: &mut Map<String, Value>, labels: Map<String, Value>) {
    if let Some(meta) = struct_field(object, "metadata")
        && is_empty_map(meta, "labels")
    {
        meta.insert("labels".into(), Value::Object(labels));
    }
}

pub(super) fn deployment(deployment: &mut Map<String, Value>) {
    let Some(spec) = struct_field(deployment, "spec") else { return };
    default_pointer(spec, "replicas", 1);
    if let Some(strategy) = struct_field(spec, "strategy") {
        default_string(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if is_unset(strategy, "rollingUpdate") {
                strategy.insert("rollingUpdate".into(), json!({}));
            }
            if let Some(rolling) = pointer_field(strategy, "rollingUpdate") {
                default_pointer(rolling, "maxUnavailable", "25%");
                default_pointer(rolling, "maxSurge", "25%");
            }
        }
    }
    default_pointer(spec, "revisionHistoryLimit", 10);
    default_pointer(spec, "progressDeadlineSeconds", 600);
    spec_template(spec);
}

pub(super) fn replica_set(replica_set: &mut Map<String, Value>) {
    let Some(spec) = struct_field(replica_set, "spec") else { return };
    default_pointer(spec, "replicas", 1);
    spec_template(spec);
}

pub(super) fn daemon_set(daemon_set: &mut Map<String, Value>) {
    let Some(spec) = struct_field(daemon_set, "spec") else { return };
    if let Some(strategy) = struct_field(spec, "updateStrategy") {
        default_string(strategy, "type", "RollingUpdate");
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if is_unset(strategy, "rollingUpdate") {
                strategy.insert("rollingUpdate".into(), json!({}));
            }
            if let Some(rolling) = pointer_field(strategy, "rollingUpdate") {
                default_pointer(rolling, "maxUnavailable", 1);
                default_pointer(rolling, "maxSurge", 0);
            }
        }
    }
    default_pointer(spec, "revisionHistoryLimit", 10);
    spec_template(spec);
}

pub(super) fn stateful_set(stateful_set: &mut Map<String, Value>) {
    let Some(spec) = struct_field(stateful_set, "spec") else { return };
    default_string(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = struct_field(spec, "updateStrategy") {
        // Only an unset type brings a rollingUpdate with it; an explicit RollingUpdate
        // without one stays so, as upstream has it.
        let unset_type =
            is_unset(strategy, "type") || strategy.get("type").and_then(Value::as_str) == Some("");
        if unset_type {
            strategy.insert("type".into(), json!("RollingUpdate"));
            if is_unset(strategy, "rollingUpdate") {
                strategy.insert("rollingUpdate".into(), json!({}));
            }
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = pointer_field(strategy, "rollingUpdate")
        {
            default_pointer(rolling, "partition", 0);
        }
    }
    if is_unset(spec, "persistentVolumeClaimRetentionPolicy") {
        spec.insert("persistentVolumeClaimRetentionPolicy".into(), json!({}));
    }
    if let Some(policy) = pointer_field(spec, "persistentVolumeClaimRetentionPolicy") {
        default_string(policy, "whenDeleted", "Retain");
        default_string(policy, "whenScaled", "Retain");
    }
    default_pointer(spec, "replicas", 1);
    default_pointer(spec, "revisionHistoryLimit", 10);
    spec_template(spec);
    for claim in items(spec, "volumeClaimTemplates") {
        // Upstream's apps/v1 conversion stamps each claim template with its type.
        default_string(claim, "apiVersion", "v1");
        default_string(claim, "kind", "PersistentVolumeClaim");
        if let Some(claim_spec) = struct_field(claim, "spec") {
            pod::persistent_volume_claim_spec(claim_spec);
        }
        if let Some(status) = struct_field(claim, "status") {
            default_string(status, "phase", "Pending");
        }
    }
}

pub(super) fn job(job: &mut Map<String, Value>) {
    let Some(spec) = struct_field(job, "spec") else { return };
    // A non-parallel Job may leave both unset; a parallel one keeps completions unset.
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    default_pointer(spec, "parallelism", 1);
    let backoff = if is_unset(spec, "backoffLimitPerIndex") { 6 } else { i64::from(i32::MAX) };
    default_pointer(spec, "backoffLimit", backoff);
    default_pointer(spec, "completionMode", "NonIndexed");
    default_pointer(spec, "suspend", false);
    let failure_policy = pointer_field(spec, "podFailurePolicy");
    let has_failure_policy = failure_policy.is_some();
    if let Some(policy) = failure_policy {
        for rule in items(policy, "rules") {
            for pattern in items(rule, "onPodConditions") {
                default_string(pattern, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy { "Failed" } else { "TerminatingOrFailed" };
    default_pointer(spec, "podReplacementPolicy", replacement);
    default_pointer(spec, "manualSelector", false);
    spec_template(spec);
    job_labels_from_template(job);
}

/// A Job without labels takes its template's (after creation that includes the generated
/// selector labels, since upstream defaults again whenever it reads the Job back).
fn job_labels_from_template(job: &mut Map<String, Value>) {
    let labels = job
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| non_empty_object(m.as_object()?, "labels"))
        .cloned();
    if let Some(labels) = labels {
        copy_labels_if_none(job, labels);
    }
}

pub(super) fn cron_job(cron_job: &mut Map<String, Value>) {
    let Some(spec) = struct_field(cron_job, "spec") else { return };
    default_string(spec, "concurrencyPolicy", "Allow");
    default_pointer(spec, "suspend", false);
    default_pointer(spec, "successfulJobsHistoryLimit", 3);
    default_pointer(spec, "failedJobsHistoryLimit", 1);
    // The Job template's spec is not a Job: only its pod template is defaulted.
    if let Some(job_spec) = struct_field(spec, "jobTemplate").and_then(|t| struct_field(t, "spec"))
    {
        spec_template(job_spec);
    }
}

/// Upstream's generateSelector for a new Job without `manualSelector: true`: the template is
/// labelled with the Job's name and uid, and the selector matches the uid.
pub(super) fn generate_job_selector(job: &mut Map<String, Value>) {
    let meta = job.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default();
    let uid = meta.and_then(|m| m.get("uid")).and_then(Value::as_str).unwrap_or_default();
    let (name, uid) = (json!(name), json!(uid));
    let Some(spec) = struct_field(job, "spec") else { return };
    if spec.get("manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    let Some(labels) = struct_field(spec, "template")
        .and_then(|t| struct_field(t, "metadata"))
        .and_then(|m| struct_field(m, "labels"))
    else {
        return;
    };
    // Labels the client set itself are kept; validation would refuse a mismatch.
    for (key, value) in [
        ("job-name", &name),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("batch.kubernetes.io/controller-uid", &uid),
    ] {
        labels.entry(key).or_insert_with(|| value.clone());
    }
    if let Some(match_labels) =
        struct_field(spec, "selector").and_then(|s| struct_field(s, "matchLabels"))
    {
        match_labels.entry("batch.kubernetes.io/controller-uid").or_insert(uid);
    }
    job_labels_from_template(job);
}
