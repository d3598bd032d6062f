//! The Node object a kubelet registers and the status it reports: capacity and allocatable,
//! the Ready and pressure conditions, addresses, the kubelet endpoint, nodeInfo and images.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints,
    NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::pod_status::time;
use crate::runtime::{Image, RuntimeVersion};

/// Upstream kubelet's version string for the API version we serve.
pub const KUBELET_VERSION: &str = "v1.33.0";
/// At most this many images are reported, as upstream's nodeStatusMaxImages.
const MAX_IMAGES: usize = 50;

/// What a node offers pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }
}

/// What stays the same about a node between status reports.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    pub name: String,
    pub host_ip: IpAddr,
    pub kubelet_port: u16,
    pub capacity: Capacity,
    pub runtime: RuntimeVersion,
    /// Labels beyond the well-known ones (e.g. marking simulated nodes).
    pub labels: BTreeMap<String, String>,
    pub system: SystemInfo,
}

/// The host facts in nodeInfo.
#[derive(Clone, Debug, Default)]
pub struct SystemInfo {
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

impl SystemInfo {
    /// This host's facts; `unique` gives each simulated node its own IDs.
    pub fn of_host(unique: &str) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned());
        let os_image = read("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| "Linux".into());
        let id = stable_hex(unique);
        let system_uuid =
            format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]);
        Self {
            machine_id: id,
            boot_id: read("/proc/sys/kernel/random/boot_id")
                .unwrap_or_else(|_| system_uuid.clone()),
            system_uuid,
            kernel_version: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
            os_image,
        }
    }
}

