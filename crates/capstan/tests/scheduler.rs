//! The scheduler against a real server: Node objects created directly (no agent needed for
//! binding), pods placed by resources, node selectors, taints, anti-affinity and topology
//! spread; unschedulable pods explained; preemption; no race into a last slot; and two
//! schedulers under leader election never both binding.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use capstan_testkit::{CapstanServer, wait_until};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_capstan"))
}

async fn client(server: &CapstanServer) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}

/// A Ready node with `cpu` cores, 16Gi, 110 pods, and `extra` merged in (labels, taints).
async fn create_node(client: &kube::Client, name: &str, cpu: &str, extra: Value) {
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    });
    merge(&mut node, extra);
    let node: Node = serde_json::from_value(node).unwrap();
    let api: Api<Node> = Api::all(client.clone());
    let created = api.create(&PostParams::default(), &node).await.unwrap();
    // Status is not taken on create by every server: write it through the subresource too.
    if created.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_none() {
        let mut with_status = created;
        with_status.status = node.status;
        api.replace_status(name, &PostParams::default(), &with_status).await.unwrap();
    }
}

/// A pod with one container requesting `cpu`, and `spec` merged in.
async fn create_pod(client: &kube::Client, name: &str, labels: Value, cpu: &str, spec: Value) {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu}}}]},
    });
    merge(&mut pod["spec"], spec);
    let pod: Pod = serde_json::from_value(pod).unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Blocks on the async API from the synchronous `wait_until` poll.
fn get_pod(client: &kube::Client, name: &str) -> Option<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = name.to_owned();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(async move { api.get_opt(&name).await.ok().flatten() })
    })
}

fn node_of(client: &kube::Client, name: &str) -> Option<String> {
    get_pod(client, name)?.spec?.node_name
}

fn wait_bound(client: &kube::Client, name: &str) -> String {
    wait_until(&format!("pod {name} is bound"), WAIT, || node_of(client, name).is_some());
    node_of(client, name).unwrap()
}

