use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::runtime::ContainerRuntime;
use crate::runtime::recording::{Call, RecordingRuntime};

fn pod(spec: serde_json::Value, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "annotations": annotations},
        "spec": spec,
    }))
    .unwrap()
}

fn worker(runtime: &RecordingRuntime) -> PodWorker {
    PodWorker {
        runtime: Arc::new(runtime.clone()),
        images: Arc::new(runtime.clone()),
        host_ip: "192.168.1.10".parse().unwrap(),
        runtime_name: "simulated".into(),
        files: None,
    }
}

/// What the API would hold after the kubelet wrote `status`.
fn with_status(mut pod: Pod, status: PodStatus) -> Pod {
    pod.status = Some(status);
    pod
}

fn container_ids(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::StartContainer { id } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

fn phase(status: &PodStatus) -> &str {
    status.phase.as_deref().unwrap_or_default()
}

fn condition<'a>(status: &'a PodStatus, kind: &str) -> &'a str {
    let conditions = status.conditions.as_ref().unwrap();
    conditions.iter().find(|c| c.type_ == kind).map(|c| c.status.as_str()).unwrap_or("missing")
}

#[tokio::test]
async fn a_new_pod_gets_a_sandbox_with_an_ip_and_its_containers_run() {
    let runtime = RecordingRuntime::new();
    runtime.update_runtime_config("10.64.3.0/24").await.unwrap();
    let pod = pod(json!({"containers": [{"name": "app", "image": "nginx:1.25"}]}), json!({}));
    let result = worker(&runtime).sync(&pod).await.unwrap();
    let calls = runtime.calls();
    assert!(calls.contains(&Call::RunPodSandbox { pod: "default/web".into() }), "{calls:?}");
    assert!(calls.contains(&Call::PullImage { image: "nginx:1.25".into() }), "{calls:?}");
    assert_eq!(container_ids(&calls).len(), 1);
    let status = result.status;
    assert_eq!(phase(&status), "Running");
    assert_eq!(status.pod_ip.as_deref(), Some("10.64.3.2"));
    assert_eq!(status.host_ip.as_deref(), Some("192.168.1.10"));
    for kind in
        ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"]
    {
        assert_eq!(condition(&status, kind), "True", "{kind}");
    }
    let container = &status.container_statuses.as_ref().unwrap()[0];
    assert!(container.ready && container.started == Some(true));
    assert!(container.state.as_ref().unwrap().running.is_some());
    assert!(container.container_id.as_ref().unwrap().starts_with("simulated://"));
    assert!(container.image_id.starts_with("sha256:"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));

    // A second pass over the written status changes nothing and calls nothing.
    runtime.clear();
    let again = worker(&runtime).sync(&with_status(pod, status.clone())).await.unwrap();
    assert_eq!(again.status, status);
    assert_eq!(runtime.calls(), []);
}

