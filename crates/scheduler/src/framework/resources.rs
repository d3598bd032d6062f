//! Resource amounts (cpu in millicores, bytes, pod counts, extended resources) and a pod's
//! effective requests computed the upstream way.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests that count zero when scoring would make empty pods look free; upstream scores them
/// as 100m cpu and 200Mi memory.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// How many pods (only meaningful for a node's allocatable).
    pub pods: i64,
    /// Extended resources (`example.com/gpu`, `hugepages-2Mi`, …) in whole units or bytes.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a `requests`/`allocatable` map; quantities that do not parse count as zero (the
    /// API server validates them).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let mut resources = Resources::default();
        for (name, quantity) in list.into_iter().flatten() {
            let millis = capstan_api::quantity::parse_millis(&quantity.0).unwrap_or(0);
            let whole = i64::try_from(millis.div_euclid(1000)).unwrap_or(i64::MAX);
            match name.as_str() {
                "cpu" => resources.milli_cpu = i64::try_from(millis).unwrap_or(i64::MAX),
                "memory" => resources.memory = whole,
                "ephemeral-storage" => resources.ephemeral_storage = whole,
                "pods" => resources.pods = whole,
                other if is_scalar(other) => {
                    resources.scalar.insert(other.to_owned(), whole);
                }
                _ => {}
            }
        }
        resources
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(other.ephemeral_storage);
        self.pods = self.pods.saturating_add(other.pods);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_add(*value);
        }
    }

    pub fn subtract(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(other.ephemeral_storage);
        self.pods = self.pods.saturating_sub(other.pods);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_sub(*value);
        }
        self.scalar.retain(|_, value| *value != 0);
    }

    /// The larger of each amount (how init containers combine with the rest).
    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = (*entry).max(*value);
        }
    }
}

/// Extended resources, hugepages and attachable volumes: names with a domain, or `hugepages-`.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

fn container_requests(container: &Container) -> Resources {
    let resources = container.resources.as_ref();
    // Limits stand in for missing requests, as the API server's defaulting does.
    let mut requests = Resources::from_list(resources.and_then(|r| r.limits.as_ref()));
    let explicit = Resources::from_list(resources.and_then(|r| r.requests.as_ref()));
    let has = |name: &str| {
        resources.and_then(|r| r.requests.as_ref()).is_some_and(|m| m.contains_key(name))
    };
    if has("cpu") {
        requests.milli_cpu = explicit.milli_cpu;
    }
    if has("memory") {
        requests.memory = explicit.memory;
    }
    if has("ephemeral-storage") {
        requests.ephemeral_storage = explicit.ephemeral_storage;
    }
    requests.scalar.extend(explicit.scalar);
    requests.pods = 0;
    requests
}

/// A pod's effective requests as upstream computes them: the sum of its containers and of its
/// restartable (sidecar) init containers, or the largest regular init container plus the
/// sidecars started before it, whichever is larger; plus the pod overhead.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&container_requests(container));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for init in spec.init_containers.iter().flatten() {
        let requests = container_requests(init);
        if init.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&requests);
            init_peak.max(&sidecars);
        } else {
            let mut running = sidecars.clone();
            running.add(&requests);
            init_peak.max(&running);
        }
    }
    total.add(&sidecars);
    total.max(&init_peak);
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

/// Cpu and memory requests with upstream's non-zero defaults per container, for scoring.
pub fn pod_non_zero_requests(spec: &PodSpec) -> (i64, i64) {
    let non_zero = |c: &Container| {
        let r = container_requests(c);
        let cpu = if r.milli_cpu == 0 { DEFAULT_MILLI_CPU_REQUEST } else { r.milli_cpu };
        let memory = if r.memory == 0 { DEFAULT_MEMORY_REQUEST } else { r.memory };
        (cpu, memory)
    };
    let (mut cpu, mut memory) =
        spec.containers.iter().map(non_zero).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for init in spec.init_containers.iter().flatten() {
        let (c, m) = non_zero(init);
        if init.restart_policy.as_deref() == Some("Always") {
            cpu += c;
            memory += m;
        } else {
            cpu = cpu.max(c);
            memory = memory.max(m);
        }
    }
    let overhead = Resources::from_list(spec.overhead.as_ref());
    (cpu + overhead.milli_cpu, memory + overhead.memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn container(cpu: &str, memory: &str, sidecar: bool) -> Container {
        let mut requests = BTreeMap::new();
        if !cpu.is_empty() {
            requests.insert("cpu".to_owned(), Quantity(cpu.into()));
        }
        if !memory.is_empty() {
            requests.insert("memory".to_owned(), Quantity(memory.into()));
        }
        Container {
            resources: Some(ResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            restart_policy: sidecar.then(|| "Always".to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn requests_count_init_containers_sidecars_and_overhead_like_upstream() {
        /// What, containers, init containers, overhead cpu, expected cpu and memory.
        type Case<'a> = (&'a str, Vec<Container>, Vec<Container>, Option<&'a str>, i64, i64);
        let cases: &[Case] = &[
            (
                "containers add up",
                vec![container("100m", "1Mi", false), container("200m", "", false)],
                vec![],
                None,
                300,
                1 << 20,
            ),
            (
                "a larger init container wins",
                vec![container("100m", "", false)],
                vec![container("500m", "", false)],
                None,
                500,
                0,
            ),
            (
                "a smaller init container does not count",
                vec![container("1", "", false)],
                vec![container("500m", "", false)],
                None,
                1000,
                0,
            ),
            (
                "sidecars add to containers",
                vec![container("100m", "", false)],
                vec![container("50m", "", true)],
                None,
                150,
                0,
            ),
            (
                "init after a sidecar runs beside it",
                vec![container("100m", "", false)],
                vec![container("50m", "", true), container("300m", "", false)],
                None,
                350,
                0,
            ),
            ("overhead is added", vec![container("100m", "", false)], vec![], Some("250m"), 350, 0),
        ];
        for (what, containers, inits, overhead, cpu, memory) in cases {
            let spec = PodSpec {
                containers: containers.clone(),
                init_containers: Some(inits.clone()),
                overhead: overhead.map(|o| [("cpu".to_owned(), Quantity(o.into()))].into()),
                ..Default::default()
            };
            let requests = pod_requests(&spec);
            assert_eq!((requests.milli_cpu, requests.memory), (*cpu, *memory), "{what}");
        }
    }

    #[test]
    fn scoring_requests_default_empty_containers() {
        let spec = PodSpec {
            containers: vec![container("", "", false), container("1", "", false)],
            ..Default::default()
        };
        assert_eq!(pod_non_zero_requests(&spec), (1100, 2 * DEFAULT_MEMORY_REQUEST));
    }

    #[test]
    fn extended_resources_are_scalar() {
        let list = [
            ("example.com/gpu".to_owned(), Quantity("2".into())),
            ("pods".to_owned(), Quantity("110".into())),
        ]
        .into();
        let r = Resources::from_list(Some(&list));
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&2));
        assert_eq!(r.pods, 110);
    }
}
