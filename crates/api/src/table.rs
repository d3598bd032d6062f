//! Server-side printing for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: the columns
//! and row cells upstream's printers (`pkg/printers/internalversion`) give each kind, so that
//! `kubectl get` prints here what it prints against any cluster.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

use crate::fields::{
    at, bool_at, event_regarding, event_reporting_controller, first_non_empty, int_at, list_at,
    map_at, opt_int_at, str_at,
};
use crate::registry::Resource;
use crate::selector::LabelSelector;

/// A `metav1.TableColumnDefinition`.
#[derive(Clone, Copy)]
struct Column {
    name: &'static str,
    /// The OpenAPI type: "string", "integer", "boolean" or "date".
    kind: &'static str,
    format: &'static str,
    /// 1 for the columns `kubectl get -o wide` adds.
    priority: i32,
    description: &'static str,
}

impl Column {
    const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Self {
        Self { name, kind, format: "", priority: 0, description }
    }

    const fn wide(self) -> Self {
        Self { priority: 1, ..self }
    }

    fn to_json(self) -> Value {
        serde_json::json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const NAME: Column = Column { format: "name", ..Column::new("Name", "string", doc::NAME) };
const AGE: Column = Column::new("Age", "string", doc::CREATION_TIMESTAMP);
const CONTAINERS: Column =
    Column::new("Containers", "string", "Names of each container in the template.").wide();
const IMAGES: Column =
    Column::new("Images", "string", "Images referenced by each container in the template.").wide();

/// Computes one row's cells from an object and the current time.
type CellsFn = fn(&Value, Timestamp) -> Vec<Value>;

/// A kind's printer: its columns and how a row's cells are computed.
fn printer(resource: &Resource) -> (&'static [Column], CellsFn) {
    match (resource.group, resource.kind) {
        ("", "Namespace") => (NAMESPACE_COLUMNS, namespace_cells),
        ("", "Pod") => (POD_COLUMNS, pod_cells),
        ("", "Node") => (NODE_COLUMNS, node_cells),
        ("", "Service") => (SERVICE_COLUMNS, service_cells),
        ("", "Endpoints") => (ENDPOINTS_COLUMNS, endpoints_cells),
        ("", "ConfigMap") => (CONFIGMAP_COLUMNS, configmap_cells),
        ("", "Secret") => (SECRET_COLUMNS, secret_cells),
        ("", "ServiceAccount") => (SERVICE_ACCOUNT_COLUMNS, service_account_cells),
        ("", "Event") | ("events.k8s.io", "Event") => (EVENT_COLUMNS, event_cells),
        ("", "ReplicationController") => (RC_COLUMNS, replication_controller_cells),
        ("", "PodTemplate") => (POD_TEMPLATE_COLUMNS, pod_template_cells),
        ("", "ResourceQuota") => (RESOURCE_QUOTA_COLUMNS, resource_quota_cells),
        ("apps", "Deployment") => (DEPLOYMENT_COLUMNS, deployment_cells),
        ("apps", "ReplicaSet") => (REPLICA_SET_COLUMNS, replica_set_cells),
        ("apps", "StatefulSet") => (STATEFUL_SET_COLUMNS, stateful_set_cells),
        ("apps", "DaemonSet") => (DAEMON_SET_COLUMNS, daemon_set_cells),
        ("apps", "ControllerRevision") => (CONTROLLER_REVISION_COLUMNS, controller_revision_cells),
        ("batch", "Job") => (JOB_COLUMNS, job_cells),
        ("batch", "CronJob") => (CRONJOB_COLUMNS, cronjob_cells),
        ("coordination.k8s.io", "Lease") => (LEASE_COLUMNS, lease_cells),
        ("discovery.k8s.io", "EndpointSlice") => (ENDPOINT_SLICE_COLUMNS, endpoint_slice_cells),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS_COLUMNS, priority_class_cells),
        ("policy", "PodDisruptionBudget") => (PDB_COLUMNS, pdb_cells),
        ("certificates.k8s.io", "CertificateSigningRequest") => (CSR_COLUMNS, csr_cells),
        ("rbac.authorization.k8s.io", "RoleBinding") => (ROLE_BINDING_COLUMNS, binding_cells),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            (CLUSTER_ROLE_BINDING_COLUMNS, binding_cells)
        }
        // Roles, ClusterRoles, LimitRanges and anything new: upstream's default convertor.
        _ => (DEFAULT_COLUMNS, default_cells),
    }
}

/// The table's `columnDefinitions` for a resource.
pub fn column_definitions(resource: &Resource) -> Vec<Value> {
    printer(resource).0.iter().map(|c| c.to_json()).collect()
}

/// One row's `cells` for `object`, in [`column_definitions`] order. Like upstream's server,
/// rows always carry every column, the `-o wide` (priority 1) ones included. Ages are relative
/// to `now`. Any JSON is accepted: missing or mistyped fields print as upstream prints unset ones.
pub fn cells(resource: &Resource, object: &Value, now: Timestamp) -> Vec<Value> {
    (printer(resource).1)(object, now)
}

/// Upstream's `duration.HumanDuration`: about two significant figures, e.g. `45s`, `3m10s`,
/// `3h`, `2d1h`, `2y1d`; `<invalid>` for more than a second in the future.
pub fn human_duration(d: SignedDuration) -> String {
    // Truncated toward zero, like Go's int(d.Seconds()).
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_remainder(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// `3m10s`, or just `3m` when the smaller unit is zero.
fn with_remainder(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

// ---------------------------------------------------------------------------------------------
// Shared cell helpers.

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn or_none(s: &str) -> Value {
    text(if s.is_empty() { "<none>" } else { s })
}

fn name(object: &Value) -> Value {
    text(str_at(object, &["metadata", "name"]))
}

fn age(object: &Value, now: Timestamp) -> Value {
    text(since(timestamp_at(object, &["metadata", "creationTimestamp"]), now))
}

/// Go's zero `time.Time`, which upstream treats as unset.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// An RFC 3339 timestamp field; unset, unparseable or Go's zero time give `None`.
fn timestamp_at(object: &Value, path: &[&str]) -> Option<Timestamp> {
    let parsed: Timestamp = str_at(object, path).parse().ok()?;
    (parsed.as_second() != GO_ZERO_TIME_SECONDS).then_some(parsed)
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
fn since(timestamp: Option<Timestamp>, now: Timestamp) -> String {
    match timestamp {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_owned(),
    }
}

fn is_set(object: &Value, path: &[&str]) -> bool {
    at(object, path).is_some_and(|v| !v.is_null())
}

/// `layoutContainerCells`: container names and images, comma-separated.
fn container_cells(containers: &[Value]) -> [Value; 2] {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    [text(names.join(",")), text(images.join(","))]
}

/// `labels.FormatLabels`: `a=1,b=2` sorted by key, `<none>` when empty.
fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    if pairs.is_empty() { "<none>".to_owned() } else { pairs.join(",") }
}

/// `metav1.FormatLabelSelector` of a `metav1.LabelSelector` field.
fn format_label_selector(object: &Value, path: &[&str]) -> String {
    let selector = at(object, path).unwrap_or(&Value::Null);
    match LabelSelector::from_label_selector_json(selector) {
        Ok(selector) => selector.to_string(),
        Err(_) => "<error>".to_owned(),
    }
}

/// `spec.replicas` of a workload; the API defaults an unset count to 1, so print that.
fn desired_replicas(object: &Value) -> i64 {
    opt_int_at(object, &["spec", "replicas"]).unwrap_or(1)
}

/// Up to three entries, then `+ N more...` (`listWithMoreString`); `<unset>` when empty.
fn list_with_more(entries: Vec<String>) -> String {
    const MAX: usize = 3;
    if entries.len() > MAX {
        return format!("{} + {} more...", entries[..MAX].join(","), entries.len() - MAX);
    }
    if entries.is_empty() { "<unset>".to_owned() } else { entries.join(",") }
}

/// An IntOrString as Go's `IntOrString.String()` prints it.
fn int_or_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn condition_status<'a>(object: &'a Value, path: &[&str], kind: &str) -> Option<&'a str> {
    list_at(object, path)
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .map(|c| str_at(c, &["status"]))
}

// ---------------------------------------------------------------------------------------------
// The default table: kinds without a dedicated printer (`rest.NewDefaultTableConvertor`).

const DEFAULT_COLUMNS: &[Column] =
    &[NAME, Column::new("Created At", "date", doc::CREATION_TIMESTAMP)];

fn default_cells(object: &Value, _now: Timestamp) -> Vec<Value> {
    // An unset creationTimestamp prints as Go's zero time.
    let created = timestamp_at(object, &["metadata", "creationTimestamp"])
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned());
    vec![name(object), text(created)]
}

// ---------------------------------------------------------------------------------------------
// core/v1

const NAMESPACE_COLUMNS: &[Column] =
    &[NAME, Column::new("Status", "string", "The status of the namespace"), AGE];

fn namespace_cells(ns: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(ns), text(str_at(ns, &["status", "phase"])), age(ns, now)]
}

const POD_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last \
         container in this pod has restarted.",
    ),
    AGE,
    Column::new("IP", "string", doc::POD_IP).wide(),
    Column::new("Node", "string", doc::NODE_NAME).wide(),
    Column::new("Nominated Node", "string", doc::NOMINATED_NODE_NAME).wide(),
    Column::new("Readiness Gates", "string", doc::READINESS_GATES).wide(),
];

/// Restart bookkeeping across a pod's containers: how many, and the latest one.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        // Saturating: counts come from users and must not overflow.
        self.count = self.count.saturating_add(int_at(status, &["restartCount"]));
        let finished = timestamp_at(status, &["lastState", "terminated", "finishedAt"]);
        if finished > self.last {
            self.last = finished;
        }
    }
}

/// `printPod`'s READY, STATUS and RESTARTS, computed together as upstream does.
struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: Restarts,
}