#[tokio::test]
async fn deleting_a_pod_stops_its_containers_with_grace_30s_then_removes_it() {
    let runtime = RecordingRuntime::new();
    let spec = json!({"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]});
    let running = pod(spec, json!({}));
    let status = worker(&runtime).sync(&running).await.unwrap().status;
    let started = container_ids(&runtime.calls());
    runtime.clear();

    let mut deleted = with_status(running, status);
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    deleted.metadata.deletion_grace_period_seconds = Some(30);
    let result = worker(&runtime).sync(&deleted).await.unwrap();
    assert!(result.ready_to_delete);
    let calls = runtime.calls();
    for id in &started {
        let stop = Call::StopContainer { id: id.clone(), timeout: Duration::from_secs(30) };
        assert!(calls.contains(&stop), "{calls:?}");
    }
    assert!(matches!(calls.last(), Some(Call::StopPodSandbox { .. })), "{calls:?}");
    // Containers that shut down cleanly leave the pod Succeeded, its IP still reported.
    assert_eq!(phase(&result.status), "Succeeded");
    assert!(result.status.pod_ip.is_some());

    runtime.clear();
    worker(&runtime).remove_pod("uid-1").await.unwrap();
    let calls = runtime.calls();
    for id in &started {
        assert!(calls.contains(&Call::RemoveContainer { id: id.clone() }), "{calls:?}");
    }
    assert!(matches!(calls.last(), Some(Call::RemovePodSandbox { .. })), "{calls:?}");
    assert!(runtime.list_pod_sandboxes(&Default::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_grace_period_defaults_to_the_pods_termination_grace_period() {
    let runtime = RecordingRuntime::new();
    let spec = json!({"terminationGracePeriodSeconds": 5, "containers": [{"name": "a", "image": "busybox"}]});
    let running = pod(spec, json!({}));
    let status = worker(&runtime).sync(&running).await.unwrap().status;
    runtime.clear();
    let mut deleted = with_status(running, status);
    deleted.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    worker(&runtime).sync(&deleted).await.unwrap();
    assert!(runtime.calls().iter().any(|c| matches!(c,
        Call::StopContainer { timeout, .. } if *timeout == Duration::from_secs(5))));
}

#[tokio::test]
async fn a_never_restarting_pod_goes_succeeded_or_failed_by_exit_code() {
    for (code, expected, reason) in [("0", "Succeeded", "Completed"), ("2", "Failed", "Error")] {
        let runtime = RecordingRuntime::new();
        let spec =
            json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "busybox"}]});
        let pod = pod(spec, json!({"capstan.io/simulated-exit-code": code}));
        let result = worker(&runtime).sync(&pod).await.unwrap();
        assert_eq!(phase(&result.status), expected);
        let state = result.status.container_statuses.unwrap()[0].state.clone().unwrap();
        let terminated = state.terminated.unwrap();
        assert_eq!(terminated.exit_code, code.parse::<i32>().unwrap());
        assert_eq!(terminated.reason.as_deref(), Some(reason));
        // The sandbox (and its IP) is released once the pod has ended.
        assert!(matches!(runtime.calls().last(), Some(Call::StopPodSandbox { .. })));
    }
}

#[tokio::test]
async fn on_failure_restarts_only_failed_containers() {
    let runtime = RecordingRuntime::new();
    let spec =
        json!({"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "busybox"}]});
    let failing = pod(spec.clone(), json!({"capstan.io/simulated-exit-code": "1"}));
    let status = worker(&runtime).sync(&failing).await.unwrap().status;
    runtime.clear();
    let result = worker(&runtime).sync(&with_status(failing, status)).await.unwrap();
    assert!(runtime.calls().contains(&Call::CreateContainer {
        sandbox: sandbox_id(&runtime).await,
        name: "a".into(),
        attempt: 1
    }));
    assert_eq!(phase(&result.status), "Running");

    let runtime = RecordingRuntime::new();
    let succeeding = pod(spec, json!({"capstan.io/simulated-exit-code": "0"}));
    let status = worker(&runtime).sync(&succeeding).await.unwrap().status;
    assert_eq!(phase(&status), "Succeeded");
}

async fn sandbox_id(runtime: &RecordingRuntime) -> String {
    runtime.list_pod_sandboxes(&Default::default()).await.unwrap()[0].id.clone()
}

#[tokio::test]
async fn a_crashing_container_restarts_at_once_then_backs_off() {
    let runtime = RecordingRuntime::new();
    let spec = json!({"containers": [{"name": "a", "image": "busybox"}]});
    let crashing = pod(spec, json!({"capstan.io/simulated-exit-code": "1"}));
    let first = worker(&runtime).sync(&crashing).await.unwrap();
    assert_eq!(phase(&first.status), "Running");
    // The first restart is immediate.
    let second = worker(&runtime).sync(&with_status(crashing.clone(), first.status)).await.unwrap();
    let status = &second.status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(status.restart_count, 1);
    // The next one waits 10 s in CrashLoopBackOff, with the last exit reported.
    runtime.clear();
    let third = worker(&runtime).sync(&with_status(crashing, second.status)).await.unwrap();
    assert_eq!(runtime.calls(), []);
    let status = &third.status.container_statuses.as_ref().unwrap()[0];
    let waiting = status.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = status.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 1);
    assert_eq!(status.restart_count, 1);
    assert!(third.requeue_after.is_some_and(|d| d <= Duration::from_secs(10) && !d.is_zero()));
    assert_eq!(condition(&third.status, "Ready"), "False");
}

#[test]
fn back_off_doubles_from_10s_to_at_most_5_minutes() {
    let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
}

#[tokio::test]
async fn init_containers_run_to_completion_before_the_app_starts() {
    let runtime = RecordingRuntime::new();
    let spec = json!({
        "initContainers": [{"name": "setup", "image": "busybox"}],
        "containers": [{"name": "app", "image": "busybox"}],
    });
    let pod = pod(spec, json!({}));
    // The simulated init container exits 0 at once, so the app starts in the same pass.
    let result = worker(&runtime).sync(&pod).await.unwrap();
    assert_eq!(phase(&result.status), "Running");
    assert_eq!(condition(&result.status, "Initialized"), "True");
    let init = &result.status.init_container_statuses.as_ref().unwrap()[0];
    assert_eq!(init.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 0);
    let created: Vec<String> = runtime
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::CreateContainer { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["setup", "app"]);
}

#[tokio::test]
async fn a_failing_init_container_blocks_the_app_and_fails_a_never_restarting_pod() {
    let runtime = RecordingRuntime::new();
    let spec = json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "setup", "image": "busybox"}],
        "containers": [{"name": "app", "image": "busybox"}],
    });
    let pod = pod(spec, json!({"capstan.io/simulated-exit-code.setup": "1"}));
    let result = worker(&runtime).sync(&pod).await.unwrap();
    assert_eq!(phase(&result.status), "Failed");
    assert_eq!(condition(&result.status, "Initialized"), "False");
    let created =
        runtime.calls().iter().filter(|c| matches!(c, Call::CreateContainer { .. })).count();
    assert_eq!(created, 1, "only the init container was created");
}

