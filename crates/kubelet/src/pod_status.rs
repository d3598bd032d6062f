//! What the kubelet reports as a pod's status, generated from what the runtime holds (upstream's
//! generateAPIPodStatus): phase, conditions, container statuses, IPs and start time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::runtime::{self, PodSandboxState, PodSandboxStatus};

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// Why a container is waiting, when the kubelet knows better than the runtime (image pulls,
/// crash-loop back-off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What the pod's status is generated from.
pub struct Observed<'a> {
    /// The pod's newest sandbox.
    pub sandbox: Option<&'a PodSandboxStatus>,
    /// The containers in that sandbox, every attempt the runtime still has.
    pub containers: &'a [runtime::ContainerStatus],
    pub waiting: &'a HashMap<String, Waiting>,
    /// `simulated`, `docker`, …: the scheme of `containerID`.
    pub runtime_name: &'a str,
    pub host_ip: IpAddr,
    /// The pod is being torn down (deleted or ended): nothing will start again.
    pub terminating: bool,
    pub now: SystemTime,
}

/// Seconds precision, as the API stores times, so an unchanged status compares equal.
pub fn time(at: SystemTime) -> Time {
    let seconds = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Time(Timestamp::from_second(seconds as i64).unwrap_or(Timestamp::UNIX_EPOCH))
}

pub fn is_terminal(phase: Option<&str>) -> bool {
    matches!(phase, Some(SUCCEEDED | FAILED))
}

fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

pub fn generate(pod: &Pod, observed: &Observed) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let now = time(observed.now);
    let inits: Vec<ContainerStatus> =
        spec.init_containers.iter().flatten().map(|c| container_status(c, observed)).collect();
    let mains: Vec<ContainerStatus> =
        spec.containers.iter().map(|c| container_status(c, observed)).collect();

    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let phase = if is_terminal(old.phase.as_deref()) {
        old.phase.clone().unwrap_or_default()
    } else {
        phase(
            &spec.init_containers.clone().unwrap_or_default(),
            &inits,
            &mains,
            restart_policy,
            observed.terminating,
        )
        .to_owned()
    };

    let host_network = spec.host_network == Some(true);
    let host_ip = observed.host_ip.to_string();
    let sandbox_ip = observed.sandbox.and_then(|s| s.ip).map(|ip| ip.to_string());
    let pod_ip =
        if host_network { Some(host_ip.clone()) } else { sandbox_ip.or(old.pod_ip.clone()) };

    let conditions = conditions(&spec, &old, &inits, &mains, &phase, observed, &now);
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(host_ip.clone()),
        host_ips: Some(vec![HostIP { ip: host_ip }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: old.start_time.clone().or(Some(now)),
        init_container_statuses: (!inits.is_empty()).then_some(inits),
        container_statuses: Some(mains),
        qos_class: old.qos_class.clone().or_else(|| Some(qos_class(&spec).into())),
        ..old
    }
}

/// The newest runtime container of each attempt for `name`, newest first.
fn attempts<'a>(name: &str, observed: &Observed<'a>) -> Vec<&'a runtime::ContainerStatus> {
    let mut mine: Vec<_> = observed.containers.iter().filter(|c| c.name == name).collect();
    mine.sort_by(|a, b| b.attempt.cmp(&a.attempt).then(b.created_at.cmp(&a.created_at)));
    mine
}

fn terminated(container: &runtime::ContainerStatus, runtime_name: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: container.exit_code,
            reason: Some(container.reason.clone()).filter(|r| !r.is_empty()),
            message: Some(container.message.clone()).filter(|m| !m.is_empty()),
            started_at: container.started_at.map(time),
            finished_at: container.finished_at.map(time),
            container_id: Some(format!("{runtime_name}://{}", container.id)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
        ..Default::default()
    }
}

fn container_status(spec: &Container, observed: &Observed) -> ContainerStatus {
    let mine = attempts(&spec.name, observed);
    let latest = mine.first().copied();
    let previous = mine.get(1).copied();
    let runtime_name = observed.runtime_name;
    let exited = |c: &&runtime::ContainerStatus| c.state == runtime::ContainerState::Exited;
    let (state, last_state) = match (observed.waiting.get(&spec.name), latest) {
        (Some(w), _) => (
            waiting(&w.reason, Some(&w.message)),
            latest.filter(exited).or(previous).map(|c| terminated(c, runtime_name)),
        ),
        (None, None) if observed.terminating => (
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("ContainerStatusUnknown".into()),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None,
        ),
        (None, None) => (waiting("ContainerCreating", None), None),
        (None, Some(c)) => {
            let last = previous.map(|p| terminated(p, runtime_name));
            match c.state {
                runtime::ContainerState::Running => (
                    ContainerState {
                        running: Some(ContainerStateRunning { started_at: c.started_at.map(time) }),
                        ..Default::default()
                    },
                    last,
                ),
                runtime::ContainerState::Exited => (terminated(c, runtime_name), last),
                runtime::ContainerState::Created | runtime::ContainerState::Unknown => {
                    (waiting("ContainerCreating", None), last)
                }
            }
        }
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("{runtime_name}://{}", c.id)),
        restart_count: latest.map(|c| c.attempt as i32).unwrap_or(0),
        // Probes are not run yet: a running container counts as started and ready.
        ready: running,
        started: Some(running),
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..Default::default()
    }
}

