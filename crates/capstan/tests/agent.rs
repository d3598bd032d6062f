//! `capstan agent` with the simulated runtime against a real server: nodes register and stay
//! Ready through their Leases, bound pods run with IPs, end, and are deleted gracefully.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use capstan_testkit::{CapstanAgent, CapstanServer, Kubectl, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_capstan"))
}

fn cluster(nodes: &str) -> (CapstanServer, CapstanAgent) {
    let server = CapstanServer::start(binary(), &[]).expect("capstan server starts");
    let agent =
        CapstanAgent::start(binary(), &server, &["--node-name", "sim", "--node-count", nodes])
            .expect("capstan agent starts");
    (server, agent)
}

fn ready_nodes(kubectl: &Kubectl) -> Vec<String> {
    let path = r#"{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    kubectl
        .jsonpath(&["nodes"], path)
        .lines()
        .filter_map(|l| l.strip_suffix("=True").map(str::to_owned))
        .collect()
}

fn lease_renew_time(kubectl: &Kubectl, node: &str) -> String {
    kubectl.jsonpath(&["lease", "-n", "kube-node-lease", node], "{.spec.renewTime}")
}

fn pod_field(kubectl: &Kubectl, pod: &str, path: &str) -> String {
    kubectl.jsonpath(&["pod", pod], path)
}

#[test]
fn simulated_nodes_register_ready_and_keep_their_leases_fresh_until_the_agent_stops() {
    let (server, mut agent) = cluster("3");
    let kubectl = server.kubectl();
    wait_until("three simulated nodes are Ready", WAIT, || ready_nodes(&kubectl).len() == 3);
    assert_eq!(ready_nodes(&kubectl), ["sim-0", "sim-1", "sim-2"], "{}", agent.log_tail());

    let capacity = kubectl.jsonpath(
        &["node", "sim-1"],
        "{.status.capacity.cpu} {.status.capacity.memory} {.status.capacity.pods}",
    );
    assert_eq!(capacity, "32 256Gi 110");
    let port =
        kubectl.jsonpath(&["node", "sim-1"], "{.status.daemonEndpoints.kubeletEndpoint.Port}");
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "kubelet port {port:?}");
    let healthz = Command::new("curl")
        .args(["-skf", &format!("https://127.0.0.1:{port}/healthz")])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&healthz.stdout), "ok");
    let conditions = kubectl.jsonpath(&["node", "sim-1"], "{.status.conditions[*].type}");
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
        assert!(conditions.contains(kind), "{kind} in {conditions}");
    }
    let holder =
        kubectl.jsonpath(&["lease", "-n", "kube-node-lease", "sim-2"], "{.spec.holderIdentity}");
    assert_eq!(holder, "sim-2");
    let owner = kubectl.jsonpath(
        &["lease", "-n", "kube-node-lease", "sim-2"],
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "Node/sim-2");

    let first = lease_renew_time(&kubectl, "sim-0");
    wait_until("sim-0's lease is renewed", Duration::from_secs(30), || {
        lease_renew_time(&kubectl, "sim-0") != first
    });

    agent.stop();
    let last = lease_renew_time(&kubectl, "sim-0");
    // Renewals come every 10 s: after 12 s without one, the agent has really stopped them.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        lease_renew_time(&kubectl, "sim-0"),
        last,
        "the lease was renewed after the agent stopped"
    );

    // A new agent adopts the existing Nodes and Leases.
    let again =
        CapstanAgent::start(binary(), &server, &["--node-name", "sim", "--node-count", "3"])
            .expect("capstan agent starts again");
    wait_until("the adopted lease is renewed", WAIT, || {
        lease_renew_time(&kubectl, "sim-0") != last
    });
    assert_eq!(ready_nodes(&kubectl).len(), 3, "{}", again.log_tail());
}

