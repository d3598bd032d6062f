use std::collections::BTreeMap;
use std::sync::Arc;

use capstan_api::pairs::Pairs;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, ReplicationController,
    ReplicationControllerSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::events::Recorded;
use crate::informer::by_namespace_and_controller;
use crate::testing::FakeApi;

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), "web".to_owned())])
}

fn template() -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels()), ..Default::default() }),
        spec: Some(PodSpec::default()),
    }
}

fn replica_set(replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("rs-uid".into()),
            generation: Some(2),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels()), ..Default::default() },
            template: Some(template()),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod(name: &str, owner: Option<&ReplicaSet>, node: Option<&str>, ready: bool) -> CachedPod {
    CachedPod::from(&Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("{name}-uid")),
            labels: Some(labels()),
            owner_references: owner.map(|o| vec![controller_ref(o)]),
            creation_timestamp: Some(Time(Timestamp::from_second(1000).unwrap())),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: node.map(Into::into), ..Default::default() }),
        status: Some(PodStatus {
            phase: Some(if node.is_some() { "Running" } else { "Pending" }.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    })
}

struct Harness<K: ReplicaKind> {
    api: FakeApi,
    ctx: Arc<Context<K>>,
    events: tokio::sync::mpsc::Receiver<Recorded>,
}

fn harness<K: ReplicaKind>(api: FakeApi, owners: Vec<K>, pods: Vec<CachedPod>) -> Harness<K> {
    let (recorder, events) = EventRecorder::channel();
    let ctx = Arc::new(Context {
        client: api.client(),
        pods: Informer::fixed(pods, by_namespace_and_controller),
        owners: Informer::fixed(owners, by_namespace_and_controller),
        expectations: Arc::default(),
        events: recorder,
    });
    Harness { api, ctx, events }
}

#[tokio::test]
async fn a_replicaset_with_3_replicas_and_1_pod_creates_2_with_controller_owner_references() {
    let rs = replica_set(3);
    let mut h = harness(
        FakeApi::default(),
        vec![rs.clone()],
        vec![pod("web-a", Some(&rs), Some("n1"), true)],
    );
    reconcile(Arc::new(rs), h.ctx.clone()).await.unwrap();

    let creates = h.api.calls_to("POST", "/api/v1/namespaces/ns/pods");
    assert_eq!(creates.len(), 2);
    for create in &creates {
        let meta = &create.body["metadata"];
        assert_eq!(meta["generateName"], "web-");
        assert_eq!(meta["labels"], json!({"app": "web"}));
        assert_eq!(
            meta["ownerReferences"],
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid",
                    "controller": true, "blockOwnerDeletion": true}])
        );
    }
    let status = h.api.calls_to("PATCH", "/replicasets/web/status");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].body["status"]["replicas"], 1, "status counts the pods seen so far");
    assert_eq!(status[0].body["status"]["observedGeneration"], 2);
    let reasons: Vec<String> =
        std::iter::from_fn(|| h.events.try_recv().ok()).map(|e| e.reason).collect();
    assert_eq!(reasons, ["SuccessfulCreate", "SuccessfulCreate"]);
}

#[tokio::test]
async fn a_stale_cache_never_doubles_creates() {
    let rs = replica_set(2);
    let h = harness(FakeApi::default(), vec![rs.clone()], vec![]);
    reconcile(Arc::new(rs.clone()), h.ctx.clone()).await.unwrap();
    // The cache has not seen the two new pods yet: a second sync must not create more.
    reconcile(Arc::new(rs), h.ctx.clone()).await.unwrap();
    assert_eq!(h.api.calls_to("POST", "/pods").len(), 2);
}

#[tokio::test]
async fn creation_goes_in_slow_start_batches_and_stops_at_the_first_refusal() {
    let api = FakeApi::refusing(|call| {
        let created_before = call.body["metadata"]["generateName"].is_string();
        (created_before && call.method == "POST" && call.path.ends_with("/pods"))
            .then(|| (403, "Forbidden", "exceeded quota: pods".to_owned()))
    });
    let rs = replica_set(10);
    let mut h = harness(api, vec![rs.clone()], vec![]);
    let result = reconcile(Arc::new(rs), h.ctx.clone()).await;
    assert!(result.is_err(), "a refused creation is retried");
    // The first batch of one fails, so no further batch is sent.
    assert_eq!(h.api.calls_to("POST", "/pods").len(), 1);
    let status = &h.api.calls_to("PATCH", "/replicasets/web/status")[0].body["status"];
    assert_eq!(status["conditions"][0]["type"], "ReplicaFailure");
    assert_eq!(status["conditions"][0]["reason"], "FailedCreate");
    assert_eq!(status["conditions"][0]["message"], "exceeded quota: pods");
    let event = h.events.try_recv().unwrap();
    assert_eq!((event.reason.as_str(), event.warning), ("FailedCreate", true));
    assert!(h.ctx.expectations.satisfied("ReplicaSet/ns/web"), "refused creations are not awaited");
}

#[tokio::test]
async fn surplus_deletion_prefers_unscheduled_pods() {
    let rs = replica_set(1);
    let pods = vec![
        pod("running", Some(&rs), Some("n1"), true),
        pod("unscheduled", Some(&rs), None, false),
    ];
    let h = harness(FakeApi::default(), vec![rs.clone()], pods);
    reconcile(Arc::new(rs), h.ctx.clone()).await.unwrap();
    let deletes = h.api.calls_to("DELETE", "");
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0].path.ends_with("/pods/unscheduled"));
    assert_eq!(deletes[0].body["preconditions"]["uid"], "unscheduled-uid");
}

