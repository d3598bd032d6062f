//! What plugins look at: a pod parsed once for scheduling (`PodInfo`) and a node with the pods
//! counted on it (`NodeInfo`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Node, Pod, PodAffinityTerm, PodSchedulingGate, PodSpec, Taint, Toleration,
    TopologySpreadConstraint,
};

use super::resources::{Resources, pod_non_zero_requests, pod_requests};
use super::selectors::{Labels, Selector};

/// `namespace/name`.
pub type PodKey = String;

/// A host port a pod asks for; two conflict on the same protocol and port when either binds
/// every address or both bind the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == other.port
            && self.protocol == other.protocol
            && (any(&self.ip) || any(&other.ip) || self.ip == other.ip)
    }
}

/// A pod (anti-)affinity term, parsed. Pods of one workload carry equal terms, which the
/// snapshot counts together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffinityTerm {
    pub selector: Selector,
    /// The namespaces the term looks at; empty with no namespace selector means the pod's own.
    pub namespaces: Vec<String>,
    /// Matched against `kubernetes.io/metadata.name` (the one namespace label every namespace
    /// has; the scheduler does not watch namespaces).
    pub namespace_selector: Option<Selector>,
    pub topology_key: String,
    pub weight: i32,
}

impl AffinityTerm {
    fn parse(term: &PodAffinityTerm, namespace: &str, weight: i32) -> Result<Self, String> {
        let selector = match &term.label_selector {
            Some(selector) => Selector::parse(selector)?,
            None => Selector::nothing(),
        };
        if term.topology_key.is_empty() {
            return Err("a pod affinity term has an empty topologyKey".to_owned());
        }
        let namespace_selector =
            term.namespace_selector.as_ref().map(Selector::parse).transpose()?;
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(namespace.to_owned());
        }
        Ok(Self {
            selector,
            namespaces,
            namespace_selector,
            topology_key: term.topology_key.clone(),
            weight,
        })
    }

    /// Whether `pod` is one of the pods this term selects.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        let in_namespace = self.namespaces.iter().any(|n| n == pod.namespace())
            || self.namespace_selector.as_ref().is_some_and(|s| {
                s.matches(
                    &[("kubernetes.io/metadata.name".to_owned(), pod.namespace().to_owned())]
                        .into(),
                )
            });
        in_namespace && self.selector.matches(&pod.labels)
    }
}

/// The parts of a pod's spec scheduling reads, field for field as in `PodSpec` (which takes
/// 1.4 KB before any field is set; the scheduler holds one per pod in the cluster).
/// Rarely set parts are boxed, and tolerations are shared between pods that have the same
/// ones (most pods carry just the two the API server adds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulingSpec {
    /// Its node affinity alone: pod (anti-)affinity is parsed into `PodInfo`'s terms, and
    /// keeping it twice cost more than the rest of the spec for pods that have it.
    pub affinity: Option<Box<Affinity>>,
    pub node_name: Option<String>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub preemption_policy: Option<String>,
    pub scheduling_gates: Option<Vec<PodSchedulingGate>>,
    pub tolerations: Option<Arc<[Toleration]>>,
    /// Shared between pods with equal constraints (a workload's pods carry the same ones).
    pub topology_spread_constraints: Option<Arc<[TopologySpreadConstraint]>>,
}

impl SchedulingSpec {
    fn of(spec: &PodSpec) -> Self {
        Self {
            affinity: spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.clone())
                .map(|node| Box::new(Affinity { node_affinity: Some(node), ..Default::default() })),
            node_name: spec.node_name.clone(),
            node_selector: spec.node_selector.clone(),
            preemption_policy: spec.preemption_policy.clone(),
            scheduling_gates: spec.scheduling_gates.clone(),
            tolerations: spec.tolerations.as_deref().map(shared_tolerations),
            topology_spread_constraints: spec
                .topology_spread_constraints
                .as_deref()
                .map(|c| capstan_api::shared::shared(&LAST_SPREAD, c)),
        }
    }
}

