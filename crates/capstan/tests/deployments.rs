//! Workload controllers end to end with the real binary and `/usr/bin/kubectl`: ReplicaSets,
//! ReplicationControllers and Deployments keep their pods, scale, roll out and roll back.
//! A stand-in kubelet task marks pods Running and Ready through the status subresource.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn start() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("capstan starts")
}

async fn client(server: &CapstanServer) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}

/// Stands in for a kubelet: pods become Running and Ready, deleted ones go at once.
fn spawn_kubelet(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        loop {
            for pod in pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default()
            {
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
                if pod.metadata.deletion_timestamp.is_some() {
                    let _ = api.delete(&name, &DeleteParams::default().grace_period(0)).await;
                    continue;
                }
                let ready =
                    pod.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
                        c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                    });
                if !ready {
                    let status = json!({"status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True",
                         "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string()}]}});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

fn json_of(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl.ok(&all)).expect("kubectl prints JSON")
}

/// Live (not terminating) pods with `selector`.
fn live_pods(kubectl: &Kubectl, selector: &str) -> Vec<Value> {
    let list = json_of(kubectl, &["get", "pods", "-l", selector]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata: {name: keeper}
spec:
  replicas: 3
  selector: {app: keeper}
  template:
    metadata: {labels: {app: keeper}}
    spec: {containers: [{name: c, image: busybox}]}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn replication_controller_keeps_replicas_when_pods_are_deleted_by_hand() {
    let server = start();
    let kubelet = spawn_kubelet(client(&server).await);
    let kubectl = server.kubectl();
    let kubeconfig = kubectl.kubeconfig.clone();
    blocking(move || {
        let kubectl = Kubectl { kubeconfig };
        kubectl.create(RC);
        wait_until("the RC has 3 pods", WAIT, || live_pods(&kubectl, "app=keeper").len() == 3);
        let pods = live_pods(&kubectl, "app=keeper");
        let owner = &pods[0]["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicationController");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        let victims: Vec<String> =
            pods[..2].iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
        let mut delete = vec!["delete", "pod"];
        delete.extend(victims.iter().map(String::as_str));
        kubectl.ok(&delete);
        wait_until("the RC replaced the deleted pods", WAIT, || {
            let live = live_pods(&kubectl, "app=keeper");
            live.len() == 3
                && live
                    .iter()
                    .all(|p| !victims.iter().any(|v| p["metadata"]["name"] == *v.as_str()))
        });
        wait_until("the RC reports 3 ready replicas", WAIT, || {
            let rc = json_of(&kubectl, &["get", "rc", "keeper"]);
            rc["status"]["readyReplicas"] == 3 && rc["status"]["availableReplicas"] == 3
        });
        let events =
            kubectl.ok(&["get", "events", "--field-selector", "involvedObject.name=keeper"]);
        assert!(events.contains("SuccessfulCreate"), "{events}");
        assert!(events.contains("Created pod: keeper-"), "{events}");
    })
    .await
    .unwrap();
    kubelet.abort();
}

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn replicaset_scales_adopts_orphans_and_releases_relabelled_pods() {
    let server = start();
    let kubelet = spawn_kubelet(client(&server).await);
    let kubeconfig = server.kubectl().kubeconfig.clone();
    blocking(move || {
        let kubectl = Kubectl { kubeconfig };
        kubectl.create(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: stray, labels: {app: web}}\n\
             spec: {containers: [{name: c, image: busybox}]}\n",
        );
        kubectl.create(RS);
        wait_until("the orphan is adopted and one pod created", WAIT, || {
            let pods = live_pods(&kubectl, "app=web");
            pods.len() == 2
                && pods.iter().all(|p| p["metadata"]["ownerReferences"][0]["name"] == "web")
        });
        kubectl.ok(&["scale", "rs", "web", "--replicas=4"]);
        wait_until("4 ready replicas", WAIT, || {
            json_of(&kubectl, &["get", "rs", "web"])["status"]["readyReplicas"] == 4
        });
        kubectl.ok(&["label", "pod", "stray", "app=gone", "--overwrite"]);
        wait_until("the relabelled pod is released and replaced", WAIT, || {
            let stray = json_of(&kubectl, &["get", "pod", "stray"]);
            stray["metadata"]["ownerReferences"].as_array().is_none_or(Vec::is_empty)
                && live_pods(&kubectl, "app=web").len() == 4
        });
        kubectl.ok(&["scale", "rs", "web", "--replicas=1"]);
        wait_until("scaled down to 1", WAIT, || {
            let rs = json_of(&kubectl, &["get", "rs", "web"]);
            live_pods(&kubectl, "app=web").len() == 1 && rs["status"]["replicas"] == 1
        });
        let rs = json_of(&kubectl, &["get", "rs", "web"]);
        assert_eq!(rs["status"]["observedGeneration"], rs["metadata"]["generation"]);
        assert_eq!(rs["status"]["fullyLabeledReplicas"], 1);
    })
    .await
    .unwrap();
    kubelet.abort();
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  revisionHistoryLimit: 5
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: "busybox:1"}]}
"#;

/// The deployment's ReplicaSets as (name, spec replicas, available, revision).
fn replica_sets(kubectl: &Kubectl) -> Vec<(String, i64, i64, String)> {
    let list = json_of(kubectl, &["get", "rs", "-l", "app=web"]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                rs["spec"]["replicas"].as_i64().unwrap_or(0),
                rs["status"]["availableReplicas"].as_i64().unwrap_or(0),
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn rollout_status(kubectl: &Kubectl) -> String {
    kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=60s"])
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_scales_rolls_out_within_surge_and_unavailability_and_rolls_back() {
    let server = start();
    let kubelet = spawn_kubelet(client(&server).await);
    let kubeconfig = server.kubectl().kubeconfig.clone();
    blocking(move || {
        let kubectl = Kubectl { kubeconfig };
        kubectl.create(DEPLOYMENT);
        let out = rollout_status(&kubectl);
        assert!(out.contains("successfully rolled out"), "{out}");
        let first = replica_sets(&kubectl);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].1, first[0].3.as_str()), (4, "1"));

        kubectl.ok(&["scale", "deployment", "web", "--replicas=6"]);
        wait_until("6 available", WAIT, || {
            json_of(&kubectl, &["get", "deploy", "web"])["status"]["availableReplicas"] == 6
        });
        kubectl.ok(&["scale", "deployment", "web", "--replicas=4"]);
        wait_until("back to 4 pods", WAIT, || live_pods(&kubectl, "app=web").len() == 4);

        // Watch every step of the image update: at most 4+1 pods wanted, at least 4-1 available.
        let watcher = {
            let kubectl = Kubectl { kubeconfig: kubectl.kubeconfig.clone() };
            std::thread::spawn(move || {
                let mut steps = Vec::new();
                let deadline = std::time::Instant::now() + WAIT;
                loop {
                    let sets = replica_sets(&kubectl);
                    let wanted: i64 = sets.iter().map(|s| s.1).sum();
                    let available: i64 = sets.iter().map(|s| s.2).sum();
                    steps.push((wanted, available, sets.clone()));
                    let done = sets.len() == 2
                        && sets.iter().all(|s| {
                            (s.3 == "2") == (s.1 == 4 && s.2 == 4) && (s.3 != "1" || s.1 == 0)
                        });
                    if done || std::time::Instant::now() > deadline {
                        return steps;
                    }
                }
            })
        };
        kubectl.ok(&["set", "image", "deployment/web", "c=busybox:2"]);
        let out = rollout_status(&kubectl);
        assert!(out.contains("successfully rolled out"), "{out}");
        let steps = watcher.join().unwrap();
        assert!(steps.len() > 1, "the rollout was observed");
        for (wanted, available, sets) in &steps {
            assert!(*wanted <= 5, "maxSurge exceeded: {sets:?}");
            assert!(*available >= 3, "maxUnavailable exceeded: {sets:?}");
        }
        let sets = replica_sets(&kubectl);
        let old = sets.iter().find(|s| s.3 == "1").expect("revision 1 is kept");
        assert_eq!(old.1, 0, "the old ReplicaSet went to 0");

        let history = kubectl.ok(&["rollout", "history", "deployment/web"]);
        assert!(history.contains('1') && history.contains('2'), "{history}");
        kubectl.ok(&["rollout", "undo", "deployment/web"]);
        rollout_status(&kubectl);
        let deployment = json_of(&kubectl, &["get", "deploy", "web"]);
        assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1");
        let sets = replica_sets(&kubectl);
        assert_eq!(sets.len(), 2, "undo reuses the revision-1 ReplicaSet: {sets:?}");
        let revived = sets.iter().find(|s| s.1 == 4).expect("one ReplicaSet is scaled up");
        assert_eq!(revived.3, "3", "the revived ReplicaSet becomes revision 3");
        kubectl.ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
        rollout_status(&kubectl);
        let deployment = json_of(&kubectl, &["get", "deploy", "web"]);
        assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:2");

        kubectl.ok(&["rollout", "pause", "deployment/web"]);
        kubectl.ok(&["set", "image", "deployment/web", "c=busybox:3"]);
        wait_until("the paused deployment reports it is paused", WAIT, || {
            let d = json_of(&kubectl, &["get", "deploy", "web"]);
            d["status"]["observedGeneration"] == d["metadata"]["generation"]
                && d["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["reason"] == "DeploymentPaused"))
        });
        assert_eq!(replica_sets(&kubectl).len(), 2, "no rollout while paused");
        kubectl.ok(&["rollout", "resume", "deployment/web"]);
        rollout_status(&kubectl);
        assert_eq!(replica_sets(&kubectl).len(), 3);

        kubectl.ok(&["rollout", "restart", "deployment/web"]);
        rollout_status(&kubectl);
        let sets = replica_sets(&kubectl);
        assert_eq!(sets.len(), 4, "restart rolls out a new ReplicaSet: {sets:?}");
        assert_eq!(sets.iter().filter(|s| s.1 > 0).count(), 1);

        let d = json_of(&kubectl, &["get", "deploy", "web"]);
        assert_eq!(d["status"]["updatedReplicas"], 4);
        assert_eq!(d["status"]["availableReplicas"], 4);
        let conditions = d["status"]["conditions"].as_array().unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Available" && c["reason"] == "MinimumReplicasAvailable")
        );
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable")
        );
        let describe = kubectl.ok(&["describe", "deployment", "web"]);
        assert!(describe.contains("ScalingReplicaSet"), "{describe}");
        // One event per scale, worded as upstream's: "Scaled <up|down> replica set X from A to B".
        assert!(describe.contains("Scaled up replica set web-"), "{describe}");
        assert!(describe.contains(" from 0 to 4"), "{describe}");
        assert!(describe.contains(" from 4 to 6"), "{describe}");
        assert!(describe.contains("Scaled down replica set web-"), "{describe}");
        assert!(describe.contains(" from 6 to 4"), "{describe}");
    })
    .await
    .unwrap();
    kubelet.abort();
}