fn summarize_pod(pod: &Value) -> PodSummary {
    let init_specs = list_at(pod, &["spec", "initContainers"]);
    let restartable = |name: &str| {
        init_specs.iter().any(|c| str_at(c, &["name"]) == name && is_restartable_init_container(c))
    };
    let sidecars = init_specs.iter().filter(|c| is_restartable_init_container(c)).count();
    let mut summary = PodSummary {
        ready: 0,
        total: list_at(pod, &["spec", "containers"]).len() + sidecars,
        reason: first_non_empty(&[
            str_at(pod, &["status", "reason"]),
            str_at(pod, &["status", "phase"]),
        ])
        .to_owned(),
        restarts: Restarts::default(),
    };
    let gated = list_at(pod, &["status", "conditions"]).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if gated {
        summary.reason = "SchedulingGated".to_owned();
    }

    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (i, status) in list_at(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        summary.restarts.add(status);
        let is_sidecar = restartable(str_at(status, &["name"]));
        if is_sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = map_at(status, &["state", "terminated"]);
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| exit_code(t) == 0) {
            continue;
        }
        if is_sidecar && bool_at(status, &["started"]) {
            summary.ready += usize::from(bool_at(status, &["ready"]));
            continue;
        }
        summary.reason = match terminated {
            Some(t) => format!("Init:{}", termination_reason(t)),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }

    let initialized =
        condition_status(pod, &["status", "conditions"], "Initialized") == Some("True");
    if !initializing || initialized {
        summary.restarts = sidecar_restarts;
        let mut has_running = false;
        for status in list_at(pod, &["status", "containerStatuses"]).iter().rev() {
            summary.restarts.add(status);
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            if !waiting_reason.is_empty() {
                summary.reason = waiting_reason.to_owned();
            } else if let Some(t) = map_at(status, &["state", "terminated"]) {
                summary.reason = termination_reason(t);
            } else if bool_at(status, &["ready"]) && map_at(status, &["state", "running"]).is_some()
            {
                has_running = true;
                summary.ready += 1;
            }
        }
        // A pod whose finished container says Completed while another still runs is running.
        if summary.reason == "Completed" && has_running {
            let ready = list_at(pod, &["status", "conditions"])
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            summary.reason = if ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    if is_set(pod, &["metadata", "deletionTimestamp"]) {
        let phase = str_at(pod, &["status", "phase"]);
        if str_at(pod, &["status", "reason"]) == "NodeLost" {
            summary.reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            summary.reason = "Terminating".to_owned();
        }
    }
    summary
}

/// A sidecar: an init container with `restartPolicy: Always`.
fn is_restartable_init_container(container: &Value) -> bool {
    str_at(container, &["restartPolicy"]) == "Always"
}

fn exit_code(terminated: &Map<String, Value>) -> i64 {
    terminated.get("exitCode").and_then(Value::as_i64).unwrap_or_default()
}

/// A terminated container's reason, or `Signal:N`/`ExitCode:N` when it gave none.
fn termination_reason(terminated: &Map<String, Value>) -> String {
    let signal = terminated.get("signal").and_then(Value::as_i64).unwrap_or_default();
    match terminated.get("reason").and_then(Value::as_str).unwrap_or_default() {
        "" if signal != 0 => format!("Signal:{signal}"),
        "" => format!("ExitCode:{}", exit_code(terminated)),
        reason => reason.to_owned(),
    }
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let summary = summarize_pod(pod);
    let restarts = match summary.restarts {
        Restarts { count, last: Some(last) } if count != 0 => {
            format!("{count} ({} ago)", since(Some(last), now))
        }
        Restarts { count, .. } => count.to_string(),
    };
    // Upstream reads podIPs; objects that only carry podIP get it copied over on conversion.
    let ip = match list_at(pod, &["status", "podIPs"]).first() {
        Some(first) => str_at(first, &["ip"]),
        None => str_at(pod, &["status", "podIP"]),
    };
    vec![
        name(pod),
        text(format!("{}/{}", summary.ready, summary.total)),
        text(summary.reason),
        text(restarts),
        age(pod, now),
        or_none(ip),
        or_none(str_at(pod, &["spec", "nodeName"])),
        or_none(str_at(pod, &["status", "nominatedNodeName"])),
        text(readiness_gates(pod)),
    ]
}

/// `true/total` of the pod's readiness gates, `<none>` without gates.
fn readiness_gates(pod: &Value) -> String {
    let gates = list_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_owned();
    }
    let passing = gates
        .iter()
        .filter(|g| {
            condition_status(pod, &["status", "conditions"], str_at(g, &["conditionType"]))
                == Some("True")
        })
        .count();
    format!("{passing}/{}", gates.len())
}

const NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", doc::KUBELET_VERSION),
    Column::new("Internal-IP", "string", doc::NODE_ADDRESSES).wide(),
    Column::new("External-IP", "string", doc::NODE_ADDRESSES).wide(),
    Column::new("OS-Image", "string", doc::OS_IMAGE).wide(),
    Column::new("Kernel-Version", "string", doc::KERNEL_VERSION).wide(),
    Column::new("Container-Runtime", "string", doc::CONTAINER_RUNTIME_VERSION).wide(),
];

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let info = |field: &str| match str_at(node, &["status", "nodeInfo", field]) {
        "" => text("<unknown>"),
        value => text(value),
    };
    vec![
        name(node),
        text(node_status(node)),
        or_none(&node_roles(node).join(",")),
        age(node, now),
        text(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        text(node_address(node, "InternalIP")),
        text(node_address(node, "ExternalIP")),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

/// `Ready`, `NotReady` or `Unknown`, plus `SchedulingDisabled` when cordoned.
fn node_status(node: &Value) -> String {
    // Upstream keys conditions by type in a map, so the last Ready condition wins.
    let ready = list_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
        .map(|c| str_at(c, &["status"]));
    let mut status = vec![match ready {
        Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    status.join(",")
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the `kubernetes.io/role` value.
fn node_roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = map_at(node, &["metadata", "labels"])
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| match key.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_owned()),
            Some(_) => None,
            None if key == "kubernetes.io/role" => {
                value.as_str().filter(|v| !v.is_empty()).map(str::to_owned)
            }
            None => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

fn node_address(node: &Value, kind: &str) -> String {
    list_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == kind)
        .map_or("<none>", |a| str_at(a, &["address"]))
        .to_owned()
}

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", doc::SERVICE_TYPE),
    Column::new("Cluster-IP", "string", doc::SERVICE_CLUSTER_IP),
    Column::new("External-IP", "string", doc::SERVICE_EXTERNAL_IPS),
    Column::new("Port(s)", "string", doc::SERVICE_PORTS),
    AGE,
    Column::new("Selector", "string", doc::SERVICE_SELECTOR).wide(),
];

fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    // The API defaults an unset type to ClusterIP; print the defaulted value.
    let kind = match str_at(svc, &["spec", "type"]) {
        "" if !is_set(svc, &["spec", "type"]) => "ClusterIP",
        kind => kind,
    };
    // Upstream prints clusterIPs[0]; the API fills clusterIPs from clusterIP on create.
    let cluster_ip = match list_at(svc, &["spec", "clusterIPs"]).first() {
        Some(first) => first.as_str().unwrap_or_default(),
        None => str_at(svc, &["spec", "clusterIP"]),
    };
    let ports = service_ports(svc);
    vec![
        name(svc),
        text(kind),
        or_none(cluster_ip),
        text(service_external_ip(svc, kind)),
        or_none(&ports),
        age(svc, now),
        text(format_labels(map_at(svc, &["spec", "selector"]))),
    ]
}

fn strings_at<'a>(object: &'a Value, path: &[&str]) -> Vec<&'a str> {
    list_at(object, path).iter().map(|v| v.as_str().unwrap_or_default()).collect()
}

/// `getServiceExternalIP`, never truncated since the server prints wide.
fn service_external_ip(svc: &Value, kind: &str) -> String {
    let external_ips = strings_at(svc, &["spec", "externalIPs"]);
    match kind {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut ingress: Vec<&str> = list_at(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .map(|i| first_non_empty(&[str_at(i, &["ip"]), str_at(i, &["hostname"])]))
                .filter(|s| !s.is_empty())
                .collect();
            ingress.sort_unstable();
            ingress.dedup();
            ingress.extend(external_ips);
            if ingress.is_empty() { "<pending>".to_owned() } else { ingress.join(",") }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// `80/TCP,443:30443/TCP`.
fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = list_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            // The API defaults an unset protocol to TCP.
            let protocol = match str_at(p, &["protocol"]) {
                "" => "TCP",
                protocol => protocol,
            };
            match int_at(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    ports.join(",")
}

const ENDPOINTS_COLUMNS: &[Column] =
    &[NAME, Column::new("Endpoints", "string", doc::ENDPOINTS_SUBSETS), AGE];

fn endpoints_cells(endpoints: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(endpoints), text(format_endpoints(endpoints)), age(endpoints, now)]
}

/// `formatEndpoints`: the first three `ip:port` pairs (bare IPs for port-less subsets).
fn format_endpoints(endpoints: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list_at(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut shown = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = list_at(subset, &["addresses"]);
        let ports = list_at(subset, &["ports"]);
        let ip = |a: &Value| str_at(a, &["ip"]).to_owned();
        if ports.is_empty() {
            count += addresses.len();
            shown.extend(addresses.iter().map(ip).take(MAX.saturating_sub(shown.len())));
            continue;
        }
        for port in ports {
            count += addresses.len();
            let port = int_at(port, &["port"]);
            let pairs = addresses.iter().map(|a| join_host_port(str_at(a, &["ip"]), port));
            shown.extend(pairs.take(MAX.saturating_sub(shown.len())));
        }
    }
    let listed = shown.join(",");
    if count > shown.len() { format!("{listed} + {} more...", count - MAX) } else { listed }
}

/// Go's `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

const CONFIGMAP_COLUMNS: &[Column] =
    &[NAME, Column::new("Data", "string", doc::CONFIGMAP_DATA), AGE];

fn configmap_cells(cm: &Value, now: Timestamp) -> Vec<Value> {
    let entries = |field: &str| map_at(cm, &[field]).map_or(0, Map::len);
    let data = entries("data") + entries("binaryData");
    vec![name(cm), Value::from(data), age(cm, now)]
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", doc::SECRET_TYPE),
    Column::new("Data", "string", doc::SECRET_DATA),
    AGE,
];

fn secret_cells(secret: &Value, now: Timestamp) -> Vec<Value> {
    // stringData merges into data when a Secret is decoded, so count the union of keys.
    let mut keys: Vec<&String> = ["data", "stringData"]
        .iter()
        .filter_map(|field| map_at(secret, &[field]))
        .flat_map(Map::keys)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    vec![name(secret), text(str_at(secret, &["type"])), Value::from(keys.len()), age(secret, now)]
}

const SERVICE_ACCOUNT_COLUMNS: &[Column] =
    &[NAME, Column::new("Secrets", "string", doc::SERVICE_ACCOUNT_SECRETS), AGE];

fn service_account_cells(sa: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(sa), Value::from(list_at(sa, &["secrets"]).len()), age(sa, now)]
}

const EVENT_COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", doc::EVENT_LAST_TIMESTAMP),
    Column::new("Type", "string", doc::EVENT_TYPE),
    Column::new("Reason", "string", doc::EVENT_REASON),
    Column::new("Object", "string", doc::EVENT_INVOLVED_OBJECT),
    Column::new("Subobject", "string", doc::FIELD_PATH).wide(),
    Column::new("Source", "string", doc::EVENT_SOURCE).wide(),
    Column::new("Message", "string", doc::EVENT_MESSAGE),
    Column::new("First Seen", "string", doc::EVENT_FIRST_TIMESTAMP).wide(),
    Column::new("Count", "string", doc::EVENT_COUNT).wide(),
    Column { format: "name", ..Column::new("Name", "string", doc::NAME).wide() },
];