#[tokio::test]
async fn matching_orphans_are_adopted_and_mismatching_pods_released() {
    let rs = replica_set(2);
    let mut stray = pod("stray", Some(&rs), Some("n1"), true);
    stray.labels = Pairs::of([("app", "other")].into_iter());
    let pods = vec![pod("orphan", None, Some("n1"), true), stray];
    let h = harness(FakeApi::default(), vec![rs.clone()], pods);
    reconcile(Arc::new(rs), h.ctx.clone()).await.unwrap();

    let adopt = h.api.calls_to("PATCH", "/pods/orphan");
    assert_eq!(adopt.len(), 1);
    assert_eq!(adopt[0].body["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(adopt[0].body["metadata"]["uid"], "orphan-uid");
    let release = h.api.calls_to("PATCH", "/pods/stray");
    assert_eq!(
        release[0].body["metadata"]["ownerReferences"],
        json!([{"$patch": "delete", "uid": "rs-uid"}])
    );
    // The adopted orphan counts, the released pod does not: one more is created.
    assert_eq!(h.api.calls_to("POST", "/pods").len(), 1);
}

#[tokio::test]
async fn pods_of_another_controller_are_left_alone() {
    let rs = replica_set(1);
    let mut other = replica_set(1);
    other.metadata.uid = Some("other-uid".into());
    let h = harness(
        FakeApi::default(),
        vec![rs.clone()],
        vec![pod("theirs", Some(&other), Some("n1"), true)],
    );
    reconcile(Arc::new(rs), h.ctx.clone()).await.unwrap();
    assert!(h.api.calls_to("PATCH", "/pods/theirs").is_empty());
    assert_eq!(h.api.calls_to("POST", "/pods").len(), 1);
}

#[tokio::test]
async fn status_counts_ready_and_fully_labeled_pods_and_is_not_rewritten_when_unchanged() {
    let mut rs = replica_set(2);
    let mut partial = pod("partial", Some(&rs), Some("n1"), false);
    partial.labels = Pairs::of([("app", "web")].into_iter());
    rs.spec.as_mut().unwrap().template.as_mut().unwrap().metadata.as_mut().unwrap().labels =
        Some(BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "x".to_owned()),
        ]));
    let mut full = pod("full", Some(&rs), Some("n1"), true);
    full.labels = Pairs::of([("app", "web"), ("tier", "x")].into_iter());
    let h = harness(FakeApi::default(), vec![rs.clone()], vec![partial, full]);
    reconcile(Arc::new(rs.clone()), h.ctx.clone()).await.unwrap();
    let status = h.api.calls_to("PATCH", "/status")[0].body["status"].clone();
    assert_eq!(status["replicas"], 2);
    assert_eq!(status["fullyLabeledReplicas"], 1);
    assert_eq!(status["readyReplicas"], 1);
    assert_eq!(status["availableReplicas"], 1);

    let mut synced = rs;
    synced.status = Some(serde_json::from_value(status).unwrap());
    let before = h.api.calls().len();
    reconcile(Arc::new(synced), h.ctx.clone()).await.unwrap();
    assert_eq!(h.api.calls().len(), before, "an up-to-date status is not written again");
}

#[tokio::test]
async fn a_replication_controller_selects_by_its_template_labels() {
    let rc = ReplicationController {
        metadata: ObjectMeta {
            name: Some("rc".into()),
            namespace: Some("ns".into()),
            uid: Some("rc-uid".into()),
            ..Default::default()
        },
        spec: Some(ReplicationControllerSpec {
            replicas: Some(2),
            selector: None,
            template: Some(template()),
            ..Default::default()
        }),
        status: None,
    };
    let h =
        harness(FakeApi::default(), vec![rc.clone()], vec![pod("orphan", None, Some("n1"), true)]);
    reconcile(Arc::new(rc), h.ctx.clone()).await.unwrap();
    assert_eq!(h.api.calls_to("PATCH", "/pods/orphan").len(), 1, "the orphan is adopted");
    let creates = h.api.calls_to("POST", "/api/v1/namespaces/ns/pods");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].body["metadata"]["ownerReferences"][0]["kind"], "ReplicationController");
    assert_eq!(h.api.calls_to("PATCH", "/replicationcontrollers/rc/status").len(), 1);
}

#[test]
fn pod_changes_wake_their_controller_and_settle_expectations() {
    let rs = replica_set(1);
    let owners = Informer::fixed(vec![rs.clone()], by_namespace_and_controller);
    let expectations = Expectations::default();
    expectations.expect_creations("ReplicaSet/ns/web", 1);
    let created = Arc::new(pod("new", Some(&rs), None, false));
    let refs = observe_pod_change(&Change::Added(created), &owners, &expectations);
    assert_eq!(refs, [ObjectRef::new("web").within("ns")]);
    assert!(expectations.satisfied("ReplicaSet/ns/web"));

    let orphan = Arc::new(pod("orphan", None, None, false));
    let refs = observe_pod_change(&Change::Deleted(orphan), &owners, &expectations);
    assert_eq!(refs, [ObjectRef::new("web").within("ns")], "a matching orphan wakes the owner");
}