#[tokio::test]
async fn an_image_absent_under_pull_policy_never_leaves_the_container_waiting() {
    let runtime = RecordingRuntime::new();
    let spec = json!({"containers": [{"name": "a", "image": "private/app:1", "imagePullPolicy": "Never"}]});
    let result = worker(&runtime).sync(&pod(spec, json!({}))).await.unwrap();
    assert_eq!(phase(&result.status), "Pending");
    let status = &result.status.container_statuses.unwrap()[0];
    let waiting = status.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ErrImageNeverPull"));
    assert!(!runtime.calls().iter().any(|c| matches!(c, Call::PullImage { .. })));
}

#[tokio::test]
async fn host_network_pods_report_the_node_ip() {
    let runtime = RecordingRuntime::new();
    let spec = json!({"hostNetwork": true, "containers": [{"name": "a", "image": "busybox"}]});
    let result = worker(&runtime).sync(&pod(spec, json!({}))).await.unwrap();
    assert_eq!(result.status.pod_ip.as_deref(), Some("192.168.1.10"));
}

#[test]
fn volume_mounts_become_host_binds_and_projected_volumes_stay_read_only() {
    let container: Container = serde_json::from_value(json!({
        "name": "c",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "scratch", "mountPath": "/scratch/logs", "subPath": "logs"},
            {"name": "scratch", "mountPath": "/ro", "readOnly": true}
        ]
    }))
    .unwrap();
    let prepared = PreparedPod {
        volumes: HashMap::from([
            ("cfg".to_owned(), ("/pods/u/volumes/cfg".into(), true)),
            ("scratch".to_owned(), ("/pods/u/volumes/scratch".into(), false)),
        ]),
        ..PreparedPod::default()
    };
    let found = mounts(&container, &prepared).unwrap();
    let summary: Vec<(String, String, bool)> = found
        .iter()
        .map(|m| (m.host_path.display().to_string(), m.container_path.clone(), m.read_only))
        .collect();
    assert_eq!(
        summary,
        [
            ("/pods/u/volumes/cfg".to_owned(), "/etc/cfg".to_owned(), true),
            ("/pods/u/volumes/scratch/logs".to_owned(), "/scratch/logs".to_owned(), false),
            ("/pods/u/volumes/scratch".to_owned(), "/ro".to_owned(), true),
        ]
    );
}

#[test]
fn a_sub_path_that_climbs_out_or_an_unknown_volume_is_refused() {
    let prepared = PreparedPod {
        volumes: HashMap::from([("v".to_owned(), ("/pods/u/volumes/v".into(), false))]),
        ..PreparedPod::default()
    };
    let climbing: Container = serde_json::from_value(json!({
        "name": "c", "volumeMounts": [{"name": "v", "mountPath": "/x", "subPath": "../../etc"}]
    }))
    .unwrap();
    assert!(mounts(&climbing, &prepared).is_err());
    let unknown: Container = serde_json::from_value(json!({
        "name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]
    }))
    .unwrap();
    assert!(mounts(&unknown, &prepared).is_err());
}
