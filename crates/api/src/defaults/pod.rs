//! Pod and pod template defaulting: upstream's SetDefaults_Pod, _PodSpec, _Container, _Probe,
//! _Volume and the declarative defaults under them, plus the Pod fields PrepareForCreate sets.

use serde_json::{Map, Value, json};

use super::{
    default_nonzero, default_pointer, default_string, image, is_unset, items, pointer_field,
    struct_field,
};

/// Octal 0644: the file mode of secret, configMap, downwardAPI and projected volumes.
const DEFAULT_FILE_MODE: i64 = 0o644;

/// A Pod: everything a template gets, plus what only materializes in Pods.
pub(super) fn pod(pod: &mut Map<String, Value>) {
    let Some(spec) = struct_field(pod, "spec") else { return };
    requests_from_limits(spec);
    default_pointer(spec, "enableServiceLinks", true);
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        host_ports_from_container_ports(spec);
    }
    pod_spec(spec);
}

/// A PodTemplateSpec inside a workload: upstream defaults its spec but not the Pod-only fields
/// (enableServiceLinks, requests from limits), which a Pod gets when it is created from it.
pub(super) fn template(template: &mut Map<String, Value>) {
    if let Some(spec) = struct_field(template, "spec") {
        pod_spec(spec);
    }
}

fn pod_spec(spec: &mut Map<String, Value>) {
    default_string(spec, "dnsPolicy", "ClusterFirst");
    // Job templates get Always too; upstream's Job validation then refuses it.
    default_string(spec, "restartPolicy", "Always");
    default_pointer(spec, "securityContext", json!({}));
    default_pointer(spec, "terminationGracePeriodSeconds", 30);
    default_string(spec, "schedulerName", "default-scheduler");
    for volume in items(spec, "volumes") {
        self::volume(volume);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in items(spec, list) {
            self::container(container);
        }
    }
}

/// Requests default to limits, for containers and init containers of a Pod.
fn requests_from_limits(spec: &mut Map<String, Value>) {
    for list in ["containers", "initContainers"] {
        for container in items(spec, list) {
            let Some(resources) = pointer_field(container, "resources") else { continue };
            let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
                continue;
            };
            if is_unset(resources, "requests") && !limits.is_empty() {
                resources.insert("requests".into(), json!({}));
            }
            let Some(requests) = pointer_field(resources, "requests") else { continue };
            for (name, quantity) in limits {
                requests.entry(name).or_insert(quantity);
            }
        }
    }
}

/// With the host's network a container port is a host port.
fn host_ports_from_container_ports(spec: &mut Map<String, Value>) {
    for list in ["containers", "initContainers"] {
        for container in items(spec, list) {
            for port in items(container, "ports") {
                if let Some(container_port) = port.get("containerPort").and_then(Value::as_i64) {
                    default_nonzero(port, "hostPort", container_port);
                }
            }
        }
    }
}

fn container(container: &mut Map<String, Value>) {
    let unset_policy = is_unset(container, "imagePullPolicy")
        || container.get("imagePullPolicy").and_then(Value::as_str) == Some("");
    if unset_policy {
        let policy = match container.get("image") {
            None | Some(Value::Null) => Some("IfNotPresent"),
            Some(Value::String(image)) => Some(image::pull_policy(image)),
            Some(_) => None,
        };
        if let Some(policy) = policy {
            container.insert("imagePullPolicy".into(), json!(policy));
        }
    }
    default_string(container, "terminationMessagePath", "/dev/termination-log");
    default_string(container, "terminationMessagePolicy", "File");
    for port in items(container, "ports") {
        default_string(port, "protocol", "TCP");
    }
    for env in items(container, "env") {
        if let Some(field_ref) =
            pointer_field(env, "valueFrom").and_then(|from| pointer_field(from, "fieldRef"))
        {
            field_selector(field_ref);
        }
    }
    for name in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = pointer_field(container, name) {
            self::probe(probe);
        }
    }
    if let Some(lifecycle) = pointer_field(container, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(get) =
                pointer_field(lifecycle, hook).and_then(|h| pointer_field(h, "httpGet"))
            {
                http_get(get);
            }
        }
    }
}

fn probe(probe: &mut Map<String, Value>) {
    default_nonzero(probe, "timeoutSeconds", 1);
    default_nonzero(probe, "periodSeconds", 10);
    default_nonzero(probe, "successThreshold", 1);
    default_nonzero(probe, "failureThreshold", 3);
    if let Some(get) = pointer_field(probe, "httpGet") {
        http_get(get);
    }
    if let Some(grpc) = pointer_field(probe, "grpc") {
        default_pointer(grpc, "service", "");
    }
}

fn http_get(get: &mut Map<String, Value>) {
    default_string(get, "path", "/");
    default_string(get, "scheme", "HTTP");
}

fn field_selector(field_ref: &mut Map<String, Value>) {
    default_string(field_ref, "apiVersion", "v1");
}

fn downward_api_items(source: &mut Map<String, Value>) {
    for item in items(source, "items") {
        if let Some(field_ref) = pointer_field(item, "fieldRef") {
            field_selector(field_ref);
        }
    }
}

