//! Node lifecycle through kubectl: a node whose Lease stops being renewed goes Ready=Unknown,
//! is tainted unreachable and loses the pods that do not tolerate that; renewing again
//! untaints it. Nodes also get pod CIDRs. (Nodes and Leases are written here as a kubelet would.)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};

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

fn renew(kubectl: &Kubectl, node: &str) {
    let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, now());
    kubectl.ok(&["patch", "lease", node, "-n", "kube-node-lease", "--type=merge", "-p", &patch]);
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
    assert_eq!(
        field(&kubectl, &["pod", "tolerant"], "{.status.conditions[?(@.type==\"Ready\")].status}"),
        "False"
    );
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
