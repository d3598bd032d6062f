//! Node lifecycle through kubectl: a node whose Lease stops being renewed goes Ready=Unknown,
//! is tainted unreachable and loses the pods that do not tolerate that; renewing again
//! untaints it; nodes get pod CIDRs; PodDisruptionBudgets get their status, evictions honour
//! them and `kubectl drain` works. Both with Nodes and Leases written here as a kubelet would,
//! and with real simulated agents.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capstan_testkit::{CapstanAgent, CapstanServer, Kubectl, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// The time now in `format` (a `date` format).
fn date(format: &str) -> String {
    let out = std::process::Command::new("date").args(["-u", format]).output().expect("date runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn now() -> String {
    date("+%Y-%m-%dT%H:%M:%S.000000Z")
}

/// What a kubelet does on start and on each status update: Ready with a fresh heartbeat.
fn post_ready(kubectl: &Kubectl, node: &str) {
    let patch = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"{t}","lastTransitionTime":"{t}"}}]}}}}"#,
        t = date("+%Y-%m-%dT%H:%M:%SZ")
    );
    kubectl.ok(&["patch", "node", node, "--subresource=status", "--type=merge", "-p", &patch]);
}

fn register(kubectl: &Kubectl, node: &str) {
    kubectl.create(&format!("{{apiVersion: v1, kind: Node, metadata: {{name: {node}}}}}"));
    post_ready(kubectl, node);
    kubectl.create(&format!(
        "{{apiVersion: coordination.k8s.io/v1, kind: Lease, metadata: {{name: {node}, namespace: kube-node-lease}}, spec: {{holderIdentity: {node}, leaseDurationSeconds: 40, renewTime: \"{}\"}}}}",
        now()
    ));
}

/// Renews a node's Lease (failures are left to the next renewal, as a kubelet would).
fn renew(kubectl: &Kubectl, node: &str) {
    let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, now());
    kubectl.run(&["patch", "lease", node, "-n", "kube-node-lease", "--type=merge", "-p", &patch]);
}

/// Renews `node`'s Lease every second until dropped.
struct Heartbeat(Arc<AtomicBool>);

impl Heartbeat {
    fn start(kubectl: Kubectl, node: &'static str) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                renew(&kubectl, node);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Heartbeat(stop)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn pod_on(node: &str, name: &str, tolerations: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  tolerations: {tolerations}
  containers: [{{name: c, image: busybox}}]
"
    )
}

fn field(kubectl: &Kubectl, args: &[&str], path: &str) -> String {
    let mut get = vec!["get"];
    get.extend_from_slice(args);
    let path = format!("jsonpath={path}");
    get.extend_from_slice(&["-o", &path]);
    kubectl.run(&get).stdout
}