fn volume(volume: &mut Map<String, Value>) {
    // A volume that names no source is an emptyDir.
    if volume.iter().all(|(key, value)| key == "name" || value.is_null()) {
        volume.insert("emptyDir".into(), json!({}));
    }
    if let Some(host_path) = pointer_field(volume, "hostPath") {
        default_pointer(host_path, "type", "");
    }
    for source in ["secret", "configMap"] {
        if let Some(source) = pointer_field(volume, source) {
            default_pointer(source, "defaultMode", DEFAULT_FILE_MODE);
        }
    }
    if let Some(downward) = pointer_field(volume, "downwardAPI") {
        default_pointer(downward, "defaultMode", DEFAULT_FILE_MODE);
        downward_api_items(downward);
    }
    if let Some(projected) = pointer_field(volume, "projected") {
        default_pointer(projected, "defaultMode", DEFAULT_FILE_MODE);
        for source in items(projected, "sources") {
            if let Some(downward) = pointer_field(source, "downwardAPI") {
                downward_api_items(downward);
            }
            if let Some(token) = pointer_field(source, "serviceAccountToken") {
                default_pointer(token, "expirationSeconds", 3600);
            }
        }
    }
    if let Some(claim) = pointer_field(volume, "ephemeral")
        .and_then(|e| pointer_field(e, "volumeClaimTemplate"))
        .and_then(|t| struct_field(t, "spec"))
    {
        persistent_volume_claim_spec(claim);
    }
    // The in-tree plugins' declarative defaults.
    if let Some(iscsi) = pointer_field(volume, "iscsi") {
        default_string(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = pointer_field(volume, "rbd") {
        default_string(rbd, "pool", "rbd");
        default_string(rbd, "user", "admin");
        default_string(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(azure) = pointer_field(volume, "azureDisk") {
        default_pointer(azure, "cachingMode", "ReadWrite");
        default_pointer(azure, "fsType", "ext4");
        default_pointer(azure, "readOnly", false);
        default_pointer(azure, "kind", "Shared");
    }
    if let Some(scale_io) = pointer_field(volume, "scaleIO") {
        default_string(scale_io, "storageMode", "ThinProvisioned");
        default_string(scale_io, "fsType", "xfs");
    }
}

/// SetDefaults_PersistentVolumeClaimSpec, for ephemeral volumes and StatefulSet claims.
pub(super) fn persistent_volume_claim_spec(spec: &mut Map<String, Value>) {
    default_pointer(spec, "volumeMode", "Filesystem");
}

/// A new Pod: the SchedulingGated condition and pod (anti-)affinity terms with their
/// `matchLabelKeys`/`mismatchLabelKeys` merged into the label selector.
pub(super) fn prepare_for_create(pod: &mut Map<String, Value>) {
    let labels = pod
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let created = pod.get("metadata").and_then(|m| m.get("creationTimestamp")).cloned();
    let Some(spec) = pointer_field(pod, "spec") else { return };
    let gated =
        spec.get("schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty());
    if let Some(affinity) = pointer_field(spec, "affinity") {
        merge_label_keys(affinity, &labels);
    }
    if gated {
        scheduling_gated_condition(pod, created.unwrap_or(Value::Null));
    }
}

fn scheduling_gated_condition(pod: &mut Map<String, Value>, now: Value) {
    let Some(status) = struct_field(pod, "status") else { return };
    if is_unset(status, "conditions") {
        status.insert("conditions".into(), json!([]));
    }
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    if conditions.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled")) {
        return;
    }
    // The creation time is the transition time: both are "now" when upstream sets them.
    conditions.push(json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "SchedulingGated",
        "message": "Scheduling is blocked due to non-empty scheduling gates",
        "lastProbeTime": null,
        "lastTransitionTime": now,
    }));
}

fn merge_label_keys(affinity: &mut Map<String, Value>, labels: &Map<String, Value>) {
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(kind) = pointer_field(affinity, kind) else { continue };
        for term in items(kind, "requiredDuringSchedulingIgnoredDuringExecution") {
            merge_term(term, labels);
        }
        for weighted in items(kind, "preferredDuringSchedulingIgnoredDuringExecution") {
            if let Some(term) = pointer_field(weighted, "podAffinityTerm") {
                merge_term(term, labels);
            }
        }
    }
}

/// Each key in `matchLabelKeys` becomes `key In (pod's value)`, each in `mismatchLabelKeys`
/// `key NotIn (pod's value)`; a term without a selector matches nothing and stays so.
fn merge_term(term: &mut Map<String, Value>, labels: &Map<String, Value>) {
    let keys = |field: &str| -> Vec<String> {
        term.get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let (matching, mismatching) = (keys("matchLabelKeys"), keys("mismatchLabelKeys"));
    let merged: Vec<Value> = [(matching, "In"), (mismatching, "NotIn")]
        .into_iter()
        .flat_map(|(keys, operator)| keys.into_iter().map(move |key| (key, operator)))
        .filter_map(|(key, operator)| {
            let value = labels.get(&key)?.as_str()?;
            Some(json!({"key": key, "operator": operator, "values": [value]}))
        })
        .collect();
    let Some(selector) = pointer_field(term, "labelSelector") else { return };
    if merged.is_empty() {
        return;
    }
    if is_unset(selector, "matchExpressions") {
        selector.insert("matchExpressions".into(), json!([]));
    }
    if let Some(expressions) = selector.get_mut("matchExpressions").and_then(Value::as_array_mut) {
        expressions.extend(merged);
    }
}
