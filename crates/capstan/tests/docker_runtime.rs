//! `capstan agent --runtime docker` against the real Docker Engine on this machine, with test
//! images imported locally: pods run in a sandbox on the node's pod CIDR (found again by a
//! restarted agent), report exit codes and pull failures, see their env and volumes, get a
//! working service-account token, and leave nothing behind.

use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use capstan_proxy::ChainsGuard;
use capstan_testkit::{
    BUSYBOX_IMAGE, CapstanAgent, CapstanServer, DockerNodeCleanup, KUBECTL_IMAGE, Kubectl,
    PAUSE_IMAGE, ensure_test_images, host_ip, wait_until,
};

const WAIT: Duration = Duration::from_secs(90);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_capstan"))
}

/// A server and one Docker node; fields drop in order, so the processes stop before the
/// node's containers and network are removed.
struct DockerCluster {
    server: CapstanServer,
    agent: CapstanAgent,
    docker: DockerNodeCleanup,
}

/// `cluster_cidr` differs per test: Docker refuses two bridge networks on one subnet.
fn cluster(test: &str, cluster_cidr: &str) -> DockerCluster {
    ensure_test_images().expect("test images are imported");
    let node = format!("dk-{test}-{}", std::process::id());
    let docker = DockerNodeCleanup { node: node.clone() };
    let server = CapstanServer::start(binary(), &["--cluster-cidr", cluster_cidr])
        .expect("capstan server starts");
    let agent = docker_agent(&server, &node);
    let cluster = DockerCluster { server, agent, docker };
    let kubectl = cluster.server.kubectl();
    wait_until("the docker node is Ready", WAIT, || {
        kubectl.jsonpath(&["node", &node], r#"{.status.conditions[?(@.type=="Ready")].status}"#)
            == "True"
    });
    wait_until("the default service account exists", WAIT, || {
        kubectl.run(&["get", "serviceaccount", "default"]).success
    });
    cluster
}

fn docker_agent(server: &CapstanServer, node: &str) -> CapstanAgent {
    CapstanAgent::start(
        binary(),
        server,
        &[
            "--runtime",
            "docker",
            "--node-name",
            node,
            "--pod-infra-container-image",
            PAUSE_IMAGE,
            // These tests need no Service proxy; the in-cluster test runs its own.
            "--proxy-mode",
            "none",
        ],
    )
    .expect("capstan agent starts")
}

fn pod(name: &str, restart: &str, command: &str, extra_spec: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
  "spec": {{"restartPolicy": "{restart}", "terminationGracePeriodSeconds": 1, {extra_spec}
    "containers": [{{"name": "main", "image": "{BUSYBOX_IMAGE}", "imagePullPolicy": "Never",
      "command": ["/bin/sh", "-c", {command:?}] CONTAINER_EXTRA}}]}}}}"#
    )
}

fn wait_phase(cluster: &DockerCluster, name: &str, phase: &str) {
    let kubectl = cluster.server.kubectl();
    let mut last = String::new();
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(&format!("pod {name} is {phase}"), WAIT, || {
            last = kubectl.jsonpath(&["pod", name], "{.status}");
            kubectl.jsonpath(&["pod", name], "{.status.phase}") == phase
        })
    }));
    if found.is_err() {
        panic!("pod {name} never got {phase}: {last}\nagent log:\n{}", cluster.agent.log_tail());
    }
}

fn termination_message(kubectl: &Kubectl, name: &str) -> String {
    kubectl.jsonpath(&["pod", name], "{.status.containerStatuses[0].state.terminated.message}")
}

#[test]
fn a_pod_runs_on_the_node_pod_cidr_and_an_agent_restarted_under_it_still_removes_its_containers() {
    let mut cluster = cluster("run", "10.201.0.0/16");
    let kubectl = cluster.server.kubectl();
    let manifest = pod("sleeper", "Always", "sleep 3600", "").replace("CONTAINER_EXTRA", "");
    kubectl.create(&manifest);
    wait_phase(&cluster, "sleeper", "Running");

    let node = &cluster.docker.node;
    let cpus = std::thread::available_parallelism().unwrap().get().to_string();
    assert_eq!(
        kubectl.jsonpath(&["node", node], "{.status.capacity.cpu}"),
        cpus,
        "the host's CPUs"
    );
    let cidr = kubectl.jsonpath(&["node", node], "{.spec.podCIDR}");
    let ip = kubectl.jsonpath(&["pod", "sleeper"], "{.status.podIP}");
    let prefix = cidr.strip_suffix("0/24").expect("a /24 pod CIDR");
    assert!(cidr.starts_with("10.201."), "{cidr}");
    assert!(ip.starts_with(prefix), "pod IP {ip} is outside the node's pod CIDR {cidr}");
    let id = kubectl.jsonpath(&["pod", "sleeper"], "{.status.containerStatuses[0].containerID}");
    assert!(id.starts_with("docker://"), "{id}");
    assert_eq!(cluster.docker.containers().len(), 2, "a sandbox and the app container");

    // A new agent finds the pod's containers again by their labels: it is the one that removes
    // them when the pod is deleted.
    cluster.agent.stop();
    cluster.agent = docker_agent(&cluster.server, node);
    kubectl.ok(&["delete", "pod", "sleeper", "--wait=true"]);
    wait_until("the pod's containers and sandbox are gone from Docker", WAIT, || {
        cluster.docker.containers().is_empty()
    });
}