#[test]
fn a_node_that_stops_heartbeating_is_tainted_and_drained_and_untainted_on_return() {
    let server = CapstanServer::start(
        Path::new(env!("CARGO_BIN_EXE_capstan")),
        &[
            "--node-monitor-grace-period",
            "4s",
            "--default-unreachable-toleration-seconds",
            "2",
            "--default-not-ready-toleration-seconds",
            "2",
        ],
    )
    .expect("capstan starts");
    let kubectl = server.kubectl();
    register(&kubectl, "n1");
    register(&kubectl, "n2");
    let _n2_alive = Heartbeat::start(server.kubectl(), "n2");
    kubectl.create(&pod_on("n1", "doomed", "[]"));
    kubectl.create(&pod_on(
        "n1",
        "tolerant",
        "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]",
    ));
    kubectl.create(&pod_on("n2", "safe", "[]"));
    kubectl.ok(&[
        "patch",
        "pod",
        "tolerant",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);

    // Each node gets its own pod CIDR.
    wait_until("both nodes have pod CIDRs", WAIT, || {
        !field(&kubectl, &["node", "n1"], "{.spec.podCIDR}").is_empty()
            && !field(&kubectl, &["node", "n2"], "{.spec.podCIDR}").is_empty()
    });
    let (c1, c2) = (
        field(&kubectl, &["node", "n1"], "{.spec.podCIDR}"),
        field(&kubectl, &["node", "n2"], "{.spec.podCIDR}"),
    );
    assert!(c1.starts_with("10.42.") && c1.ends_with(".0/24") && c1 != c2, "{c1} {c2}");

    wait_until("n1 goes Unknown and is tainted unreachable", WAIT, || {
        field(&kubectl, &["node", "n1"], "{.status.conditions[?(@.type==\"Ready\")].status}")
            == "Unknown"
            && field(&kubectl, &["node", "n1"], "{.spec.taints[?(@.effect==\"NoExecute\")].key}")
                == "node.kubernetes.io/unreachable"
    });
    assert_eq!(
        field(&kubectl, &["node", "n1"], "{.status.conditions[?(@.type==\"Ready\")].reason}"),
        "NodeStatusUnknown"
    );
    assert_eq!(field(&kubectl, &["node", "n2"], "{.spec.taints}"), "");

    wait_until("the intolerant pod is evicted", WAIT, || {
        !field(&kubectl, &["pod", "doomed"], "{.metadata.deletionTimestamp}").is_empty()
    });
    assert_eq!(field(&kubectl, &["pod", "tolerant"], "{.metadata.deletionTimestamp}"), "");
    assert_eq!(field(&kubectl, &["pod", "safe"], "{.metadata.deletionTimestamp}"), "");
    wait_until("the pod that stays is marked not ready", WAIT, || {
        field(&kubectl, &["pod", "tolerant"], "{.status.conditions[?(@.type==\"Ready\")].status}")
            == "False"
    });
    wait_until("the events are recorded", WAIT, || {
        let reasons = field(&kubectl, &["events", "-A"], "{.items[*].reason}");
        reasons.contains("NodeNotReady") && reasons.contains("TaintManagerEviction")
    });

    // The kubelet comes back: heartbeats and a Ready status again.
    let _n1_alive = Heartbeat::start(server.kubectl(), "n1");
    post_ready(&kubectl, "n1");
    wait_until("n1 is untainted", WAIT, || {
        field(&kubectl, &["node", "n1"], "{.spec.taints}").is_empty()
    });
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_capstan"))
}

fn agent(server: &CapstanServer, node: &str) -> CapstanAgent {
    CapstanAgent::start(binary(), server, &["--node-name", node]).expect("capstan agent starts")
}

fn replica_set(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: c, image: busybox}}]
"
    )
}

/// The web pods as `name node phase terminating` lines.
fn web_pods(kubectl: &Kubectl) -> Vec<(String, String, String, bool)> {
    let path = r#"{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}"#;
    field(kubectl, &["pods", "-l", "app=web"], path)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or_default().to_owned();
            (get(0), get(1), get(2), !get(3).is_empty())
        })
        .collect()
}

fn running_on(kubectl: &Kubectl, node: &str) -> usize {
    web_pods(kubectl)
        .iter()
        .filter(|(_, n, phase, gone)| n == node && phase == "Running" && !gone)
        .count()
}

#[test]
fn stopping_an_agent_moves_its_pods_and_restarting_it_untaints_and_clears_its_node() {
    let server = CapstanServer::start(
        binary(),
        &[
            "--node-monitor-grace-period",
            "15s",
            "--default-unreachable-toleration-seconds",
            "2",
            "--default-not-ready-toleration-seconds",
            "2",
        ],
    )
    .expect("capstan starts");
    let kubectl = server.kubectl();
    let mut agents = [agent(&server, "a"), agent(&server, "b")];
    kubectl.create(&replica_set(4));
    wait_until("four web pods run", WAIT, || {
        running_on(&kubectl, "a") + running_on(&kubectl, "b") == 4
    });
    // The grace period outlasts the agents' 10 s lease renewals.
    let (lost, kept, index) =
        if running_on(&kubectl, "a") > 0 { ("a", "b", 0) } else { ("b", "a", 1) };
    agents[index].stop();

    wait_until("the stopped node is unreachable and tainted", WAIT, || {
        field(&kubectl, &["node", lost], "{.status.conditions[?(@.type==\"Ready\")].status}")
            == "Unknown"
            && field(&kubectl, &["node", lost], "{.spec.taints[?(@.effect==\"NoExecute\")].key}")
                == "node.kubernetes.io/unreachable"
    });
    wait_until("its pods are replaced on the other node", WAIT, || running_on(&kubectl, kept) == 4);
    assert!(
        web_pods(&kubectl).iter().all(|(_, n, _, gone)| n != lost || *gone),
        "pods left on {lost}: {:?}",
        web_pods(&kubectl)
    );

    agents[index] = agent(&server, lost);
    wait_until("the returning node is untainted and its pods cleared", WAIT, || {
        field(&kubectl, &["node", lost], "{.spec.taints}").is_empty()
            && web_pods(&kubectl).iter().all(|(_, n, _, _)| n != lost)
    });
    assert_eq!(running_on(&kubectl, kept), 4);
}