/// Prints both Event APIs, as upstream converts both to one type: each field is read under its
/// core/v1 name, then under its events.k8s.io/v1 name (the two sets of names never collide).
fn event_cells(event: &Value, now: Timestamp) -> Vec<Value> {
    let time = |core: &str, new: &str| {
        timestamp_at(event, &[core]).or_else(|| timestamp_at(event, &[new]))
    };
    let first_seen = match time("firstTimestamp", "deprecatedFirstTimestamp") {
        Some(first) => since(Some(first), now),
        None => since(timestamp_at(event, &["eventTime"]), now),
    };
    let mut last_seen = match time("lastTimestamp", "deprecatedLastTimestamp") {
        Some(last) => since(Some(last), now),
        None => first_seen.clone(),
    };
    let mut count = opt_int_at(event, &["count"])
        .or_else(|| opt_int_at(event, &["deprecatedCount"]))
        .unwrap_or_default();
    if is_set(event, &["series"]) {
        last_seen = since(timestamp_at(event, &["series", "lastObservedTime"]), now);
        count = int_at(event, &["series", "count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = event_regarding(event, "kind").to_lowercase();
    let object = match event_regarding(event, "name") {
        involved if involved.is_empty() => kind,
        involved => format!("{kind}/{involved}"),
    };
    let legacy = |field: &str| {
        first_non_empty(&[
            str_at(event, &["source", field]),
            str_at(event, &["deprecatedSource", field]),
        ])
    };
    let reporting_controller = event_reporting_controller(event);
    let component = first_non_empty(&[legacy("component"), &reporting_controller]);
    let instance = first_non_empty(&[legacy("host"), str_at(event, &["reportingInstance"])]);
    let source =
        if instance.is_empty() { component.to_owned() } else { format!("{component}, {instance}") };
    let message = first_non_empty(&[str_at(event, &["message"]), str_at(event, &["note"])]);
    vec![
        text(last_seen),
        text(str_at(event, &["type"])),
        text(str_at(event, &["reason"])),
        text(object),
        text(event_regarding(event, "fieldPath")),
        text(source),
        text(message.trim()),
        text(first_seen),
        Value::from(count),
        name(event),
    ]
}

const RC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", doc::RC_SPEC_REPLICAS),
    Column::new("Current", "integer", doc::RC_STATUS_REPLICAS),
    Column::new("Ready", "integer", doc::RC_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::RC_SELECTOR).wide(),
];

fn replication_controller_cells(rc: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(list_at(rc, &["spec", "template", "spec", "containers"]));
    vec![
        name(rc),
        Value::from(desired_replicas(rc)),
        Value::from(int_at(rc, &["status", "replicas"])),
        Value::from(int_at(rc, &["status", "readyReplicas"])),
        age(rc, now),
        names,
        images,
        text(format_labels(map_at(rc, &["spec", "selector"]))),
    ]
}

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Containers", "string", "Names of each container in the template."),
    Column::new("Images", "string", "Images referenced by each container in the template."),
    Column::new("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template_cells(template: &Value, _now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(list_at(template, &["template", "spec", "containers"]));
    let labels = format_labels(map_at(template, &["template", "metadata", "labels"]));
    vec![name(template), names, images, text(labels)]
}

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent \
         of contention on the node.",
    ),
    AGE,
];

/// `cpu: 100m/1, pods: 2/10` per column, `limits.*` resources in the Limit column.
fn resource_quota_cells(quota: &Value, now: Timestamp) -> Vec<Value> {
    let hard = map_at(quota, &["status", "hard"]);
    let mut resources: Vec<&String> = hard.into_iter().flat_map(Map::keys).collect();
    resources.sort_unstable();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let used = at(quota, &["status", "used", resource.as_str()]).and_then(int_or_string);
        let hard = hard.and_then(|h| h.get(resource)).and_then(int_or_string).unwrap_or_default();
        // Quantities print as stored; upstream would re-canonicalise ("1000m" as "1").
        let entry = format!("{resource}: {}/{hard}", used.as_deref().unwrap_or("0"));
        if resource.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![name(quota), text(requests.join(", ")), text(limits.join(", ")), age(quota, now)]
}

// ---------------------------------------------------------------------------------------------
// apps/v1

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "string", doc::DEPLOYMENT_UPDATED),
    Column::new("Available", "string", doc::DEPLOYMENT_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::DEPLOYMENT_SELECTOR).wide(),
];

fn deployment_cells(deploy: &Value, now: Timestamp) -> Vec<Value> {
    let ready = int_at(deploy, &["status", "readyReplicas"]);
    let [names, images] =
        container_cells(list_at(deploy, &["spec", "template", "spec", "containers"]));
    // Unlike the other workloads, upstream prints the bare selector string here.
    let selector = at(deploy, &["spec", "selector"]).unwrap_or(&Value::Null);
    let selector = LabelSelector::from_label_selector_json(selector)
        .map_or_else(|_| "<invalid>".to_owned(), |s| s.to_query());
    vec![
        name(deploy),
        text(format!("{ready}/{}", desired_replicas(deploy))),
        Value::from(int_at(deploy, &["status", "updatedReplicas"])),
        Value::from(int_at(deploy, &["status", "availableReplicas"])),
        age(deploy, now),
        names,
        images,
        text(selector),
    ]
}

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", doc::RS_SPEC_REPLICAS),
    Column::new("Current", "integer", doc::RS_STATUS_REPLICAS),
    Column::new("Ready", "integer", doc::RS_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::RS_SELECTOR).wide(),
];

fn replica_set_cells(rs: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(list_at(rs, &["spec", "template", "spec", "containers"]));
    vec![
        name(rs),
        Value::from(desired_replicas(rs)),
        Value::from(int_at(rs, &["status", "replicas"])),
        Value::from(int_at(rs, &["status", "readyReplicas"])),
        age(rs, now),
        names,
        images,
        text(format_label_selector(rs, &["spec", "selector"])),
    ]
}

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set_cells(sts: &Value, now: Timestamp) -> Vec<Value> {
    let ready = int_at(sts, &["status", "readyReplicas"]);
    let [names, images] =
        container_cells(list_at(sts, &["spec", "template", "spec", "containers"]));
    vec![
        name(sts),
        text(format!("{ready}/{}", desired_replicas(sts))),
        age(sts, now),
        names,
        images,
    ]
}

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", doc::DS_DESIRED),
    Column::new("Current", "integer", doc::DS_CURRENT),
    Column::new("Ready", "integer", doc::DS_READY),
    Column::new("Up-to-date", "integer", doc::DS_UPDATED),
    Column::new("Available", "integer", doc::DS_AVAILABLE),
    Column::new("Node Selector", "string", doc::NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::DS_SELECTOR).wide(),
];

fn daemon_set_cells(ds: &Value, now: Timestamp) -> Vec<Value> {
    let count = |field: &str| Value::from(int_at(ds, &["status", field]));
    let [names, images] = container_cells(list_at(ds, &["spec", "template", "spec", "containers"]));
    vec![
        name(ds),
        count("desiredNumberScheduled"),
        count("currentNumberScheduled"),
        count("numberReady"),
        count("updatedNumberScheduled"),
        count("numberAvailable"),
        text(format_labels(map_at(ds, &["spec", "template", "spec", "nodeSelector"]))),
        age(ds, now),
        names,
        images,
        text(format_label_selector(ds, &["spec", "selector"])),
    ]
}

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new("Revision", "string", doc::CONTROLLER_REVISION),
    AGE,
];

fn controller_revision_cells(revision: &Value, now: Timestamp) -> Vec<Value> {
    let controller = list_at(revision, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| bool_at(r, &["controller"]))
        .map_or_else(|| "<none>".to_owned(), controller_name);
    vec![
        name(revision),
        text(controller),
        Value::from(int_at(revision, &["revision"])),
        age(revision, now),
    ]
}

/// `statefulset.apps/web`: the owner's lower-cased group-kind and name.
fn controller_name(owner: &Value) -> String {
    let name = str_at(owner, &["name"]);
    let kind = str_at(owner, &["kind"]);
    // schema.ParseGroupVersion: "v1" has no group, "apps/v1" has one.
    let group = match str_at(owner, &["apiVersion"]).split_once('/') {
        Some((group, version)) if !version.contains('/') => group,
        // Upstream fails the whole table on a malformed apiVersion; print just the name.
        Some(_) => return name.to_owned(),
        None => "",
    };
    match (group, kind) {
        ("", "") => name.to_owned(),
        ("", kind) => format!("{}/{name}", kind.to_lowercase()),
        (group, kind) => format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase()),
    }
}