thread_local! {
    /// The tolerations last shared on this thread.
    static LAST_TOLERATIONS: std::cell::RefCell<Vec<Arc<[Toleration]>>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// The pod affinity terms last shared on this thread.
    static LAST_TERMS: std::cell::RefCell<Vec<Arc<AffinityTerms>>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// The spread constraints last shared on this thread.
    static LAST_SPREAD: std::cell::RefCell<Vec<Arc<[TopologySpreadConstraint]>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `tolerations` as a shared list (pods arrive in runs with the same tolerations).
fn shared_tolerations(tolerations: &[Toleration]) -> Arc<[Toleration]> {
    capstan_api::shared::shared(&LAST_TOLERATIONS, tolerations)
}

/// A pod's pod affinity and anti-affinity terms, parsed (shared between pods with equal ones).
#[derive(Debug, Default, PartialEq)]
pub struct AffinityTerms {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
}

static NO_AFFINITY_TERMS: AffinityTerms = AffinityTerms {
    required_affinity: Vec::new(),
    required_anti_affinity: Vec::new(),
    preferred_affinity: Vec::new(),
    preferred_anti_affinity: Vec::new(),
};

/// A pod as the scheduler keeps it: what plugins read of it, computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub spec: SchedulingSpec,
    /// It has a deletionTimestamp.
    pub deleting: bool,
    /// `status.nominatedNodeName`, when not empty.
    pub nominated_node_name: Option<String>,
    /// `namespace/name`; `namespace()` and `name()` read it.
    pub key: PodKey,
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resources,
    /// Cpu and memory with upstream's per-container defaults, for scoring.
    pub non_zero: (i64, i64),
    pub ports: Vec<HostPort>,
    pub images: Vec<String>,
    /// Its pod (anti-)affinity terms, `None` when it has none (most pods); `terms()` reads them.
    affinity_terms: Option<Arc<AffinityTerms>>,
    /// Why the pod's affinity terms could not be read; the pod stays pending with this reason.
    pub parse_error: Option<String>,
}

impl PodInfo {
    pub fn new(pod: &Pod) -> Self {
        let metadata = &pod.metadata;
        let namespace = metadata.namespace.clone().unwrap_or_default();
        let name = metadata.name.clone().unwrap_or_default();
        let empty = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&empty);
        let mut ports = Vec::new();
        let mut images = Vec::new();
        for container in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            images.extend(container.image.clone());
            for port in container.ports.iter().flatten() {
                if let Some(host_port) = port.host_port.filter(|p| *p > 0) {
                    ports.push(HostPort {
                        protocol: port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                        ip: port.host_ip.clone().unwrap_or_default(),
                        port: host_port,
                    });
                }
            }
        }
        let mut info = PodInfo {
            key: format!("{namespace}/{name}"),
            uid: metadata.uid.clone().unwrap_or_default(),
            labels: metadata.labels.clone().unwrap_or_default().into(),
            priority: spec.priority.unwrap_or(0),
            requests: pod_requests(spec),
            non_zero: pod_non_zero_requests(spec),
            ports,
            images,
            affinity_terms: None,
            parse_error: None,
            spec: SchedulingSpec::of(spec),
            deleting: metadata.deletion_timestamp.is_some(),
            nominated_node_name: pod
                .status
                .as_ref()
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty()),
        };
        match parse_affinity(spec, &namespace) {
            Ok(terms) => {
                info.affinity_terms =
                    terms.map(|t| capstan_api::shared::shared_value(&LAST_TERMS, t))
            }
            Err(error) => info.parse_error = Some(error),
        }
        info
    }

    pub fn namespace(&self) -> &str {
        self.key.split_once('/').map_or("", |(namespace, _)| namespace)
    }

    pub fn name(&self) -> &str {
        self.key.split_once('/').map_or(self.key.as_str(), |(_, name)| name)
    }

    pub fn terms(&self) -> &AffinityTerms {
        self.affinity_terms.as_deref().unwrap_or(&NO_AFFINITY_TERMS)
    }

    pub fn spec(&self) -> &SchedulingSpec {
        &self.spec
    }

    /// Whether an incoming pod's score can depend on this pod's terms (its required affinity
    /// and its preferred terms do; its required anti-affinity only filters).
    pub fn has_scoring_affinity(&self) -> bool {
        let terms = self.terms();
        !(terms.required_affinity.is_empty()
            && terms.preferred_affinity.is_empty()
            && terms.preferred_anti_affinity.is_empty())
    }

    pub fn nominated_node(&self) -> Option<&str> {
        self.nominated_node_name.as_deref()
    }
}