/// Stops or continues a process (SIGSTOP/SIGCONT): an agent that is alive but unheard.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_kubelet_heard_again_reports_ready_at_once_and_node_events_are_recorded() {
    let server = CapstanServer::start(
        binary(),
        &["--node-monitor-grace-period", "15s", "--node-monitor-period", "1s"],
    )
    .expect("capstan starts");
    let kubectl = server.kubectl();
    let agent = agent(&server, "quiet");
    let ready = |kubectl: &Kubectl| {
        field(kubectl, &["node", "quiet"], "{.status.conditions[?(@.type==\"Ready\")].status}")
    };
    wait_until("the node is ready", WAIT, || ready(&kubectl) == "True");

    // Alive but unheard: its Lease runs out and the controller marks the node Unknown.
    signal(agent.pid(), "STOP");
    wait_until("the node is marked unknown", WAIT, || ready(&kubectl) == "Unknown");
    signal(agent.pid(), "CONT");
    // Its own last report said Ready: it must still correct what is stored, well before the
    // five-minute status report.
    wait_until("the node is ready again and untainted", WAIT, || {
        ready(&kubectl) == "True"
            && field(&kubectl, &["node", "quiet"], "{.spec.taints}").is_empty()
    });

    let reasons = || {
        field(
            &kubectl,
            &["events", "-A", "--field-selector", "involvedObject.name=quiet"],
            "{.items[*].reason}",
        )
    };
    wait_until("the node's events are recorded", WAIT, || {
        let reasons = reasons();
        ["RegisteredNode", "NodeNotReady", "NodeReady"].iter().all(|r| reasons.contains(r))
    });
    let describe = kubectl.ok(&["describe", "node", "quiet"]);
    for line in [
        "Node quiet event: Registered Node quiet in Controller",
        "Node quiet status is now: NodeNotReady",
        "Node quiet status is now: NodeReady",
    ] {
        assert!(describe.contains(line), "{line:?} not in:\n{describe}");
    }
}

#[test]
fn budgets_get_status_evictions_honour_them_and_kubectl_drain_works() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let kubectl = server.kubectl();
    let _agents = [agent(&server, "a"), agent(&server, "b")];
    kubectl.create(&replica_set(2));
    kubectl.create(
        "{apiVersion: policy/v1, kind: PodDisruptionBudget, metadata: {name: web}, spec: {minAvailable: 2, selector: {matchLabels: {app: web}}}}",
    );
    let pdb = |path: &str| field(&kubectl, &["pdb", "web"], path);
    wait_until("the budget counts two healthy pods and allows nothing", WAIT, || {
        pdb(
            "{.status.currentHealthy}/{.status.desiredHealthy}/{.status.expectedPods}/{.status.disruptionsAllowed}",
        ) == "2/2/2/0"
    });
    let victim = web_pods(&kubectl)[0].0.clone();
    let eviction = format!(
        "{{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{{\"name\":\"{victim}\"}}}}"
    );
    let out = kubectl.run_with_input(
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{victim}/eviction"),
            "-f",
            "-",
        ],
        &eviction,
    );
    assert!(
        !out.success && out.stderr.contains("disruption budget"),
        "eviction against the budget: {}",
        out.stderr
    );
    assert_eq!(field(&kubectl, &["pod", &victim], "{.metadata.deletionTimestamp}"), "");

    kubectl.ok(&["patch", "pdb", "web", "--type=merge", "-p", r#"{"spec":{"minAvailable":1}}"#]);
    wait_until("one disruption is allowed", WAIT, || pdb("{.status.disruptionsAllowed}") == "1");
    let node = web_pods(&kubectl)[0].1.clone();
    let other = if node == "a" { "b" } else { "a" };
    let out = kubectl.run(&["drain", &node, "--timeout=120s", "--ignore-daemonsets"]);
    assert!(out.success, "kubectl drain failed: {}", out.stderr);
    assert_eq!(field(&kubectl, &["node", &node], "{.spec.unschedulable}"), "true");
    wait_until("the pods run on the other node", WAIT, || running_on(&kubectl, other) == 2);
    assert!(web_pods(&kubectl).iter().all(|(_, n, _, _)| *n != node), "{:?}", web_pods(&kubectl));
}