/// The pod's PodScheduled=False condition message, once it has one.
fn unschedulable_message(client: &kube::Client, name: &str) -> Option<String> {
    let status = get_pod(client, name)?.status?;
    let condition = status.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
    (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable"))
        .then(|| condition.message.unwrap_or_default())
}

fn wait_unschedulable(client: &kube::Client, name: &str) -> String {
    wait_until(&format!("pod {name} is marked unschedulable"), WAIT, || {
        unschedulable_message(client, name).is_some()
    });
    unschedulable_message(client, name).unwrap()
}

async fn events_for(client: &kube::Client, pod: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let events = api.list(&ListParams::default()).await.unwrap().items;
    events
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_are_placed_by_resources_selectors_taints_anti_affinity_and_spread() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let client = client(&server).await;
    create_node(&client, "small", "1", json!({"metadata": {"labels": {"zone": "a"}}})).await;
    create_node(&client, "big", "8", json!({"metadata": {"labels": {"zone": "b", "disk": "ssd"}}}))
        .await;
    create_node(
        &client,
        "gpu",
        "8",
        json!({
            "metadata": {"labels": {"zone": "c", "accelerator": "gpu"}},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
        }),
    )
    .await;

    // Only "big" has 4 free cores without a taint.
    create_pod(&client, "needs-4-cores", json!({}), "4", json!({})).await;
    assert_eq!(wait_bound(&client, "needs-4-cores"), "big");
    create_pod(&client, "wants-ssd", json!({}), "100m", json!({"nodeSelector": {"disk": "ssd"}}))
        .await;
    assert_eq!(wait_bound(&client, "wants-ssd"), "big");
    let toleration = json!({"nodeSelector": {"accelerator": "gpu"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]});
    create_pod(&client, "tolerates-gpu", json!({}), "100m", toleration).await;
    assert_eq!(wait_bound(&client, "tolerates-gpu"), "gpu");

    // Anti-affinity by hostname: the two replicas land on different nodes.
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    create_pod(&client, "web-1", json!({"app": "web"}), "100m", anti.clone()).await;
    let first = wait_bound(&client, "web-1");
    create_pod(&client, "web-2", json!({"app": "web"}), "100m", anti).await;
    let second = wait_bound(&client, "web-2");
    assert_ne!(first, second, "anti-affinity put both replicas on {first}");

    // Topology spread over zones a and b, maxSkew 1. Zone c is kept out by node affinity (as
    // upstream, a tainted node's zone would still count as an empty domain).
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}});
    let mut zones = BTreeMap::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        create_pod(&client, &name, json!({"app": "spread"}), "10m", spread.clone()).await;
        let node = wait_bound(&client, &name);
        *zones.entry(node).or_insert(0) += 1;
    }
    assert_eq!(zones, BTreeMap::from([("big".to_owned(), 2), ("small".to_owned(), 2)]));

    // A bound pod gets a Scheduled event.
    let scheduled = events_for(&client, "needs-4-cores", "Scheduled").await;
    assert_eq!(
        scheduled.first().and_then(|e| e.note.clone()).as_deref(),
        Some("Successfully assigned default/needs-4-cores to big")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unschedulable_pods_are_explained_and_retried_when_a_node_appears() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let client = client(&server).await;
    create_node(&client, "small", "1", json!({})).await;
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}});
    create_node(&client, "tainted-1", "16", taint.clone()).await;
    create_node(&client, "tainted-2", "16", taint).await;

    create_pod(&client, "too-big", json!({}), "2", json!({})).await;
    let message = wait_unschedulable(&client, "too-big");
    assert!(
        message.starts_with(
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}. preemption: "
        ),
        "{message}"
    );
    wait_until("a FailedScheduling event", WAIT, || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                events_for(&client, "too-big", "FailedScheduling")
                    .await
                    .iter()
                    .any(|e| e.note.as_deref() == Some(message.as_str()))
            })
        })
    });

    // Bad input stays pending with a clear reason and does not block other pods.
    let unknown_key = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "no.such/key",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]});
    create_pod(&client, "unknown-topology-key", json!({"app": "x"}), "10m", unknown_key).await;
    let message = wait_unschedulable(&client, "unknown-topology-key");
    assert!(
        message.contains("didn't match pod topology spread constraints (missing required label)"),
        "{message}"
    );
    let huge = json!({"containers": [{"name": "c", "image": "busybox",
        "resources": {"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "1"}}}]});
    create_pod(&client, "wants-a-gpu", json!({}), "10m", huge).await;
    let message = wait_unschedulable(&client, "wants-a-gpu");
    assert!(message.contains("Insufficient example.com/gpu"), "{message}");
    create_pod(&client, "ordinary", json!({}), "100m", json!({})).await;
    assert_eq!(wait_bound(&client, "ordinary"), "small");

    // A node that fits arrives: the waiting pod is retried and bound there.
    create_node(&client, "roomy", "4", json!({})).await;
    assert_eq!(wait_bound(&client, "too-big"), "roomy");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_higher_priority_pod_preempts_a_lower_priority_one() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let client = client(&server).await;
    server.kubectl().create(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
    );
    create_node(&client, "only", "2", json!({})).await;
    create_pod(&client, "low", json!({}), "2", json!({})).await;
    assert_eq!(wait_bound(&client, "low"), "only");

    create_pod(&client, "high", json!({}), "1", json!({"priorityClassName": "high"})).await;
    wait_until("the preemptor is nominated to the node", WAIT, || {
        get_pod(&client, "high")
            .and_then(|p| p.status?.nominated_node_name)
            .is_some_and(|n| n == "only")
    });
    // The victim is deleted gracefully (no agent runs here to finish it: do it for the kubelet).
    wait_until("the victim is terminating", WAIT, || {
        get_pod(&client, "low").is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let _ = pods
        .delete("low", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await;
    assert_eq!(wait_bound(&client, "high"), "only");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pods_never_race_into_the_last_slot() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let client = client(&server).await;
    create_node(&client, "one-core", "1", json!({})).await;
    let (a, b) = tokio::join!(
        create_pod(&client, "first", json!({}), "1", json!({})),
        create_pod(&client, "second", json!({}), "1", json!({})),
    );
    let _ = (a, b);
    // A pod seen before the node may first read "0/0 nodes are available"; the node's arrival
    // retries it, and it must then be refused for the slot the other pod took.
    wait_until("one pod bound and the other refused for cpu", WAIT, || {
        let bound = ["first", "second"].iter().filter(|p| node_of(&client, p).is_some()).count();
        let refused = ["first", "second"]
            .iter()
            .filter_map(|p| unschedulable_message(&client, p))
            .filter(|m| m.starts_with("0/1 nodes are available: 1 Insufficient cpu."))
            .count();
        bound == 1 && refused == 1
    });
}

/// Starts `capstan scheduler` against the server, logging to `log`.
fn standalone_scheduler(server: &CapstanServer, log: &Path) -> Child {
    Command::new(binary())
        .arg("scheduler")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["--scheduler-name", "second", "--leader-elect-resource-name", "second-scheduler"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("capstan scheduler starts")
}

/// The `reportingInstance`s of the Scheduled events of `pods`.
async fn binders(client: &kube::Client, pods: &[String]) -> HashSet<String> {
    let mut instances = HashSet::new();
    for pod in pods {
        for event in events_for(client, pod, "Scheduled").await {
            instances.extend(event.reporting_instance);
        }
    }
    instances
}

#[tokio::test(flavor = "multi_thread")]
async fn two_schedulers_under_leader_election_never_both_bind() {
    let server = CapstanServer::start(binary(), &[]).expect("capstan starts");
    let client = client(&server).await;
    create_node(&client, "n1", "8", json!({})).await;
    create_node(&client, "n2", "8", json!({})).await;
    let logs = tempfile::tempdir().unwrap();
    let mut one = standalone_scheduler(&server, &logs.path().join("one.log"));
    let mut two = standalone_scheduler(&server, &logs.path().join("two.log"));
    let led = |name: &str| {
        std::fs::read_to_string(logs.path().join(name))
            .unwrap_or_default()
            .contains("became leader")
    };
    wait_until("one scheduler leads", WAIT, || led("one.log") || led("two.log"));

    let batch = |prefix: &str| (0..6).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();
    let first = batch("before");
    for pod in &first {
        create_pod(&client, pod, json!({}), "10m", json!({"schedulerName": "second"})).await;
    }
    for pod in &first {
        wait_bound(&client, pod);
    }
    assert!(!(led("one.log") && led("two.log")), "both schedulers lead");
    wait_until("Scheduled events are recorded", WAIT, || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let pods = first.clone();
                let mut all = true;
                for pod in &pods {
                    all &= !events_for(&client, pod, "Scheduled").await.is_empty();
                }
                all
            })
        })
    });
    let leader_instances = binders(&client, &first).await;
    assert_eq!(leader_instances.len(), 1, "pods bound by {leader_instances:?}");

    // The leader dies without releasing the lease; the other takes over once it expires.
    let (leader, standby_log) =
        if led("one.log") { (&mut one, "two.log") } else { (&mut two, "one.log") };
    leader.kill().unwrap();
    leader.wait().unwrap();
    let second = batch("after");
    for pod in &second {
        create_pod(&client, pod, json!({}), "10m", json!({"schedulerName": "second"})).await;
    }
    wait_until("the standby takes over", WAIT, || led(standby_log));
    for pod in &second {
        wait_bound(&client, pod);
    }
    // The server's own scheduler (default-scheduler) never touched these pods.
    wait_until("Scheduled events are recorded", WAIT, || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let mut all = true;
                for pod in &second {
                    all &= !events_for(&client, pod, "Scheduled").await.is_empty();
                }
                all
            })
        })
    });
    let standby_instances = binders(&client, &second).await;
    assert_eq!(standby_instances.len(), 1);
    assert!(leader_instances.is_disjoint(&standby_instances));
    let _ = one.kill();
    let _ = two.kill();
    let _ = (one.wait(), two.wait());
}