/// A pod's pod affinity terms (`None` when it has none), or why one cannot be read.
fn parse_affinity(spec: &PodSpec, ns: &str) -> Result<Option<AffinityTerms>, String> {
    let Some(affinity) = &spec.affinity else { return Ok(None) };
    if affinity.pod_affinity.is_none() && affinity.pod_anti_affinity.is_none() {
        return Ok(None);
    }
    let required = |terms: Option<&Vec<PodAffinityTerm>>| {
        terms
            .into_iter()
            .flatten()
            .map(|t| AffinityTerm::parse(t, ns, 1))
            .collect::<Result<Vec<_>, _>>()
    };
    let preferred = |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
        terms
            .into_iter()
            .flatten()
            .map(|w| AffinityTerm::parse(&w.pod_affinity_term, ns, w.weight))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut terms = AffinityTerms::default();
    if let Some(a) = &affinity.pod_affinity {
        terms.required_affinity =
            required(a.required_during_scheduling_ignored_during_execution.as_ref())?;
        terms.preferred_affinity =
            preferred(a.preferred_during_scheduling_ignored_during_execution.as_ref())?;
    }
    if let Some(a) = &affinity.pod_anti_affinity {
        terms.required_anti_affinity =
            required(a.required_during_scheduling_ignored_during_execution.as_ref())?;
        terms.preferred_anti_affinity =
            preferred(a.preferred_during_scheduling_ignored_during_execution.as_ref())?;
    }
    Ok(Some(terms))
}

/// Keeps only what scheduling reads, so 50,000 pods stay small in memory.
/// A node and the pods counted on it (bound and assumed).
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// False for a placeholder holding pods bound to a node the scheduler has not seen yet.
    pub exists: bool,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Image names (every tag and digest name) with their size in bytes.
    pub images: Vec<(String, i64)>,
    pub requested: Resources,
    pub non_zero_requested: (i64, i64),
    pub pods: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Pods whose affinity terms can score an incoming pod (see `has_scoring_affinity`).
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    pub fn placeholder(name: &str) -> Self {
        Self { name: name.to_owned(), ..Default::default() }
    }

    pub fn from_node(node: &Node) -> Self {
        let mut info = Self::placeholder(node.metadata.name.as_deref().unwrap_or_default());
        info.set_node(node);
        info
    }

    /// Takes the node's own fields, keeping the pods counted on it.
    pub fn set_node(&mut self, node: &Node) {
        self.exists = true;
        self.labels = node.metadata.labels.clone().unwrap_or_default().into();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = Resources::from_list(status.and_then(|s| s.allocatable.as_ref()));
        self.images = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|image| {
                let size = image.size_bytes.unwrap_or(0);
                image.names.iter().flatten().map(move |n| (n.clone(), size))
            })
            .collect();
    }

    /// Whether the scheduling-relevant parts of `node` differ from what is kept here.
    pub fn differs_from(&self, node: &Node) -> bool {
        let mut other = NodeInfo::placeholder(&self.name);
        other.set_node(node);
        !self.exists
            || other.labels != self.labels
            || other.taints != self.taints
            || other.unschedulable != self.unschedulable
            || other.allocatable != self.allocatable
            || other.images != self.images
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.pods += 1;
        self.non_zero_requested.0 += pod.non_zero.0;
        self.non_zero_requested.1 += pod.non_zero.1;
        self.used_ports.extend(pod.ports.iter().cloned());
        if pod.has_scoring_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.terms().required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let index = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(index);
        self.requested.subtract(&pod.requests);
        self.requested.pods -= 1;
        self.non_zero_requested.0 -= pod.non_zero.0;
        self.non_zero_requested.1 -= pod.non_zero.1;
        for port in &pod.ports {
            if let Some(i) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        if pod.has_scoring_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.terms().required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(pod)
    }
}