#[test]
fn a_bound_pod_runs_with_an_ip_and_is_removed_gracefully_when_deleted() {
    let (server, agent) = cluster("2");
    let kubectl = server.kubectl();
    wait_until("the simulated nodes are Ready", WAIT, || ready_nodes(&kubectl).len() == 2);
    kubectl.create(
        "
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: sim-1
  containers: [{name: nginx, image: nginx:1.25}, {name: sidecar, image: busybox:1.36}]
",
    );
    wait_until("the pod is Running and Ready", WAIT, || {
        pod_field(
            &kubectl,
            "web",
            r#"{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}"#,
        ) == "Running/True"
    });
    let ip = pod_field(&kubectl, "web", "{.status.podIP}");
    assert!(ip.starts_with("10.64.1."), "pod IP {ip:?} from sim-1's range\n{}", agent.log_tail());
    assert_eq!(pod_field(&kubectl, "web", "{.status.podIPs[0].ip}"), ip);
    assert_eq!(pod_field(&kubectl, "web", "{.status.hostIP}"), "127.0.0.1");
    let statuses = pod_field(
        &kubectl,
        "web",
        "{range .status.containerStatuses[*]}{.name}:{.ready}:{.started}:{.restartCount}:{.image}:{.state.running.startedAt} {end}",
    );
    assert!(statuses.contains("nginx:true:true:0:nginx:1.25:20"), "{statuses}");
    assert!(statuses.contains("sidecar:true:true:0:busybox:1.36:20"), "{statuses}");
    let id = pod_field(&kubectl, "web", "{.status.containerStatuses[0].containerID}");
    assert!(id.starts_with("simulated://"), "{id}");
    let conditions = pod_field(&kubectl, "web", "{.status.conditions[*].type}");
    for kind in
        ["PodScheduled", "Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers"]
    {
        assert!(conditions.contains(kind), "{kind} in {conditions}");
    }
    assert!(!pod_field(&kubectl, "web", "{.status.startTime}").is_empty());
    assert_eq!(pod_field(&kubectl, "web", "{.status.qosClass}"), "BestEffort");

    // The API server only marks the pod; the kubelet stops it and makes the final delete.
    kubectl.ok(&["delete", "pod", "web", "--wait=false"]);
    wait_until("the deleted pod is gone", WAIT, || {
        let out = kubectl.run(&["get", "pod", "web"]);
        !out.success && out.stderr.contains("NotFound")
    });
}

#[test]
fn pods_that_end_go_succeeded_or_failed_by_their_exit_codes() {
    let (server, _agent) = cluster("1");
    let kubectl = server.kubectl();
    wait_until("the simulated node is Ready", WAIT, || ready_nodes(&kubectl).len() == 1);
    kubectl.create(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: done
  annotations: {capstan.io/simulated-exit-code: "0", capstan.io/simulated-run-duration: "1s"}
spec:
  nodeName: sim-0
  restartPolicy: Never
  initContainers: [{name: setup, image: busybox}]
  containers: [{name: work, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata:
  name: broken
  annotations: {capstan.io/simulated-exit-code: "3"}
spec:
  nodeName: sim-0
  restartPolicy: Never
  containers: [{name: work, image: busybox}]
"#,
    );
    wait_until("the pod that exits 0 Succeeded", WAIT, || {
        pod_field(&kubectl, "done", "{.status.phase}") == "Succeeded"
    });
    let work = pod_field(
        &kubectl,
        "done",
        "{.status.containerStatuses[0].state.terminated.exitCode}/{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(work, "0/Completed");
    let setup =
        pod_field(&kubectl, "done", "{.status.initContainerStatuses[0].state.terminated.exitCode}");
    assert_eq!(setup, "0");
    let ready = pod_field(&kubectl, "done", r#"{.status.conditions[?(@.type=="Ready")].reason}"#);
    assert_eq!(ready, "PodCompleted");

    wait_until("the pod that exits 3 Failed", WAIT, || {
        pod_field(&kubectl, "broken", "{.status.phase}") == "Failed"
    });
    let work = pod_field(
        &kubectl,
        "broken",
        "{.status.containerStatuses[0].state.terminated.exitCode}/{.status.containerStatuses[0].restartCount}",
    );
    assert_eq!(work, "3/0");
}

#[test]
fn a_crashing_container_under_restart_policy_always_restarts_with_back_off() {
    let (server, _agent) = cluster("1");
    let kubectl = server.kubectl();
    wait_until("the simulated node is Ready", WAIT, || ready_nodes(&kubectl).len() == 1);
    kubectl.create(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: crash, annotations: {capstan.io/simulated-exit-code: "1"}}
spec:
  nodeName: sim-0
  containers: [{name: work, image: busybox}]
"#,
    );
    wait_until("the container waits in CrashLoopBackOff", WAIT, || {
        pod_field(&kubectl, "crash", "{.status.containerStatuses[0].state.waiting.reason}")
            == "CrashLoopBackOff"
    });
    assert_eq!(pod_field(&kubectl, "crash", "{.status.phase}"), "Running");
    let last = pod_field(
        &kubectl,
        "crash",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert_eq!(last, "1");
}

#[test]
fn server_with_the_simulated_runtime_runs_a_local_agent() {
    let server = CapstanServer::start(
        binary(),
        &["--runtime", "simulated", "--node-name", "local", "--kubelet-port", "0"],
    )
    .expect("capstan server starts");
    let kubectl = server.kubectl();
    wait_until("the local node is Ready", WAIT, || ready_nodes(&kubectl) == ["local"]);
}

#[test]
fn several_nodes_in_one_agent_are_refused_with_the_docker_runtime() {
    let out = Command::new(binary())
        .args([
            "agent",
            "--server",
            "https://127.0.0.1:1",
            "--token-file",
            "/nonexistent",
            "--runtime",
            "docker",
            "--node-count",
            "2",
        ])
        .output()
        .expect("capstan runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--node-count needs --runtime simulated"), "{stderr}");
}