#[test]
fn an_exit_code_1_fails_the_pod_and_an_unpullable_image_waits_in_err_image_pull() {
    let cluster = cluster("fail", "10.202.0.0/16");
    let kubectl = cluster.server.kubectl();
    let manifest = pod("failing", "Never", "exit 1", "").replace("CONTAINER_EXTRA", "");
    kubectl.create(&manifest);
    wait_phase(&cluster, "failing", "Failed");
    let terminated = "{.status.containerStatuses[0].state.terminated.exitCode} \
                      {.status.containerStatuses[0].state.terminated.reason}";
    assert_eq!(kubectl.jsonpath(&["pod", "failing"], terminated), "1 Error");

    // A real pull that fails (nothing listens on the loopback registry) waits in ErrImagePull.
    let manifest = pod("unpullable", "Never", "true", "")
        .replace("CONTAINER_EXTRA", "")
        .replace(BUSYBOX_IMAGE, "127.0.0.1:9/capstan-test/missing:1")
        .replace("\"imagePullPolicy\": \"Never\"", "\"imagePullPolicy\": \"Always\"");
    kubectl.create(&manifest);
    let reason = "{.status.containerStatuses[0].state.waiting.reason}";
    wait_until("the unpullable image waits in ErrImagePull", WAIT, || {
        kubectl.jsonpath(&["pod", "unpullable"], reason) == "ErrImagePull"
    });
}

#[test]
fn a_container_waits_for_its_config_map_then_sees_env_from_fields_and_it_and_its_volume() {
    let cluster = cluster("env", "10.203.0.0/16");
    let kubectl = cluster.server.kubectl();
    let script = "echo \"$POD_NAME $MY_NAMESPACE $COLOR $(cat /etc/settings/color) \
                  $KUBERNETES_SERVICE_PORT\" > /dev/termination-log";
    let container_extra = r#", "env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}}],
      "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}]"#;
    let volumes = r#""volumes": [{"name": "settings", "configMap": {"name": "settings"}}],"#;
    let manifest =
        pod("envpod", "Never", script, volumes).replace("CONTAINER_EXTRA", container_extra);
    kubectl.create(&manifest);
    // Until its ConfigMap exists the container waits, saying why.
    let waiting = "{.status.containerStatuses[0].state.waiting.message}";
    wait_until("the container waits for its ConfigMap", WAIT, || {
        kubectl.jsonpath(&["pod", "envpod"], waiting).contains("configmap \"settings\" not found")
    });
    kubectl.ok(&["create", "configmap", "settings", "--from-literal=color=red"]);
    wait_phase(&cluster, "envpod", "Succeeded");
    assert_eq!(termination_message(&kubectl, "envpod").trim(), "envpod default red red 443");
}

#[test]
fn the_service_account_volume_holds_a_token_that_authenticates_the_ca_and_the_namespace() {
    let cluster = cluster("sa", "10.204.0.0/16");
    let kubectl = cluster.server.kubectl();
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "cd {dir} && grep -q 'BEGIN CERTIFICATE' ca.crt && echo \"$(cat namespace) $(cat token)\" \
         > /dev/termination-log"
    );
    let manifest = pod("sa-reader", "Never", &script, "").replace("CONTAINER_EXTRA", "");
    kubectl.create(&manifest);
    wait_phase(&cluster, "sa-reader", "Succeeded");
    let message = termination_message(&kubectl, "sa-reader");
    let (namespace, token) = message.trim().split_once(' ').expect("namespace and token");
    assert_eq!(namespace, "default");

    let with_token = |token: &str| {
        Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into()))
            .args(["--server", cluster.server.url(), "--token", token, "--certificate-authority"])
            .arg(cluster.server.data_dir().join("tls").join("ca.crt"))
            .args(["get", "--raw", "/version"])
            .output()
            .expect("running kubectl")
    };
    let out = with_token(token);
    assert!(out.status.success(), "the pod's token: {}", String::from_utf8_lossy(&out.stderr));
    let bogus = with_token("not-a-token");
    assert!(!bogus.status.success(), "a bogus token must not authenticate");
}

