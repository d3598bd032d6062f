use std::collections::BTreeMap;

use futures::StreamExt;

use super::*;
use crate::runtime::{POD_UID_LABEL, PodSandboxMetadata};

fn sandbox(uid: &str, annotations: &[(&str, &str)]) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: PodSandboxMetadata {
            name: uid.into(),
            namespace: "default".into(),
            uid: uid.into(),
            attempt: 0,
        },
        hostname: uid.into(),
        host_network: false,
        labels: BTreeMap::from([(POD_UID_LABEL.to_owned(), uid.to_owned())]),
        annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn container(name: &str) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        attempt: 0,
        image: "busybox".into(),
        command: vec![],
        args: vec![],
        env: vec![],
        working_dir: None,
        mounts: vec![],
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

#[tokio::test]
async fn pod_ips_come_from_the_pod_cidr_and_are_released_with_the_sandbox() {
    let runtime = SimulatedRuntime::new();
    runtime.update_runtime_config("10.64.7.0/30").await.unwrap();
    // A /30 has one usable pod address: .2 (.1 is the bridge, .3 broadcast).
    let first = runtime.run_pod_sandbox(&sandbox("a", &[])).await.unwrap();
    let ip = runtime.pod_sandbox_status(&first).await.unwrap().ip;
    assert_eq!(ip, Some("10.64.7.2".parse().unwrap()));
    let full = runtime.run_pod_sandbox(&sandbox("b", &[])).await;
    assert!(matches!(full, Err(RuntimeError::PodIpsExhausted(_))), "{full:?}");
    runtime.stop_pod_sandbox(&first).await.unwrap();
    assert_eq!(runtime.pod_sandbox_status(&first).await.unwrap().ip, None);
    assert!(runtime.run_pod_sandbox(&sandbox("b", &[])).await.is_ok());
}

#[tokio::test]
async fn bad_pod_cidrs_are_refused() {
    let runtime = SimulatedRuntime::new();
    for cidr in ["10.64.0.0", "10.64.0.0/31", "banana/24", "10.64.0.0/x"] {
        assert!(runtime.update_runtime_config(cidr).await.is_err(), "{cidr}");
    }
}

#[tokio::test]
async fn containers_run_until_stopped_unless_an_exit_code_is_annotated() {
    let runtime = SimulatedRuntime::new();
    runtime.pull_image("busybox").await.unwrap();
    let plain = runtime.run_pod_sandbox(&sandbox("a", &[])).await.unwrap();
    let id = runtime.create_container(&plain, &container("app"), &sandbox("a", &[])).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    assert_eq!(runtime.container_status(&id).await.unwrap().state, ContainerState::Running);
    runtime.stop_container(&id, Duration::from_secs(30)).await.unwrap();
    let stopped = runtime.container_status(&id).await.unwrap();
    assert_eq!((stopped.state, stopped.exit_code), (ContainerState::Exited, 0));

    let annotated = [(EXIT_CODE_ANNOTATION, "4"), (RUN_DURATION_ANNOTATION, "50ms")];
    let config = sandbox("b", &annotated);
    let sandbox_id = runtime.run_pod_sandbox(&config).await.unwrap();
    let mut events = runtime.container_events();
    let id = runtime.create_container(&sandbox_id, &container("app"), &config).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    assert_eq!(runtime.container_status(&id).await.unwrap().state, ContainerState::Running);
    let event = events.next().await.unwrap();
    assert_eq!(
        (event.container_id.as_str(), event.kind),
        (id.as_str(), ContainerEventKind::Stopped)
    );
    assert_eq!(event.pod.uid, "b");
    let exited = runtime.container_status(&id).await.unwrap();
    assert_eq!(
        (exited.state, exited.exit_code, exited.reason.as_str()),
        (ContainerState::Exited, 4, "Error")
    );
}

#[test]
fn the_exit_rule_prefers_the_containers_own_annotation_and_spares_init_containers() {
    let annotations: BTreeMap<String, String> = [
        (EXIT_CODE_ANNOTATION.to_owned(), "1".to_owned()),
        (format!("{EXIT_CODE_ANNOTATION}.special"), "7".to_owned()),
        (RUN_DURATION_ANNOTATION.to_owned(), "2s".to_owned()),
    ]
    .into();
    let init = BTreeMap::from([(CONTAINER_TYPE_LABEL.to_owned(), "init".to_owned())]);
    let none = BTreeMap::new();
    assert_eq!(exit_rule("app", &none, &annotations), Some((Duration::from_secs(2), 1)));
    assert_eq!(exit_rule("special", &none, &annotations), Some((Duration::from_secs(2), 7)));
    assert_eq!(exit_rule("setup", &init, &annotations), Some((Duration::from_secs(2), 0)));
    assert_eq!(exit_rule("app", &none, &BTreeMap::new()), None);
    assert_eq!(exit_rule("setup", &init, &BTreeMap::new()), Some((Duration::ZERO, 0)));
}

#[tokio::test]
async fn images_pull_at_once_and_are_found_by_tag() {
    let runtime = SimulatedRuntime::new();
    assert_eq!(runtime.image_status("busybox").await.unwrap(), None);
    let id = runtime.pull_image("busybox").await.unwrap();
    let image = runtime.image_status("busybox:latest").await.unwrap().unwrap();
    assert_eq!(image.id, id);
    assert_eq!(image.repo_tags, ["busybox:latest"]);
    runtime.remove_image("busybox").await.unwrap();
    assert!(runtime.list_images().await.unwrap().is_empty());
}