/// Upstream's getPhase: what the container states add up to.
fn phase(
    init_specs: &[Container],
    inits: &[ContainerStatus],
    mains: &[ContainerStatus],
    restart_policy: &str,
    terminating: bool,
) -> &'static str {
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (spec, status) in init_specs.iter().zip(inits) {
        if is_sidecar(spec) {
            continue;
        }
        let state = status.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state.waiting.is_some()
            && status
                .last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0)
        {
            failed_init += 1;
        } else {
            pending_init += 1;
        }
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for status in mains {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if status.last_state.as_ref().and_then(|l| l.terminated.as_ref()).is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && (restart_policy == "Never" || terminating) {
        return FAILED;
    }
    if terminating && running == 0 && waiting == 0 {
        return if stopped == succeeded && pending_init == 0 { SUCCEEDED } else { FAILED };
    }
    if pending_init > 0 || failed_init > 0 || waiting > 0 {
        return PENDING;
    }
    if running > 0 {
        return RUNNING;
    }
    if stopped == mains.len() {
        if restart_policy == "Always" {
            return RUNNING;
        }
        if stopped == succeeded {
            return SUCCEEDED;
        }
        if restart_policy == "Never" {
            return FAILED;
        }
        return RUNNING;
    }
    PENDING
}

#[allow(clippy::too_many_arguments)]
fn conditions(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    old: &PodStatus,
    inits: &[ContainerStatus],
    mains: &[ContainerStatus],
    phase: &str,
    observed: &Observed,
    now: &Time,
) -> Vec<PodCondition> {
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let condition = |kind: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let previous = old_conditions.iter().find(|c| c.type_ == kind);
        let since = previous
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        PodCondition {
            type_: kind.into(),
            status: status.into(),
            reason: reason.map(str::to_owned),
            message,
            last_transition_time: Some(since),
            ..Default::default()
        }
    };

    let sandbox_ready = observed.sandbox.is_some_and(|s| s.state == PodSandboxState::Ready);
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let main_started = mains.iter().any(|s| s.container_id.is_some());
    let incomplete: Vec<&str> = init_specs
        .iter()
        .zip(inits)
        .filter(|(c, s)| {
            let state = s.state.clone().unwrap_or_default();
            if is_sidecar(c) {
                s.started != Some(true) && !main_started
            } else {
                state.terminated.as_ref().is_none_or(|t| t.exit_code != 0) && !main_started
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    let initialized = incomplete.is_empty();

    let unready: Vec<&str> = init_specs
        .iter()
        .zip(inits)
        .filter(|(c, s)| is_sidecar(c) && !s.ready)
        .map(|(c, _)| c.name.as_str())
        .chain(mains.iter().filter(|s| !s.ready).map(|s| s.name.as_str()))
        .collect();
    let containers_ready = unready.is_empty();
    let (ready_reason, ready_message) = if phase == SUCCEEDED {
        (Some("PodCompleted"), None)
    } else if !initialized {
        (
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", incomplete.join(" "))),
        )
    } else if !containers_ready {
        (
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
        )
    } else {
        (None, None)
    };
    let missing_gates: Vec<&str> = spec
        .readiness_gates
        .iter()
        .flatten()
        .map(|g| g.condition_type.as_str())
        .filter(|t| !old_conditions.iter().any(|c| c.type_ == *t && c.status == "True"))
        .collect();
    let ready_ok = containers_ready && initialized && phase != SUCCEEDED;
    let ready = if ready_ok && !missing_gates.is_empty() {
        condition(
            "Ready",
            false,
            Some("ReadinessGatesNotReady"),
            Some(format!(
                "the status of pod readiness gate {:?} is not \"True\", but False",
                missing_gates[0]
            )),
        )
    } else {
        condition("Ready", ready_ok, ready_reason, ready_message.clone())
    };

    let owned =
        ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        condition(
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
            (!initialized)
                .then(|| format!("containers with incomplete status: [{}]", incomplete.join(" "))),
        ),
        ready,
        condition(
            "ContainersReady",
            containers_ready && initialized && phase != SUCCEEDED,
            ready_reason,
            ready_message,
        ),
    ];
    // The scheduler owns PodScheduled; a pod created with nodeName set was scheduled by its author.
    conditions.push(
        old_conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap_or_else(|| condition("PodScheduled", true, None, None)),
    );
    conditions
        .extend(old_conditions.iter().filter(|c| !owned.contains(&c.type_.as_str())).cloned());
    conditions
}

/// Upstream's QoS class from requests and limits, for a pod the API server did not classify.
pub fn qos_class(spec: &k8s_openapi::api::core::v1::PodSpec) -> &'static str {
    let containers: Vec<&Container> =
        spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    let mut any = false;
    let mut guaranteed = true;
    for container in containers {
        let resources = container.resources.clone().unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        for resource in ["cpu", "memory"] {
            let request = requests.get(resource).or(limits.get(resource));
            let limit = limits.get(resource);
            any |= request.is_some() || limit.is_some();
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}