/// kubectl in a pod, with no kubeconfig, uses the in-cluster config: the `kubernetes`
/// Service's address from KUBERNETES_SERVICE_HOST/PORT (reached through the Service proxy),
/// the projected service-account token and `ca.crt`, and the pod's namespace.
#[test]
fn a_program_in_a_pod_calls_the_api_with_the_in_cluster_config() {
    ensure_test_images().expect("test images are imported");
    let random = RandomState::new().hash_one(std::process::id());
    // A /24 of 10.96.0.0/12 for the services, so no other test cluster programs these ClusterIPs.
    let third = (random >> 32) % 4096;
    let service_cidr = format!("10.{}.{}.0/24", 96 + third / 256, third % 256);
    let prefix = format!("CI{:08X}", random as u32);
    let host = host_ip().to_string();
    let node = format!("dk-incluster-{}", std::process::id());
    let docker = DockerNodeCleanup { node: node.clone() };
    let _chains = ChainsGuard(prefix.clone());
    // Bound to the host's address: the `kubernetes` Service's endpoint must be reachable from
    // a pod, which a loopback address is not.
    let server = CapstanServer::start(
        binary(),
        &[
            "--bind-address",
            &host,
            "--service-cluster-ip-range",
            &service_cidr,
            "--cluster-cidr",
            "10.206.0.0/16",
        ],
    )
    .expect("capstan server starts");
    let agent = CapstanAgent::start(
        binary(),
        &server,
        &[
            "--runtime",
            "docker",
            "--node-name",
            &node,
            "--pod-infra-container-image",
            PAUSE_IMAGE,
            "--proxy-mode",
            "iptables",
            "--proxy-chain-prefix",
            &prefix,
        ],
    )
    .expect("capstan agent starts");
    let cluster = DockerCluster { server, agent, docker };
    let kubectl = cluster.server.kubectl();
    wait_until("the default service account exists", WAIT, || {
        kubectl.run(&["get", "serviceaccount", "default"]).success
    });

    let script = "kubectl auth whoami -o jsonpath='{.status.userInfo.username}' \
         > /dev/termination-log && echo >> /dev/termination-log \
         && kubectl get pod in-cluster -o name >> /dev/termination-log";
    let manifest = pod("in-cluster", "Never", script, "")
        .replace("CONTAINER_EXTRA", "")
        .replace(BUSYBOX_IMAGE, KUBECTL_IMAGE);
    kubectl.create(&manifest);
    wait_phase(&cluster, "in-cluster", "Succeeded");
    let message = termination_message(&kubectl, "in-cluster");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(
        lines,
        ["system:serviceaccount:default:default", "pod/in-cluster"],
        "the pod called the API as its service account"
    );
}

#[test]
fn server_with_the_docker_runtime_runs_its_local_agent_in_docker() {
    ensure_test_images().expect("test images are imported");
    let node = format!("dk-local-{}", std::process::id());
    let docker = DockerNodeCleanup { node: node.clone() };
    let server = CapstanServer::start(
        binary(),
        &[
            "--runtime",
            "docker",
            "--node-name",
            &node,
            "--kubelet-port",
            "0",
            "--cluster-cidr",
            "10.205.0.0/16",
            "--pod-infra-container-image",
            PAUSE_IMAGE,
            "--proxy-mode",
            "none",
        ],
    )
    .expect("capstan server starts");
    let kubectl = server.kubectl();
    wait_until("the default service account exists", WAIT, || {
        kubectl.run(&["get", "serviceaccount", "default"]).success
    });
    kubectl.create(&pod("local", "Never", "exit 0", "").replace("CONTAINER_EXTRA", ""));
    let phase = "{.status.phase}";
    wait_until("the local agent's pod Succeeded", WAIT, || {
        kubectl.jsonpath(&["pod", "local"], phase) == "Succeeded"
    });
    assert_eq!(kubectl.jsonpath(&["pod", "local"], "{.spec.nodeName}"), node);
    assert!(!docker.containers().is_empty(), "the pod ran in Docker");
    // The server and its agent stop before `docker` removes what the node left.
    drop(server);
}