/// A PodDisruptionBudget as preemption weighs it: which pods it guards and how many of them
/// may still go.
#[derive(Clone, Debug)]
pub struct PdbInfo {
    pub namespace: String,
    /// Nothing for a missing, empty or malformed selector (upstream's preemption does the same).
    pub selector: Selector,
    pub disruptions_allowed: i32,
    /// Pods already being evicted, which no longer count against the budget.
    pub disrupted_pods: Vec<String>,
}

impl PdbInfo {
    pub fn new(pdb: &k8s_openapi::api::policy::v1::PodDisruptionBudget) -> Self {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| Selector::parse(s).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(Selector::nothing);
        let status = pdb.status.as_ref();
        Self {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            disruptions_allowed: status.map_or(0, |s| s.disruptions_allowed),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }

    pub fn guards(&self, pod: &PodInfo) -> bool {
        self.namespace == pod.namespace() && self.selector.matches(&pod.labels)
    }
}

/// Labels for tests and plugins: `[("k", "v")]` → a label map.
pub fn labels<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(tolerations: serde_json::Value) -> PodInfo {
        PodInfo::new(
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": [{"name": "c"}], "tolerations": tolerations},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn pods_with_equal_tolerations_share_one_list() {
        let defaults = serde_json::json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        ]);
        let (a, b) = (pod(defaults.clone()), pod(defaults));
        let shared = |p: &PodInfo| p.spec.tolerations.clone().unwrap();
        assert!(Arc::ptr_eq(&shared(&a), &shared(&b)));
        let other = pod(serde_json::json!([{"key": "gpu", "operator": "Exists"}]));
        assert_eq!(shared(&other)[0].key.as_deref(), Some("gpu"));
        assert_eq!(shared(&a)[0].key.as_deref(), Some("node.kubernetes.io/not-ready"));
    }

    #[test]
    fn a_pod_is_named_by_its_key_and_keeps_affinity_terms_only_when_it_has_some() {
        let plain = pod(serde_json::json!([]));
        assert_eq!((plain.namespace(), plain.name(), plain.key.as_str()), ("ns", "p", "ns/p"));
        assert!(plain.affinity_terms.is_none());
        assert!(plain.terms().required_anti_affinity.is_empty());
        let term = serde_json::json!({"labelSelector": {"matchLabels": {"app": "web"}},
            "topologyKey": "kubernetes.io/hostname"});
        let spread: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "q", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]}}},
        }))
        .unwrap();
        let spread = PodInfo::new(&spread);
        let terms = spread.terms();
        assert_eq!(terms.required_anti_affinity.len(), 1);
        assert_eq!(terms.required_anti_affinity[0].namespaces, ["ns"], "its own namespace");
        assert!(terms.required_anti_affinity[0].matches(&spread));
        assert!(terms.required_affinity.is_empty() && !spread.has_scoring_affinity());
        assert!(spread.spec().affinity.is_none(), "pod affinity is not kept twice");
        let twin: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [term]}}},
        }))
        .unwrap();
        let twin = PodInfo::new(&twin);
        let shared = |p: &PodInfo| p.affinity_terms.clone().unwrap();
        assert!(Arc::ptr_eq(&shared(&spread), &shared(&twin)), "equal terms are shared");
    }
}