// ---------------------------------------------------------------------------------------------
// batch/v1

const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new("Completions", "string", doc::JOB_SUCCEEDED),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::JOB_SELECTOR).wide(),
];

fn job_cells(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int_at(job, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match int_at(job, &["spec", "parallelism"]) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let started = timestamp_at(job, &["status", "startTime"]);
    let duration = match (started, timestamp_at(job, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let [names, images] =
        container_cells(list_at(job, &["spec", "template", "spec", "containers"]));
    vec![
        name(job),
        text(job_status(job)),
        text(completions),
        text(duration),
        age(job, now),
        names,
        images,
        text(format_label_selector(job, &["spec", "selector"])),
    ]
}

fn job_status(job: &Value) -> &'static str {
    let condition = |kind| condition_status(job, &["status", "conditions"], kind) == Some("True");
    if condition("Complete") {
        "Complete"
    } else if condition("Failed") {
        "Failed"
    } else if is_set(job, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if condition("Suspended") {
        "Suspended"
    } else if condition("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

const CRONJOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", doc::CRONJOB_SCHEDULE),
    Column::new("Timezone", "string", doc::CRONJOB_TIME_ZONE),
    Column::new("Suspend", "boolean", doc::CRONJOB_SUSPEND),
    Column::new("Active", "integer", doc::CRONJOB_ACTIVE),
    Column::new("Last Schedule", "string", doc::CRONJOB_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::new("Selector", "string", doc::JOB_SELECTOR).wide(),
];

fn cronjob_cells(cronjob: &Value, now: Timestamp) -> Vec<Value> {
    let time_zone = at(cronjob, &["spec", "timeZone"]).and_then(Value::as_str).unwrap_or("<none>");
    // Upstream's printBoolPtr: a string, although the column is declared boolean.
    let suspend = match at(cronjob, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let last_schedule = if is_set(cronjob, &["status", "lastScheduleTime"]) {
        since(timestamp_at(cronjob, &["status", "lastScheduleTime"]), now)
    } else {
        "<none>".to_owned()
    };
    let template = &["spec", "jobTemplate", "spec", "template", "spec", "containers"];
    let [names, images] = container_cells(list_at(cronjob, template));
    vec![
        name(cronjob),
        text(str_at(cronjob, &["spec", "schedule"])),
        text(time_zone),
        text(suspend),
        Value::from(list_at(cronjob, &["status", "active"]).len()),
        text(last_schedule),
        age(cronjob, now),
        names,
        images,
        text(format_label_selector(cronjob, &["spec", "jobTemplate", "spec", "selector"])),
    ]
}

// ---------------------------------------------------------------------------------------------
// Other groups

const LEASE_COLUMNS: &[Column] = &[NAME, Column::new("Holder", "string", doc::LEASE_HOLDER), AGE];

fn lease_cells(lease: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(lease), text(str_at(lease, &["spec", "holderIdentity"])), age(lease, now)]
}

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", doc::SLICE_ADDRESS_TYPE),
    Column::new("Ports", "string", doc::SLICE_PORTS),
    Column::new("Endpoints", "string", doc::SLICE_ENDPOINTS),
    AGE,
];

fn endpoint_slice_cells(slice: &Value, now: Timestamp) -> Vec<Value> {
    // A port is shown by number, else by name, else as "*" (all ports).
    let ports = list_at(slice, &["ports"])
        .iter()
        .map(|p| match (opt_int_at(p, &["port"]), at(p, &["name"]).and_then(Value::as_str)) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_owned(),
            (None, None) => "*".to_owned(),
        })
        .collect();
    let addresses = list_at(slice, &["endpoints"])
        .iter()
        .flat_map(|e| list_at(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    vec![
        name(slice),
        text(str_at(slice, &["addressType"])),
        text(list_with_more(ports)),
        text(list_with_more(addresses)),
        age(slice, now),
    ]
}

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", doc::PRIORITY_VALUE),
    Column::new("Global-Default", "boolean", doc::PRIORITY_GLOBAL_DEFAULT),
    AGE,
    // Upstream adds this column only to wide output but leaves its priority at 0.
    Column::new("PreemptionPolicy", "string", doc::PRIORITY_PREEMPTION_POLICY),
];

fn priority_class_cells(class: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(class),
        Value::from(int_at(class, &["value"])),
        Value::Bool(bool_at(class, &["globalDefault"])),
        age(class, now),
        text(str_at(class, &["preemptionPolicy"])),
    ]
}

const PDB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Min Available", "string", "The minimum number of pods that must be available."),
    Column::new("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb_cells(pdb: &Value, now: Timestamp) -> Vec<Value> {
    let bound = |field: &str| {
        at(pdb, &["spec", field]).and_then(int_or_string).unwrap_or_else(|| "N/A".to_owned())
    };
    vec![
        name(pdb),
        text(bound("minAvailable")),
        text(bound("maxUnavailable")),
        Value::from(int_at(pdb, &["status", "disruptionsAllowed"])),
        age(pdb, now),
    ]
}

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    Column::new("SignerName", "string", doc::CSR_SIGNER_NAME),
    Column::new("Requestor", "string", doc::CSR_REQUEST),
    Column::new("RequestedDuration", "string", doc::CSR_EXPIRATION_SECONDS),
    Column::new("Condition", "string", doc::CSR_CONDITIONS),
];

fn csr_cells(csr: &Value, now: Timestamp) -> Vec<Value> {
    let duration = opt_int_at(csr, &["spec", "expirationSeconds"])
        .map_or_else(|| "<none>".to_owned(), |s| human_duration(SignedDuration::from_secs(s)));
    vec![
        name(csr),
        age(csr, now),
        or_none(str_at(csr, &["spec", "signerName"])),
        text(str_at(csr, &["spec", "username"])),
        text(duration),
        text(csr_condition(csr)),
    ]
}

/// `Approved`, `Denied` or `Pending`, then `,Failed` and `,Issued` as they apply.
fn csr_condition(csr: &Value) -> String {
    let conditions = list_at(csr, &["status", "conditions"]);
    let has = |kind: &str| conditions.iter().any(|c| str_at(c, &["type"]) == kind);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", doc::ROLE_BINDING_ROLE_REF),
    AGE,
    Column::new("Users", "string", "Users in the roleBinding").wide(),
    Column::new("Groups", "string", "Groups in the roleBinding").wide(),
    Column::new("ServiceAccounts", "string", "ServiceAccounts in the roleBinding").wide(),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", doc::CLUSTER_ROLE_BINDING_ROLE_REF),
    AGE,
    Column::new("Users", "string", "Users in the clusterRoleBinding").wide(),
    Column::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
    Column::new("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding").wide(),
];

fn binding_cells(binding: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(binding, &["roleRef", "kind"]),
        str_at(binding, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in list_at(binding, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "User" => users.push(subject_name.to_owned()),
            "Group" => groups.push(subject_name.to_owned()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", str_at(subject, &["namespace"])))
            }
            _ => {}
        }
    }
    vec![
        name(binding),
        text(role),
        age(binding, now),
        text(users.join(", ")),
        text(groups.join(", ")),
        text(service_accounts.join(", ")),
    ]
}

/// Column descriptions: upstream's `SwaggerDoc()` texts of the fields each column shows (taken
/// from the v1 types where upstream cites an older beta type with the same field).
mod doc {
    pub const NAME: &str = "Name must be unique within a namespace. Is required when creating \
        resources, although some resources may allow a client to request the generation of an \
        appropriate name automatically. Name is primarily intended for creation idempotence and \
        configuration definition. Cannot be updated. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server \
        time when this object was created. It is not guaranteed to be set in happens-before order \
        across separate operations. Clients may not set this value. It is represented in RFC3339 \
        form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: \
        https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the \
        cluster. Empty if not yet allocated.";
    pub const NOMINATED_NODE_NAME: &str = "nominatedNodeName is set only when this pod preempts \
        other pods on the node, but it cannot be scheduled right away as preemption victims \
        receive their graceful termination periods. This field does not guarantee that the pod \
        will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other \
        nodes become available sooner. Scheduler may also decide to give the resources on this \
        node to a higher priority pod that is created after preemption. As a result, this field \
        may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, \
        this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once \
        this field is set, the kubelet for this node becomes responsible for the lifecycle of this \
        pod. This field should not be used to express a desire for the pod to be scheduled on a \
        specific node. \
        https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod \
        readiness. A pod is ready when all its containers are ready AND all conditions specified \
        in the readiness gates have status equal to \"True\" More info: \
        https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
    pub const NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to \
        fit on a node. Selector which must match a node's labels for the pod to be scheduled on \
        that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
    pub const RC_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a \
        pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub const RC_SELECTOR: &str = "Selector is a label query over pods that should match the \
        Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod \
        template. Label keys and values that must match in order to be controlled by this \
        replication controller, if empty defaulted to labels on Pod template. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of \
        replicas. More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
    pub const RC_READY_REPLICAS: &str =
        "The number of ready replicas for this replication controller.";
    pub const RS_SPEC_REPLICAS: &str = "Replicas is the number of desired pods. This is a pointer \
        to distinguish between explicit zero and unspecified. Defaults to 1. More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const RS_SELECTOR: &str = "Selector is a label query over pods that should match the \
        replica count. Label keys and values that must match in order to be controlled by this \
        replica set. It must match the pod template's labels. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of \
        non-terminating pods. More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/replicaset";
    pub const RS_READY_REPLICAS: &str =
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.";
    pub const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod \
        (including nodes correctly running the daemon pod). More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and \
        are supposed to run the daemon pod. More info: \
        https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
    pub const DS_READY: &str = "numberReady is the number of nodes that should be running the \
        daemon pod and have one or more of the daemon pod running with a Ready Condition.";
    pub const DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
    pub const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and \
        have one or more of the daemon pod running and available (ready for at least \
        spec.minReadySeconds)";
    pub const DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. \
        Must match in order to be controlled. It must match the pod template's labels. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value \
        increases monotonically for a given spec. However, it may decrease in reaction to scale \
        down of elastic indexed jobs.";
    pub const JOB_SELECTOR: &str = "A label query over pods that should match the pod count. \
        Normally, the system sets this field for you. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
    pub const CRONJOB_SCHEDULE: &str =
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub const CRONJOB_TIME_ZONE: &str = "The time zone name for the given schedule, see \
        https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will \
        default to the time zone of the kube-controller-manager process. The set of valid time \
        zone names and the time zone offset is loaded from the system-wide time zone database by \
        the API server during CronJob validation and the controller manager during execution. If \
        no system-wide time zone database can be found a bundled version of the database is used \
        instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to \
        a change in host configuration, the controller will stop creating new new Jobs and will \
        create a system event with the reason UnknownTimeZone. More information can be found in \
        https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub const CRONJOB_SUSPEND: &str = "This flag tells the controller to suspend subsequent \
        executions, it does not apply to already started executions.  Defaults to false.";
    pub const CRONJOB_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub const CRONJOB_LAST_SCHEDULE: &str =
        "Information when was the last time the job was successfully scheduled.";
    pub const SERVICE_TYPE: &str = "type determines how the Service is exposed. Defaults to \
        ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \
        \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. \
        Endpoints are determined by the selector or if that is not specified, by manual \
        construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no \
        virtual IP is allocated and the endpoints are published as a set of endpoints rather than \
        a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which \
        routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and \
        creates an external load-balancer (if supported in the current cloud) which routes to the \
        same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified \
        externalName. Several other fields do not apply to ExternalName services. More info: \
        https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SERVICE_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is \
        usually assigned randomly. If an address is specified manually, is in-range (as per system \
        configuration), and is not in use, it will be allocated to the service; otherwise creation \
        of the service will fail. This field may not be changed through updates unless the type \
        field is also being changed to ExternalName (which requires this field to be blank) or the \
        type field is being changed from ExternalName (in which case this field may optionally be \
        specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid \
        IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which \
        is useful when direct endpoint connections are preferred and proxying is not required.  \
        Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified \
        when creating a Service of type ExternalName, creation will fail. This field will be wiped \
        when updating a Service to type ExternalName. More info: \
        https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes \
        in the cluster will also accept traffic for this service.  These IPs are not managed by \
        Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this \
        IP.  A common example is external load-balancers that are not part of the Kubernetes \
        system.";
    pub const SERVICE_PORTS: &str = "The list of ports that are exposed by this service. More \
        info: \
        https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SELECTOR: &str = "Route service traffic to pods with label keys and values \
        matching this selector. If empty or not present, the service is assumed to have an \
        external process managing its endpoints, which Kubernetes will not modify. Only applies to \
        types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: \
        https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. \
        Addresses are placed into subsets according to the IPs they share. A single address with \
        multiple ports, some of which are ready and some of which are not (because they come from \
        different containers) will result in the address being displayed in different subsets for \
        the different ports. No address will appear in both Addresses and NotReadyAddresses in the \
        same subset. Sets of addresses and ports that comprise a service.";
    pub const KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub const OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const KERNEL_VERSION: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const CONTAINER_RUNTIME_VERSION: &str = "ContainerRuntime Version reported by the node \
        through runtime remote API (e.g. containerd://1.4.2).";
    pub const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud \
        provider, if available. More info: \
        https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is \
        declared as mergeable, but the merge key is not sufficiently unique, which can cause data \
        corruption when it is merged. Callers should instead use a full-replacement patch. See \
        https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change \
        during the lifetime of a Node. However, there are some exceptions where this may not be \
        possible, such as Pods that inherit a Node's address in its own status or consumers of the \
        downward API (status.hostIP).";
    pub const EVENT_LAST_TIMESTAMP: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that \
        gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED_OBJECT: &str = "The object that this event is about.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TIMESTAMP: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";
    pub const FIELD_PATH: &str = "If referring to a piece of an object instead of an entire \
        object, this string should contain a valid JSON/Go field access statement, such as \
        desiredState.manifest.containers[2]. For example, if the object reference is to a \
        container within a pod, this would take on a value like: \"spec.containers{name}\" (where \
        \"name\" refers to the name of the container that triggered the event) or if no container \
        name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax \
        is chosen only to have some well-defined way of referencing a part of an object.";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More \
        info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of \
        alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a \
        base64 encoded string, representing the arbitrary (possibly non-string) data value here. \
        Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const SERVICE_ACCOUNT_SECRETS: &str = "Secrets is a list of the secrets in the same \
        namespace that pods running using this ServiceAccount are allowed to use. Pods are only \
        limited to this list if this service account has a \
        \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \
        \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer \
        separate namespaces to isolate access to mounted secrets. This field should not be used to \
        find auto-generated service account token secrets for use outside of pods. Instead, tokens \
        can be requested directly using the TokenRequest API, or service account token secrets can \
        be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub const DEPLOYMENT_UPDATED: &str = "Total number of non-terminating pods targeted by this \
        deployment that have the desired template spec.";
    pub const DEPLOYMENT_AVAILABLE: &str = "Total number of available non-terminating pods (ready \
        for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOYMENT_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose \
        pods are selected by this will be the ones affected by this deployment. It must match the \
        pod template's labels.";
    pub const CONFIGMAP_DATA: &str = "Data contains the configuration data. Each key must consist \
        of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use \
        the BinaryData field. The keys stored in Data must not overlap with the keys in the \
        BinaryData field, this is enforced during validation process.";
    pub const ROLE_BINDING_ROLE_REF: &str = "RoleRef can reference a Role in the current namespace \
        or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the \
        Authorizer must return an error. This field is immutable.";
    pub const CLUSTER_ROLE_BINDING_ROLE_REF: &str = "RoleRef can only reference a ClusterRole in \
        the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an \
        error. This field is immutable.";
    pub const CSR_SIGNER_NAME: &str = "signerName indicates the requested signer, and is a \
        qualified name.\n\nList/watch requests for CertificateSigningRequests can filter on this \
        field using a \"spec.signerName=NAME\" fieldSelector.\n\nWell-known Kubernetes signers \
        are:\n 1. \"kubernetes.io/kube-apiserver-client\": issues client certificates that can be \
        used to authenticate to kube-apiserver.\n  Requests for this signer are never \
        auto-approved by kube-controller-manager, can be issued by the \"csrsigning\" controller \
        in kube-controller-manager.\n 2. \"kubernetes.io/kube-apiserver-client-kubelet\": issues \
        client certificates that kubelets use to authenticate to kube-apiserver.\n  Requests for \
        this signer can be auto-approved by the \"csrapproving\" controller in \
        kube-controller-manager, and can be issued by the \"csrsigning\" controller in \
        kube-controller-manager.\n 3. \"kubernetes.io/kubelet-serving\" issues serving \
        certificates that kubelets use to serve TLS endpoints, which kube-apiserver can connect to \
        securely.\n  Requests for this signer are never auto-approved by kube-controller-manager, \
        and can be issued by the \"csrsigning\" controller in kube-controller-manager.\n\nMore \
        details are available at \
        https://k8s.io/docs/reference/access-authn-authz/certificate-signing-requests/#kubernetes-signers\n\nCustom \
        signerNames can also be specified. The signer defines:\n 1. Trust distribution: how trust \
        (CA bundles) are distributed.\n 2. Permitted subjects: and behavior when a disallowed \
        subject is requested.\n 3. Required, permitted, or forbidden x509 extensions in the \
        request (including whether subjectAltNames are allowed, which types, restrictions on \
        allowed values) and behavior when a disallowed extension is requested.\n 4. Required, \
        permitted, or forbidden key usages / extended key usages.\n 5. Expiration/certificate \
        lifetime: whether it is fixed by the signer, configurable by the admin.\n 6. Whether or \
        not requests for CA certificates are allowed.";
    pub const CSR_REQUEST: &str = "request contains an x509 certificate signing request encoded in \
        a \"CERTIFICATE REQUEST\" PEM block. When serialized as JSON or YAML, the data is \
        additionally base64-encoded.";
    pub const CSR_EXPIRATION_SECONDS: &str = "expirationSeconds is the requested duration of \
        validity of the issued certificate. The certificate signer may issue a certificate with a \
        different validity duration so a client must check the delta between the notBefore and and \
        notAfter fields in the issued certificate to determine the actual duration.\n\nThe v1.22+ \
        in-tree implementations of the well-known Kubernetes signers will honor this field as long \
        as the requested duration is not greater than the maximum duration they will honor per the \
        --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate \
        signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware \
        of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer whose \
        configured maximum is shorter than the requested duration\n  3. Signer whose configured \
        minimum is longer than the requested duration\n\nThe minimum valid value for \
        expirationSeconds is 600, i.e. 10 minutes.";
    pub const CSR_CONDITIONS: &str = "conditions applied to the request. Known conditions are \
        \"Approved\", \"Denied\", and \"Failed\".";
    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a \
        current lease. If Coordinated Leader Election is used, the holder identity must be equal \
        to the elected LeaseCandidate.metadata.name field.";
    pub const CONTROLLER_REVISION: &str =
        "Revision indicates the revision of the state represented by Data.";
    pub const PRIORITY_VALUE: &str = "value represents the integer value of this priority class. \
        This is the actual priority that pods receive when they have the name of this class in \
        their pod spec.";
    pub const PRIORITY_GLOBAL_DEFAULT: &str = "globalDefault specifies whether this PriorityClass \
        should be considered as the default priority for pods that do not have any priority class. \
        Only one PriorityClass can be marked as `globalDefault`. However, if more than one \
        PriorityClasses exists with their `globalDefault` field set to true, the smallest value of \
        such global default PriorityClasses will be used as the default priority.";
    pub const PRIORITY_PREEMPTION_POLICY: &str = "preemptionPolicy is the Policy for preempting \
        pods with lower priority. One of Never, PreemptLowerPriority. Defaults to \
        PreemptLowerPriority if unset.";
    pub const SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by \
        this EndpointSlice. All addresses in this slice must be the same type. This field is \
        immutable after creation. The following address types are currently supported: * IPv4: \
        Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully \
        Qualified Domain Name. (Deprecated) The EndpointSlice controller only generates, and \
        kube-proxy only processes, slices of addressType \"IPv4\" and \"IPv6\". No semantics are \
        defined for the \"FQDN\" type.";
    pub const SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each \
        endpoint in this slice. Each port must have a unique name. Each slice may include a \
        maximum of 100 ports. Services always have at least 1 port, so EndpointSlices generated by \
        the EndpointSlice controller will likewise always have at least 1 port. EndpointSlices \
        used for other purposes may have an empty ports list.";
    pub const SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each \
        slice may include a maximum of 1000 endpoints.";
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::{RESOURCES, find};

    const NOW: &str = "2024-05-01T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    /// `NOW` minus a duration, as an RFC 3339 string.
    fn ago(seconds: i64) -> String {
        now().checked_sub(SignedDuration::from_secs(seconds)).unwrap().to_string()
    }

    fn row(group: &str, plural: &str, object: Value) -> Vec<Value> {
        let resource = find(group, "v1", plural).unwrap();
        cells(resource, &object, now())
    }

    fn header(group: &str, plural: &str) -> Vec<(String, i64)> {
        let resource = find(group, "v1", plural).unwrap();
        column_definitions(resource)
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["priority"].as_i64().unwrap()))
            .collect()
    }

    fn names(group: &str, plural: &str, priority: i64) -> Vec<String> {
        header(group, plural).into_iter().filter(|(_, p)| *p == priority).map(|(n, _)| n).collect()
    }

    #[test]
    fn human_duration_matches_upstream() {
        let (s, m, h, d) = (1, 60, 3600, 86_400);
        let cases = [
            (s, "1s"),
            (70 * s, "70s"),
            (190 * s, "3m10s"),
            (70 * m, "70m"),
            (47 * h, "47h"),
            (49 * h, "2d1h"),
            ((8 * 24 + 2) * h, "8d"),
            (367 * d, "367d"),
            ((365 * 2 * 24 + 25) * h, "2y1d"),
            ((365 * 8 * 24 + 2) * h, "8y"),
            (0, "0s"),
            (2 * m, "2m"),
            (2 * m + s, "2m1s"),
            (10 * m, "10m"),
            (10 * m + s, "10m"),
            (3 * h, "3h"),
            (3 * h + m, "3h1m"),
            (8 * h, "8h"),
            (8 * h + 59 * m, "8h"),
            (2 * d, "2d"),
            (8 * d, "8d"),
            (8 * d + 23 * h, "8d"),
            (2 * 365 * d, "2y"),
            (2 * 365 * d + 23 * h, "2y"),
            (2 * 365 * d + d, "2y1d"),
            (3 * 365 * d, "3y"),
            (8 * 365 * d, "8y"),
            (8 * 365 * d + 364 * d, "8y"),
            (9 * 365 * d, "9y"),
            (-2 * s, "<invalid>"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(SignedDuration::from_secs(seconds)), expected, "{seconds}s");
        }
        let ms = |n: i64| SignedDuration::from_millis(n);
        let boundaries = [
            (SignedDuration::from_nanos(-2_000_000_000 + 1), "0s"),
            (ms(999), "0s"),
            (ms(2 * 60_000 - 1), "119s"),
            (ms(10 * 60_000 - 1), "9m59s"),
            (ms(3 * 3_600_000 - 1), "179m"),
            (ms(8 * 3_600_000 - 1), "7h59m"),
            (ms(48 * 3_600_000 - 1), "47h"),
            (ms(8 * 86_400_000 - 1), "7d23h"),
            (ms(2 * 365 * 86_400_000 - 1), "729d"),
            (ms(2 * 365 * 86_400_000 + 86_400_000 - 1), "2y"),
            (ms(8 * 365 * 86_400_000 - 1), "7y364d"),
        ];
        for (duration, expected) in boundaries {
            assert_eq!(human_duration(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn every_kind_has_columns_with_all_definition_fields() {
        for resource in RESOURCES {
            let columns = column_definitions(resource);
            assert!(columns.len() >= 2, "{}", resource.plural);
            for column in &columns {
                for field in ["name", "type", "format", "description", "priority"] {
                    assert!(
                        column.get(field).is_some(),
                        "{}: {column} lacks {field}",
                        resource.plural
                    );
                }
                let kind = column["type"].as_str().unwrap();
                assert!(["string", "integer", "boolean", "date"].contains(&kind), "{kind}");
            }
        }
    }

    #[test]
    fn garbage_objects_print_full_rows_without_panicking() {
        let garbage = [
            json!(null),
            json!(42),
            json!("pod"),
            json!([{"metadata": {}}]),
            json!({}),
            json!({"metadata": {"name": 7, "creationTimestamp": "yesterday", "labels": []}}),
            json!({
                "metadata": {
                    "deletionTimestamp": 1,
                    "ownerReferences": [{"controller": true, "apiVersion": "a/b/c"}],
                },
                "spec": {"replicas": "3", "containers": [null, 5], "ports": [{"port": "x"}],
                         "selector": {"matchExpressions": [{"operator": "Bogus"}]}, "type": 9,
                         "initContainers": "x", "template": [], "readinessGates": [{}]},
                "status": {"phase": ["Running"], "conditions": [null, {"type": "Ready"}],
                           "containerStatuses": [{"state": {"terminated": {"exitCode": "1"}}}, 3],
                           "initContainerStatuses": [{"state": {"waiting": "x"}}],
                           "hard": {"cpu": {}}, "addresses": "none", "podIPs": [null]},
                "subsets": [{"addresses": [1], "ports": [{}]}], "endpoints": [{"addresses": [1]}],
                "involvedObject": [], "series": {"count": "x"}, "subjects": [7], "roleRef": 1,
            }),
        ];
        for resource in RESOURCES {
            let width = column_definitions(resource).len();
            for object in &garbage {
                let row = cells(resource, object, now());
                assert_eq!(row.len(), width, "{} {object}", resource.plural);
                assert!(row.iter().all(|c| c.is_string() || c.is_number() || c.is_boolean()));
            }
        }
    }

    #[test]
    fn kinds_without_a_printer_get_the_default_table() {
        for (group, plural) in [
            ("rbac.authorization.k8s.io", "roles"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("", "limitranges"),
        ] {
            assert_eq!(names(group, plural, 0), ["Name", "Created At"]);
        }
        let resource = find("", "v1", "limitranges").unwrap();
        assert_eq!(column_definitions(resource)[1]["type"], "date");
        let created =
            json!({"metadata": {"name": "lr", "creationTimestamp": "2024-05-01T13:00:00.5+01:00"}});
        assert_eq!(row("", "limitranges", created), [json!("lr"), json!("2024-05-01T12:00:00Z")]);
        assert_eq!(row("", "limitranges", json!({}))[1], "0001-01-01T00:00:00Z");
    }

    #[test]
    fn namespaces_print_name_status_age() {
        assert_eq!(names("", "namespaces", 0), ["Name", "Status", "Age"]);
        let ns = json!({
            "metadata": {"name": "dev", "creationTimestamp": ago(45)},
            "status": {"phase": "Active"},
        });
        assert_eq!(row("", "namespaces", ns), ["dev", "Active", "45s"]);
        assert_eq!(row("", "namespaces", json!({}))[2], "<unknown>");
    }

    #[test]
    fn pod_columns_match_kubectl() {
        assert_eq!(names("", "pods", 0), ["Name", "Ready", "Status", "Restarts", "Age"]);
        assert_eq!(names("", "pods", 1), ["IP", "Node", "Nominated Node", "Readiness Gates"]);
    }

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "ready": ready, "restartCount": 0, "state": {"running": {}}})
    }

    fn waiting(name: &str, reason: &str) -> Value {
        json!({"name": name, "state": {"waiting": {"reason": reason}}})
    }

    fn terminated(name: &str, reason: &str, exit_code: i64, signal: i64) -> Value {
        let state = json!({"reason": reason, "exitCode": exit_code, "signal": signal});
        json!({"name": name, "state": {"terminated": state}})
    }

    fn pod(phase: &str, init: Vec<Value>, containers: Vec<Value>) -> Value {
        let spec_init: Vec<Value> = init.iter().map(|s| json!({"name": s["name"]})).collect();
        let spec: Vec<Value> = containers.iter().map(|s| json!({"name": s["name"]})).collect();
        json!({
            "metadata": {"name": "p", "creationTimestamp": ago(600)},
            "spec": {"initContainers": spec_init, "containers": spec},
            "status": {
                "phase": phase,
                "initContainerStatuses": init,
                "containerStatuses": containers,
            },
        })
    }

    #[test]
    fn pod_status_follows_upstreams_pod_printer() {
        let initialized = |mut p: Value| {
            p["status"]["conditions"] = json!([{"type": "Initialized", "status": "True"}]);
            p
        };
        let cases = [
            (
                pod("Running", vec![], vec![running("a", true), running("b", true)]),
                "2/2",
                "Running",
            ),
            (pod("Running", vec![], vec![running("a", false)]), "0/1", "Running"),
            (pod("Pending", vec![], vec![]), "0/0", "Pending"),
            (
                pod("Pending", vec![], vec![waiting("a", "ContainerCreating")]),
                "0/1",
                "ContainerCreating",
            ),
            (
                pod("Running", vec![], vec![waiting("a", "CrashLoopBackOff")]),
                "0/1",
                "CrashLoopBackOff",
            ),
            (
                pod("Succeeded", vec![], vec![terminated("a", "Completed", 0, 0)]),
                "0/1",
                "Completed",
            ),
            (pod("Failed", vec![], vec![terminated("a", "", 3, 0)]), "0/1", "ExitCode:3"),
            (pod("Failed", vec![], vec![terminated("a", "", 137, 9)]), "0/1", "Signal:9"),
            (pod("Failed", vec![], vec![terminated("a", "Error", 1, 0)]), "0/1", "Error"),
            // The last container in the list wins the reason: statuses are walked backwards.
            (
                pod(
                    "Running",
                    vec![],
                    vec![waiting("a", "ImagePullBackOff"), waiting("b", "ErrImagePull")],
                ),
                "0/2",
                "ImagePullBackOff",
            ),
            // A completed container beside a running one: Running if the pod is Ready.
            (
                pod(
                    "Running",
                    vec![],
                    vec![running("a", true), terminated("b", "Completed", 0, 0)],
                ),
                "1/2",
                "NotReady",
            ),
            (
                pod(
                    "Pending",
                    vec![waiting("i1", "PodInitializing"), waiting("i2", "")],
                    vec![waiting("a", "PodInitializing")],
                ),
                "0/1",
                "Init:0/2",
            ),
            (
                pod(
                    "Pending",
                    vec![terminated("i1", "Completed", 0, 0), running("i2", false)],
                    vec![waiting("a", "PodInitializing")],
                ),
                "0/1",
                "Init:1/2",
            ),
            (pod("Pending", vec![terminated("i1", "Error", 1, 0)], vec![]), "0/0", "Init:Error"),
            (pod("Pending", vec![terminated("i1", "", 2, 0)], vec![]), "0/0", "Init:ExitCode:2"),
            (pod("Pending", vec![terminated("i1", "", 0, 9)], vec![]), "0/0", "Pending"),
            (pod("Pending", vec![terminated("i1", "", 137, 9)], vec![]), "0/0", "Init:Signal:9"),
            (
                pod("Pending", vec![waiting("i1", "CrashLoopBackOff")], vec![]),
                "0/0",
                "Init:CrashLoopBackOff",
            ),
            // Once the pod reports Initialized, app containers that wait or stopped decide the
            // status; running ones only count as ready.
            (
                initialized(pod(
                    "Running",
                    vec![waiting("i1", "CrashLoopBackOff")],
                    vec![waiting("a", "ErrImagePull")],
                )),
                "0/1",
                "ErrImagePull",
            ),
            (
                initialized(pod(
                    "Running",
                    vec![waiting("i1", "CrashLoopBackOff")],
                    vec![running("a", true)],
                )),
                "1/1",
                "Init:CrashLoopBackOff",
            ),
        ];
        for (i, (object, ready, status)) in cases.into_iter().enumerate() {
            let cells = row("", "pods", object);
            assert_eq!(
                (cells[1].as_str().unwrap(), cells[2].as_str().unwrap()),
                (ready, status),
                "case {i}"
            );
        }
    }

    #[test]
    fn completed_container_beside_a_running_one_reads_running_when_ready() {
        let mut p =
            pod("Running", vec![], vec![running("a", true), terminated("b", "Completed", 0, 0)]);
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(row("", "pods", p)[2], "Running");
    }

    #[test]
    fn sidecar_init_containers_count_toward_ready_and_total() {
        let mut p = pod("Running", vec![running("sidecar", true)], vec![running("app", true)]);
        p["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
        p["status"]["initContainerStatuses"][0]["started"] = json!(true);
        p["status"]["initContainerStatuses"][0]["restartCount"] = json!(2);
        let cells = row("", "pods", p);
        assert_eq!(
            (&cells[1], &cells[2], &cells[3]),
            (&json!("2/2"), &json!("Running"), &json!("2"))
        );
    }

    #[test]
    fn deleted_pods_show_terminating_or_unknown_for_lost_nodes() {
        let mut p = pod("Running", vec![], vec![running("a", true)]);
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(row("", "pods", p.clone())[2], "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(row("", "pods", p.clone())[2], "Unknown");
        let mut done = pod("Succeeded", vec![], vec![terminated("a", "Completed", 0, 0)]);
        done["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(row("", "pods", done)[2], "Completed");
    }

    #[test]
    fn pod_reason_and_scheduling_gates_override_the_phase() {
        let mut p = pod("Failed", vec![], vec![]);
        p["status"]["reason"] = json!("Evicted");
        assert_eq!(row("", "pods", p)[2], "Evicted");
        let mut gated = pod("Pending", vec![], vec![]);
        gated["status"]["conditions"] =
            json!([{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]);
        assert_eq!(row("", "pods", gated)[2], "SchedulingGated");
    }

    #[test]
    fn restarts_say_when_the_last_one_was() {
        let mut a = running("a", true);
        a["restartCount"] = json!(3);
        a["lastState"] = json!({"terminated": {"finishedAt": ago(130), "exitCode": 1}});
        let mut b = running("b", true);
        b["restartCount"] = json!(1);
        b["lastState"] = json!({"terminated": {"finishedAt": ago(4000)}});
        let cells = row("", "pods", pod("Running", vec![], vec![a, b]));
        assert_eq!(cells[3], "4 (2m10s ago)");
        let mut c = running("c", true);
        c["restartCount"] = json!(2);
        assert_eq!(row("", "pods", pod("Running", vec![], vec![c]))[3], "2");
    }

    #[test]
    fn pod_wide_columns_show_ip_node_and_readiness_gates() {
        let p = json!({
            "metadata": {"name": "web"},
            "spec": {
                "nodeName": "n1",
                "readinessGates": [{"conditionType": "lb"}, {"conditionType": "dns"}],
            },
            "status": {
                "podIPs": [{"ip": "10.1.0.4"}],
                "conditions": [{"type": "lb", "status": "True"}],
            },
        });
        assert_eq!(
            row("", "pods", p)[5..],
            [json!("10.1.0.4"), json!("n1"), json!("<none>"), json!("1/2")]
        );
        let bare = row("", "pods", json!({"status": {"podIP": "10.1.0.9"}}));
        assert_eq!(
            bare[5..],
            [json!("10.1.0.9"), json!("<none>"), json!("<none>"), json!("<none>")]
        );
    }

    #[test]
    fn nodes_print_status_roles_and_system_info() {
        assert_eq!(names("", "nodes", 0), ["Name", "Status", "Roles", "Age", "Version"]);
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(5 * 86_400),
                         "labels": {"node-role.kubernetes.io/control-plane": "",
                                    "node-role.kubernetes.io/": "",
                                    "kubernetes.io/role": "worker", "other": "x"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True"},
                ],
                "addresses": [
                    {"type": "Hostname", "address": "n1"},
                    {"type": "InternalIP", "address": "10.0.0.1"},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.33.0",
                    "osImage": "Debian",
                    "kernelVersion": "6.1",
                    "containerRuntimeVersion": "",
                },
            },
        });
        assert_eq!(
            row("", "nodes", node),
            [
                "n1",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "5d",
                "v1.33.0",
                "10.0.0.1",
                "<none>",
                "Debian",
                "6.1",
                "<unknown>"
            ]
        );
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(row("", "nodes", not_ready)[1..3], ["NotReady", "<none>"]);
        assert_eq!(row("", "nodes", json!({}))[1], "Unknown");
    }

    #[test]
    fn services_print_type_ips_and_ports() {
        assert_eq!(
            names("", "services", 0),
            ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]
        );
        let svc = |spec: Value, status: Value| {
            let metadata = json!({"name": "s"});
            json!({"metadata": metadata, "spec": spec, "status": status})
        };
        let cases = [
            (
                svc(
                    json!({"clusterIPs": ["10.43.0.10"],
                           "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}],
                           "selector": {"k8s-app": "dns"}}),
                    json!({}),
                ),
                ["ClusterIP", "10.43.0.10", "<none>", "53/UDP,53/TCP", "k8s-app=dns"],
            ),
            (
                svc(
                    json!({"type": "NodePort", "clusterIP": "10.43.1.1", "externalIPs": ["1.2.3.4"],
                           "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                    json!({}),
                ),
                ["NodePort", "10.43.1.1", "1.2.3.4", "80:30080/TCP", "<none>"],
            ),
            (
                svc(json!({"type": "LoadBalancer", "clusterIPs": ["10.43.1.2"]}), json!({})),
                ["LoadBalancer", "10.43.1.2", "<pending>", "<none>", "<none>"],
            ),
            (
                svc(
                    json!({"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]}),
                    json!({"loadBalancer": {
                        "ingress": [{"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}],
                    }}),
                ),
                ["LoadBalancer", "<none>", "5.6.7.8,lb.example.com,9.9.9.9", "<none>", "<none>"],
            ),
            (
                svc(
                    json!({
                        "type": "ExternalName",
                        "externalName": "db.example.com",
                        "clusterIP": "None",
                    }),
                    json!({}),
                ),
                ["ExternalName", "None", "db.example.com", "<none>", "<none>"],
            ),
        ];
        for (object, expected) in cases {
            let cells = row("", "services", object);
            let got: Vec<&str> =
                [1, 2, 3, 4, 6].iter().map(|i| cells[*i].as_str().unwrap()).collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn endpoints_list_three_addresses_then_a_count() {
        let eps = json!({"subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}],
                "ports": [{"port": 80}, {"port": 443}],
            },
            {"addresses": [{"ip": "10.0.0.9"}]},
        ]});
        assert_eq!(
            row("", "endpoints", eps)[1],
            "10.0.0.1:80,[fd00::2]:80,10.0.0.1:443 + 2 more..."
        );
        let few = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(row("", "endpoints", few)[1], "10.0.0.1");
        assert_eq!(row("", "endpoints", json!({}))[1], "<none>");
        assert_eq!(row("", "endpoints", json!({"subsets": [{}]}))[1], "");
    }

    #[test]
    fn data_and_secret_counts() {
        let cm = json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(row("", "configmaps", cm)[1], 3);
        let secret =
            json!({"type": "Opaque", "data": {"a": ""}, "stringData": {"a": "x", "b": "y"}});
        assert_eq!(row("", "secrets", secret)[1..3], [json!("Opaque"), json!(2)]);
        let sa = json!({"secrets": [{"name": "t"}]});
        assert_eq!(row("", "serviceaccounts", sa)[1], 1);
    }

    #[test]
    fn events_print_like_kubectl_get_events() {
        assert_eq!(names("", "events", 0), ["Last Seen", "Type", "Reason", "Object", "Message"]);
        assert_eq!(names("", "events", 1), ["Subobject", "Source", "First Seen", "Count", "Name"]);
        let core = json!({
            "metadata": {"name": "web.1"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "message": " pulled image \n", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(60), "count": 4,
        });
        assert_eq!(
            row("", "events", core),
            [
                json!("60s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{app}"),
                json!("kubelet, n1"),
                json!("pulled image"),
                json!("60m"),
                json!(4),
                json!("web.1")
            ]
        );
        let new = json!({
            "metadata": {"name": "n.1"},
            "regarding": {"kind": "Node", "name": ""},
            "reason": "Ready", "note": "node is ready", "type": "Normal",
            "reportingController": "capstan/nodelifecycle", "reportingInstance": "srv-1",
            "eventTime": "2024-05-01T11:59:00.000000Z",
        });
        assert_eq!(
            row("events.k8s.io", "events", new),
            [
                json!("60s"),
                json!("Normal"),
                json!("Ready"),
                json!("node"),
                json!(""),
                json!("capstan/nodelifecycle, srv-1"),
                json!("node is ready"),
                json!("60s"),
                json!(1),
                json!("n.1")
            ]
        );
        let series =
            json!({"eventTime": ago(600), "series": {"count": 7, "lastObservedTime": ago(5)}});
        let cells = row("events.k8s.io", "events", series);
        assert_eq!((&cells[0], &cells[7], &cells[8]), (&json!("5s"), &json!("10m"), &json!(7)));
    }

    #[test]
    fn workloads_print_replica_counts_and_wide_templates() {
        let template = json!({"spec": {"containers": [
            {"name": "app", "image": "web:1"},
            {"name": "log", "image": "fluent"},
        ]}});
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": ago(190)},
            "spec": {
                "replicas": 3,
                "template": template,
                "selector": {"matchLabels": {"app": "web"}},
            },
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            names("apps", "deployments", 0),
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
        assert_eq!(
            row("apps", "deployments", deploy),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3m10s"),
                json!("app,log"),
                json!("web:1,fluent"),
                json!("app=web")
            ]
        );
        assert_eq!(row("apps", "deployments", json!({}))[1], "0/1");
        assert_eq!(row("apps", "deployments", json!({}))[7], "");

        let expression = json!({"key": "tier", "operator": "In", "values": ["b", "a"]});
        let rs = json!({"spec": {"replicas": 2, "template": template,
                                 "selector": {"matchExpressions": [expression]}},
                        "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(row("apps", "replicasets", rs)[1..4], [json!(2), json!(2), json!(1)]);
        assert_eq!(row("apps", "replicasets", json!({}))[7], "<none>");
        let bogus = json!({"key": "a", "operator": "Bogus"});
        let rs_bad = json!({"spec": {"selector": {"matchExpressions": [bogus]}}});
        assert_eq!(row("apps", "replicasets", rs_bad)[7], "<error>");

        let selector = json!({"b": "2", "a": "1"});
        let rc = json!({"spec": {"replicas": 1, "selector": selector, "template": template}});
        assert_eq!(row("", "replicationcontrollers", rc)[7], "a=1,b=2");

        let sts =
            json!({"spec": {"replicas": 3, "template": template}, "status": {"readyReplicas": 3}});
        assert_eq!(names("apps", "statefulsets", 0), ["Name", "Ready", "Age"]);
        assert_eq!(row("apps", "statefulsets", sts)[1], "3/3");

        let ds = json!({
            "spec": {
                "template": {"spec": {"nodeSelector": {"os": "linux"}}},
                "selector": {"matchLabels": {"app": "x"}},
            },
            "status": {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "numberReady": 2,
                "updatedNumberScheduled": 3,
                "numberAvailable": 2,
            },
        });
        let cells = row("apps", "daemonsets", ds);
        assert_eq!(
            cells[1..7],
            [json!(3), json!(3), json!(2), json!(3), json!(2), json!("os=linux")]
        );
        assert_eq!(cells[10], "app=x");
    }

    #[test]
    fn controller_revisions_name_their_controller() {
        let revision = |owner: Value| {
            let other = json!({"controller": false, "kind": "X", "name": "no"});
            json!({"metadata": {"ownerReferences": [other, owner]}, "revision": 4})
        };
        let cases = [
            (
                json!({
                    "controller": true,
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "web",
                }),
                "statefulset.apps/web",
            ),
            (json!({"controller": true, "apiVersion": "v1", "kind": "Pod", "name": "p"}), "pod/p"),
            (json!({"controller": false, "name": "x"}), "<none>"),
        ];
        for (owner, expected) in cases {
            let cells = row("apps", "controllerrevisions", revision(owner));
            assert_eq!((&cells[1], &cells[2]), (&json!(expected), &json!(4)));
        }
    }

    #[test]
    fn jobs_print_status_completions_and_duration() {
        assert_eq!(names("batch", "jobs", 0), ["Name", "Status", "Completions", "Duration", "Age"]);
        let done = json!({
            "spec": {"completions": 3},
            "status": {"succeeded": 3, "startTime": ago(400), "completionTime": ago(100),
                       "conditions": [{"type": "Complete", "status": "True"}]},
        });
        assert_eq!(row("batch", "jobs", done)[1..4], ["Complete", "3/3", "5m"]);
        let running = json!({"spec": {"parallelism": 2}, "status": {"startTime": ago(30)}});
        assert_eq!(row("batch", "jobs", running)[1..4], ["Running", "0/1 of 2", "30s"]);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(row("batch", "jobs", failed)[1..4], ["Failed", "0/1", ""]);
        let suspended =
            json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(row("batch", "jobs", suspended)[1], "Suspended");
        let deleting = json!({
            "metadata": {"deletionTimestamp": ago(1)},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
        });
        assert_eq!(row("batch", "jobs", deleting)[1], "Terminating");
    }

    #[test]
    fn cronjobs_print_schedule_and_last_run() {
        let cronjob = json!({
            "spec": {"schedule": "*/5 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "containers": [{"name": "c", "image": "i"}],
                     }}}}},
            "status": {"active": [{"name": "j1"}], "lastScheduleTime": ago(120)},
        });
        assert_eq!(
            row("batch", "cronjobs", cronjob)[1..8],
            [
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("2m"),
                json!("<unknown>"),
                json!("c")
            ]
        );
        let unset = row("batch", "cronjobs", json!({"spec": {"timeZone": "Etc/UTC"}}));
        assert_eq!(unset[2..6], [json!("Etc/UTC"), json!("<unset>"), json!(0), json!("<none>")]);
    }

    #[test]
    fn certificate_signing_requests_summarise_conditions() {
        let csr = |conditions: Value, certificate: &str| {
            json!({
                "spec": {
                    "signerName": "kubernetes.io/kubelet-serving",
                    "username": "system:node:n1",
                    "expirationSeconds": 86_400,
                },
                "status": {"conditions": conditions, "certificate": certificate},
            })
        };
        let cases = [
            (json!([]), "", "Pending"),
            (json!([{"type": "Approved"}]), "LS0t", "Approved,Issued"),
            (
                json!([{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]),
                "",
                "Denied,Failed",
            ),
        ];
        for (conditions, certificate, expected) in cases {
            let cells = row(
                "certificates.k8s.io",
                "certificatesigningrequests",
                csr(conditions, certificate),
            );
            assert_eq!(
                cells[2..],
                [
                    json!("kubernetes.io/kubelet-serving"),
                    json!("system:node:n1"),
                    json!("24h"),
                    json!(expected)
                ]
            );
        }
        let bare = row("certificates.k8s.io", "certificatesigningrequests", json!({}));
        assert_eq!(bare[2..], [json!("<none>"), json!(""), json!("<none>"), json!("Pending")]);
    }

    #[test]
    fn bindings_list_their_subjects_by_kind() {
        let binding = json!({
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
            ],
        });
        let cells = row("rbac.authorization.k8s.io", "rolebindings", binding.clone());
        assert_eq!(cells[1], "ClusterRole/view");
        assert_eq!(cells[3..], [json!("alice, bob"), json!("devs"), json!("tools/ci")]);
        assert_eq!(
            row("rbac.authorization.k8s.io", "clusterrolebindings", binding)[1],
            "ClusterRole/view"
        );
    }

    #[test]
    fn small_kinds_print_their_summary_columns() {
        let quota = json!({"status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1", "limits.memory": "1Gi"},
            "used": {"pods": "3", "limits.cpu": "500m"},
        }});
        assert_eq!(
            row("", "resourcequotas", quota)[1..3],
            [
                json!("pods: 3/10, requests.cpu: 0/1"),
                json!("limits.cpu: 500m/2, limits.memory: 0/1Gi")
            ]
        );
        let pdb = json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            row("policy", "poddisruptionbudgets", pdb)[1..4],
            [json!("50%"), json!("N/A"), json!(1)]
        );
        let lease = json!({"spec": {"holderIdentity": "n1"}});
        assert_eq!(row("coordination.k8s.io", "leases", lease)[1], "n1");
        let class = json!({"value": 1000, "globalDefault": true, "preemptionPolicy": "Never"});
        let cells = row("scheduling.k8s.io", "priorityclasses", class);
        assert_eq!(
            (&cells[1], &cells[2], &cells[4]),
            (&json!(1000), &json!(true), &json!("Never"))
        );
        let slice = json!({
            "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "dns"}, {}, {"port": 8}],
            "endpoints": [
                {"addresses": ["10.0.0.1"]},
                {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]},
            ],
        });
        assert_eq!(
            row("discovery.k8s.io", "endpointslices", slice)[1..4],
            [
                json!("IPv4"),
                json!("80,dns,* + 1 more..."),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
            ]
        );
        assert_eq!(
            row("discovery.k8s.io", "endpointslices", json!({}))[2..4],
            ["<unset>", "<unset>"]
        );
        let template = json!({"template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }});
        assert_eq!(row("", "podtemplates", template)[1..], ["c", "i", "app=x"]);
    }
}
