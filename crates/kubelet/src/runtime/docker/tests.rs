use super::*;

fn sandbox_config(host_network: bool) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: PodSandboxMetadata {
            name: "web".into(),
            namespace: "default".into(),
            uid: "u-1".into(),
            attempt: 2,
        },
        hostname: "web".into(),
        host_network,
        labels: BTreeMap::from([("app".into(), "web".into())]),
        annotations: BTreeMap::new(),
    }
}

fn container_config() -> ContainerConfig {
    ContainerConfig {
        name: "main".into(),
        attempt: 3,
        image: "busybox:1".into(),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["exit 1".into()],
        env: vec![("A".into(), "b=c".into())],
        working_dir: Some("/work".into()),
        mounts: vec![Mount {
            host_path: "/data/pods/u-1/volumes/cfg".into(),
            container_path: "/etc/cfg".into(),
            read_only: true,
        }],
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

#[test]
fn a_sandbox_is_a_pause_container_on_the_node_network_labelled_with_its_pod() {
    let body = sandbox_body(&sandbox_config(false), "n1", "pause:1", "capstan-n1");
    assert_eq!(body.image.as_deref(), Some("pause:1"));
    assert_eq!(body.hostname.as_deref(), Some("web"));
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("capstan-n1"));
    let labels = body.labels.unwrap();
    assert_eq!(labels[POD_UID_LABEL], "u-1");
    assert_eq!(labels[POD_NAME_LABEL], "web");
    assert_eq!(labels[NODE_LABEL], "n1");
    assert_eq!(labels[TYPE_LABEL], "podsandbox");
    assert_eq!(labels[ATTEMPT_LABEL], "2");
    assert_eq!(labels["app"], "web");
}

#[test]
fn a_host_network_sandbox_uses_the_host_network_and_no_hostname() {
    let body = sandbox_body(&sandbox_config(true), "n1", "pause:1", "capstan-n1");
    assert_eq!(body.hostname, None);
    assert_eq!(body.host_config.unwrap().network_mode.as_deref(), Some("host"));
}

#[test]
fn a_container_joins_its_sandbox_with_command_as_entrypoint_and_args_as_cmd() {
    let body = container_body(&container_config(), "sandbox-id", &sandbox_config(false), "n1");
    assert_eq!(body.entrypoint, Some(vec!["sh".to_owned(), "-c".to_owned()]));
    assert_eq!(body.cmd, Some(vec!["exit 1".to_owned()]));
    assert_eq!(body.env, Some(vec!["A=b=c".to_owned()]));
    assert_eq!(body.working_dir.as_deref(), Some("/work"));
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("container:sandbox-id"));
    let mount = &host.mounts.unwrap()[0];
    assert_eq!(mount.source.as_deref(), Some("/data/pods/u-1/volumes/cfg"));
    assert_eq!(mount.target.as_deref(), Some("/etc/cfg"));
    assert_eq!(mount.read_only, Some(true));
    let labels = body.labels.unwrap();
    assert_eq!(labels[SANDBOX_ID_LABEL], "sandbox-id");
    assert_eq!(labels[CONTAINER_NAME_LABEL], "main");
    assert_eq!(labels[ATTEMPT_LABEL], "3");
    assert_eq!(labels[IMAGE_LABEL], "busybox:1");
}

#[test]
fn no_command_keeps_the_images_entrypoint_and_cmd() {
    let config = ContainerConfig { command: vec![], args: vec![], ..container_config() };
    let body = container_body(&config, "s", &sandbox_config(false), "n1");
    assert_eq!(body.entrypoint, None);
    assert_eq!(body.cmd, None);
}

#[test]
fn names_follow_dockershim_and_stay_unique_across_sandboxes() {
    let pod = sandbox_config(false).metadata;
    assert_eq!(sandbox_name(&pod), "k8s_POD_web_default_u-1_2");
    let a = container_name(&container_config(), &pod, "aaaaaaaaaaaaaaaa");
    let b = container_name(&container_config(), &pod, "bbbbbbbbbbbbbbbb");
    assert_eq!(a, "k8s_main_web_default_u-1_3_aaaaaaaaaaaa");
    assert_ne!(a, b);
}

#[test]
fn an_exited_container_reports_its_exit_code_times_and_reason() {
    let inspect: ContainerInspectResponse = serde_json::from_value(serde_json::json!({
        "Id": "c1",
        "Created": "2026-01-02T03:04:05.123456789Z",
        "Image": "sha256:abc",
        "State": {
            "Status": "exited", "Running": false, "OOMKilled": false, "ExitCode": 3,
            "StartedAt": "2026-01-02T03:04:06Z", "FinishedAt": "2026-01-02T03:04:07Z",
            "Error": ""
        },
        "Config": {"Image": "busybox:1", "Labels": {
            "io.kubernetes.container.name": "main", "capstan.io/attempt": "1",
            "io.kubernetes.sandbox.id": "s1", "capstan.io/image": "busybox:1"
        }}
    }))
    .unwrap();
    let status = container_status(&inspect);
    assert_eq!(status.state, ContainerState::Exited);
    assert_eq!(status.exit_code, 3);
    assert_eq!(status.reason, "Error");
    assert_eq!(status.name, "main");
    assert_eq!(status.attempt, 1);
    assert_eq!(status.pod_sandbox_id, "s1");
    assert_eq!(status.image, "busybox:1");
    assert_eq!(status.image_ref, "sha256:abc");
    assert!(status.started_at.is_some() && status.finished_at > status.started_at);
}

#[test]
fn an_oom_killed_container_says_so_and_a_created_one_has_no_start_time() {
    let inspect = |state: serde_json::Value| -> ContainerInspectResponse {
        serde_json::from_value(serde_json::json!({"Id": "c", "State": state})).unwrap()
    };
    let oom = container_status(&inspect(
        serde_json::json!({"Status": "exited", "ExitCode": 137, "OOMKilled": true}),
    ));
    assert_eq!(oom.reason, "OOMKilled");
    let created = container_status(&inspect(serde_json::json!({
        "Status": "created", "StartedAt": "0001-01-01T00:00:00Z"
    })));
    assert_eq!(created.state, ContainerState::Created);
    assert_eq!(created.started_at, None);
    assert_eq!(created.reason, "");
}

#[test]
fn docker_events_wake_the_pod_they_belong_to() {
    let message: EventMessage = serde_json::from_value(serde_json::json!({
        "Type": "container", "Action": "die",
        "Actor": {"ID": "c1", "Attributes": {
            "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": "u-1", "exitCode": "1"
        }}
    }))
    .unwrap();
    let event = container_event(message).unwrap();
    assert_eq!(event.kind, ContainerEventKind::Stopped);
    assert_eq!(event.container_id, "c1");
    assert_eq!((event.pod.name.as_str(), event.pod.namespace.as_str()), ("web", "default"));
}

#[test]
fn untagged_images_are_pulled_as_latest() {
    assert_eq!(pull_reference("busybox"), "busybox:latest");
    assert_eq!(pull_reference("localhost:5000/busybox"), "localhost:5000/busybox:latest");
    assert_eq!(pull_reference("busybox:1.36"), "busybox:1.36");
    assert_eq!(pull_reference("busybox@sha256:00"), "busybox@sha256:00");
}

#[test]
fn the_bridge_gateway_is_the_first_address_of_the_pod_cidr() {
    assert_eq!(gateway_of("10.42.3.0/24").unwrap().to_string(), "10.42.3.1");
    assert!(gateway_of("10.42.3.0/31").is_err());
    assert!(gateway_of("nonsense").is_err());
}