/// 32 hex digits that depend only on `text` (FNV-1a, twice), so a node keeps its IDs.
fn stable_hex(text: &str) -> String {
    let mut out = String::with_capacity(32);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..2u8 {
        for byte in text.bytes().chain([round]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The Node a kubelet registers (status comes separately through `nodes/status`).
pub fn node(identity: &NodeIdentity) -> Node {
    let mut labels = BTreeMap::from([
        ("beta.kubernetes.io/arch".to_owned(), arch().to_owned()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), arch().to_owned()),
        ("kubernetes.io/hostname".to_owned(), identity.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
    ]);
    labels.extend(identity.labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(identity.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_owned(),
                "0".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: None,
    }
}

/// The status to report now; conditions keep their transition times from `previous`.
pub fn status(
    identity: &NodeIdentity,
    images: &[Image],
    previous: Option<&NodeStatus>,
    now: SystemTime,
) -> NodeStatus {
    let now = time(now);
    let old_conditions = previous.and_then(|s| s.conditions.clone()).unwrap_or_default();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        let since = old_conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(since),
        }
    };
    let capacity = &identity.capacity;
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity(capacity.cpu.clone())),
        ("memory".to_owned(), Quantity(capacity.memory.clone())),
        ("pods".to_owned(), Quantity(capacity.pods.clone())),
        ("ephemeral-storage".to_owned(), Quantity(capacity.ephemeral_storage.clone())),
        ("hugepages-1Gi".to_owned(), Quantity("0".into())),
        ("hugepages-2Mi".to_owned(), Quantity("0".into())),
    ]);
    let mut images: Vec<&Image> = images.iter().collect();
    images.sort_by(|a, b| b.size.cmp(&a.size).then(a.repo_tags.cmp(&b.repo_tags)));
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: identity.host_ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: identity.name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(identity.kubelet_port) }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: arch().into(),
            boot_id: identity.system.boot_id.clone(),
            container_runtime_version: format!(
                "{}://{}",
                identity.runtime.runtime_name, identity.runtime.runtime_version
            ),
            kernel_version: identity.system.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: identity.system.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: identity.system.os_image.clone(),
            system_uuid: identity.system.system_uuid.clone(),
            ..Default::default()
        }),
        images: Some(
            images
                .into_iter()
                .take(MAX_IMAGES)
                .map(|i| ContainerImage {
                    names: Some(i.repo_digests.iter().chain(&i.repo_tags).cloned().collect()),
                    size_bytes: Some(i.size as i64),
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// Whether two reports differ in anything but heartbeat times (upstream posts those only
/// every nodeStatusReportFrequency).
pub fn changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    let strip = |status: &NodeStatus| {
        let mut status = status.clone();
        for condition in status.conditions.iter_mut().flatten() {
            condition.last_heartbeat_time = None;
        }
        status
    };
    strip(old) != strip(new)
}

/// Whether the conditions differ in anything but heartbeat times: what someone else (the node
/// lifecycle controller) may have changed in the stored status.
pub fn conditions_changed(stored: &NodeStatus, new: &NodeStatus) -> bool {
    let strip = |status: &NodeStatus| {
        let mut conditions = status.conditions.clone().unwrap_or_default();
        for condition in &mut conditions {
            condition.last_heartbeat_time = None;
        }
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        conditions
    };
    strip(stored) != strip(new)
}

/// `NodeReady` or `NodeNotReady` when posting `new` over `stored` changes the Ready status (or
/// first reports it), the event upstream's kubelet records then.
pub fn ready_transition(stored: &NodeStatus, new: &NodeStatus) -> Option<&'static str> {
    let ready = |status: &NodeStatus| {
        status.conditions.iter().flatten().find(|c| c.type_ == "Ready").map(|c| c.status.clone())
    };
    let now = ready(new)?;
    if ready(stored).as_ref() == Some(&now) {
        return None;
    }
    Some(if now == "True" { "NodeReady" } else { "NodeNotReady" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> NodeIdentity {
        NodeIdentity {
            name: "sim-0".into(),
            host_ip: "10.0.0.5".parse().unwrap(),
            kubelet_port: 10250,
            capacity: Capacity::default(),
            runtime: RuntimeVersion {
                runtime_name: "simulated".into(),
                runtime_version: "0.1.0".into(),
            },
            labels: BTreeMap::new(),
            system: SystemInfo::of_host("sim-0"),
        }
    }

    #[test]
    fn status_reports_capacity_conditions_addresses_and_kubelet_port() {
        let status = status(&identity(), &[], None, SystemTime::now());
        assert_eq!(status.capacity.as_ref().unwrap()["cpu"], Quantity("32".into()));
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"], Quantity("110".into()));
        let conditions = status.conditions.as_ref().unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert!(conditions.iter().any(|c| c.type_ == pressure && c.status == "False"));
        }
        let addresses = status.addresses.as_ref().unwrap();
        assert!(addresses.iter().any(|a| a.type_ == "InternalIP" && a.address == "10.0.0.5"));
        let port = status.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port;
        assert_eq!(port, 10250);
        assert_eq!(status.node_info.unwrap().container_runtime_version, "simulated://0.1.0");
    }

    #[test]
    fn a_later_report_with_only_new_heartbeats_is_unchanged() {
        let first = status(&identity(), &[], None, SystemTime::UNIX_EPOCH);
        let later = status(&identity(), &[], Some(&first), SystemTime::now());
        assert!(!changed(&first, &later));
        let ready = |s: &NodeStatus| {
            s.conditions.clone().unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap()
        };
        assert_eq!(ready(&first).last_transition_time, ready(&later).last_transition_time);
        let image = Image {
            id: "sha256:1".into(),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: vec![],
            size: 1,
        };
        assert!(changed(&first, &status(&identity(), &[image], Some(&first), SystemTime::now())));
    }

    #[test]
    fn a_stored_unknown_ready_condition_is_reported_ready_again_with_a_new_transition() {
        let reported = status(&identity(), &[], None, SystemTime::UNIX_EPOCH);
        let mut stored = reported.clone();
        for condition in stored.conditions.iter_mut().flatten() {
            condition.status = "Unknown".into();
            condition.reason = Some("NodeStatusUnknown".into());
        }
        let from_own_report = status(&identity(), &[], Some(&reported), SystemTime::now());
        assert!(!changed(&reported, &from_own_report), "nothing new since its own last report");
        let next = status(&identity(), &[], Some(&stored), SystemTime::now());
        assert!(conditions_changed(&stored, &next), "but the stored conditions differ");
        assert_eq!(ready_transition(&stored, &next), Some("NodeReady"));
        let transition = |s: &NodeStatus| {
            s.conditions.clone().unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap()
        };
        assert_ne!(
            transition(&next).last_transition_time,
            transition(&reported).last_transition_time
        );
        assert!(!conditions_changed(
            &next,
            &status(&identity(), &[], Some(&next), SystemTime::now())
        ));
        assert_eq!(ready_transition(&next, &next), None);
        assert_eq!(ready_transition(&NodeStatus::default(), &next), Some("NodeReady"));
    }
}
