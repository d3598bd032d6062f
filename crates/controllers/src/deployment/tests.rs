use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::informer::by_namespace_and_controller;
use crate::testing::FakeApi;

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), "web".to_owned())])
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels()), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn deployment(replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels()), ..Default::default() },
            template: template(image),
            revision_history_limit: Some(1),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    }
}

/// A ReplicaSet the deployment made earlier for `image`, fully available.
fn old_rs(d: &Deployment, image: &str, revision: i64, replicas: i32, created: i64) -> ReplicaSet {
    let hash = template_hash(&template(image), None);
    let mut t = template(image);
    t.metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("web-{hash}")),
            labels: t.metadata.as_ref().unwrap().labels.clone(),
            namespace: Some("ns".into()),
            uid: Some(format!("rs-{revision}")),
            generation: Some(1),
            creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
            annotations: Some(BTreeMap::from([
                (REVISION.to_owned(), revision.to_string()),
                (DESIRED_REPLICAS.to_owned(), super::util::replicas(d).to_string()),
            ])),
            owner_references: Some(vec![controller_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            template: Some(t),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            observed_generation: Some(1),
            ..Default::default()
        }),
    }
}

fn context(
    api: &FakeApi,
    replica_sets: Vec<ReplicaSet>,
) -> (Arc<Context>, tokio::sync::mpsc::Receiver<crate::events::Recorded>) {
    let (events, receiver) = EventRecorder::channel();
    let ctx = Arc::new(Context {
        client: api.client(),
        replica_sets: Informer::fixed(replica_sets, by_namespace_and_controller),
        pods: Informer::fixed(vec![], by_namespace_and_controller),
        deployments: Informer::fixed(vec![], by_namespace_and_controller),
        events,
    });
    (ctx, receiver)
}

#[tokio::test]
async fn a_new_deployment_creates_its_first_replicaset_at_revision_1() {
    let api = FakeApi::default();
    let (ctx, mut events) = context(&api, vec![]);
    reconcile(Arc::new(deployment(3, "v1")), ctx).await.unwrap();

    let created = api.calls_to("POST", "/apis/apps/v1/namespaces/ns/replicasets");
    assert_eq!(created.len(), 1);
    let rs = &created[0].body;
    let hash = template_hash(&template("v1"), None);
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(rs["metadata"]["labels"]["pod-template-hash"], hash.as_str());
    assert_eq!(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash.as_str());
    assert_eq!(rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"], hash.as_str());
    assert_eq!(rs["metadata"]["annotations"][REVISION], "1");
    assert_eq!(rs["metadata"]["annotations"][DESIRED_REPLICAS], "3");
    assert_eq!(rs["metadata"]["annotations"][MAX_REPLICAS], "4");
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(rs["spec"]["replicas"], 3);
    let event = events.try_recv().unwrap();
    assert_eq!(event.reason, "ScalingReplicaSet");
    assert_eq!(event.note, format!("Scaled up replica set web-{hash} from 0 to 3"));
    let revision = api.calls_to("PATCH", "/deployments/web");
    assert_eq!(revision[0].body["metadata"]["annotations"][REVISION], "1");
    let status = &api.calls_to("PATCH", "/deployments/web/status")[0].body["status"];
    let conditions = status["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetCreated")
    );
    assert!(conditions.iter().any(|c| c["type"] == "Available" && c["status"] == "False"));
    assert_eq!(status["observedGeneration"], 1);
}

#[tokio::test]
async fn an_image_change_starts_a_new_replicaset_within_max_surge() {
    let d = deployment(4, "v2");
    let api = FakeApi::default();
    let (ctx, _) = context(&api, vec![old_rs(&d, "v1", 1, 4, 100)]);
    reconcile(Arc::new(d), ctx).await.unwrap();
    let created = api.calls_to("POST", "/replicasets");
    assert_eq!(created.len(), 1);
    // 25% of 4 may surge: one new pod, nothing old removed yet.
    assert_eq!(created[0].body["spec"]["replicas"], 1);
    assert_eq!(created[0].body["metadata"]["annotations"][REVISION], "2");
    assert!(api.calls_to("PATCH", "/replicasets/web-").is_empty());
}

#[tokio::test]
async fn old_replicasets_scale_down_as_new_pods_become_available() {
    let d = deployment(4, "v2");
    let mut new = old_rs(&d, "v2", 2, 1, 200);
    new.status.as_mut().unwrap().available_replicas = Some(1);
    let old = old_rs(&d, "v1", 1, 4, 100);
    let old_name = old.metadata.name.clone().unwrap();
    let api = FakeApi::default();
    let (ctx, _) = context(&api, vec![old, new]);
    reconcile(Arc::new(d), ctx).await.unwrap();
    // The new RS is at its surge limit (5 of 4+1), so the old one shrinks: 5 available, 3 needed.
    let scaled = api.calls_to("PATCH", &format!("/replicasets/{old_name}"));
    assert_eq!(scaled.len(), 1);
    assert_eq!(scaled[0].body["spec"]["replicas"], 2);
}

#[tokio::test]
async fn scaling_mid_rollout_is_proportional() {
    let mut d = deployment(10, "v2");
    d.status = Some(DeploymentStatus { replicas: Some(13), ..Default::default() });
    let mut old = old_rs(&d, "v1", 1, 8, 100);
    let mut new = old_rs(&d, "v2", 2, 5, 200);
    for rs in [&mut old, &mut new] {
        let annotations = rs.metadata.annotations.as_mut().unwrap();
        annotations.insert(DESIRED_REPLICAS.into(), "10".into());
        annotations.insert(MAX_REPLICAS.into(), "13".into());
    }
    new.status.as_mut().unwrap().available_replicas = Some(0);
    // Scaled from 10 to 20 (max 25): 13 pods become 25, split 8:5.
    d.spec.as_mut().unwrap().replicas = Some(20);
    let (old_name, new_name) =
        (old.metadata.name.clone().unwrap(), new.metadata.name.clone().unwrap());
    let api = FakeApi::default();
    let (ctx, _) = context(&api, vec![old, new]);
    reconcile(Arc::new(d), ctx).await.unwrap();
    let size = |name: &str| {
        api.calls_to("PATCH", &format!("/replicasets/{name}"))[0].body["spec"]["replicas"].clone()
    };
    assert_eq!(size(&old_name), 15);
    assert_eq!(size(&new_name), 10);
}

#[tokio::test]
async fn replicasets_beyond_the_revision_history_limit_are_deleted_oldest_first() {
    let d = deployment(2, "v3");
    let api = FakeApi::default();
    let (ctx, _) = context(
        &api,
        vec![old_rs(&d, "v1", 1, 0, 100), old_rs(&d, "v2", 2, 0, 200), old_rs(&d, "v3", 3, 2, 300)],
    );
    reconcile(Arc::new(d), ctx).await.unwrap();
    let deleted = api.calls_to("DELETE", "");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].path.ends_with(&format!("web-{}", template_hash(&template("v1"), None))));
}

#[tokio::test]
async fn a_paused_deployment_does_not_roll_out_and_says_so() {
    let mut d = deployment(2, "v2");
    d.spec.as_mut().unwrap().paused = Some(true);
    let api = FakeApi::default();
    let (ctx, _) = context(&api, vec![old_rs(&d, "v1", 1, 2, 100)]);
    reconcile(Arc::new(d), ctx).await.unwrap();
    assert!(api.calls_to("POST", "/replicasets").is_empty());
    let status = &api.calls_to("PATCH", "/status")[0].body["status"];
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing["reason"], "DeploymentPaused");
    assert_eq!(progressing["status"], "Unknown");
}

#[tokio::test]
async fn a_rollout_that_stops_progressing_exceeds_its_deadline() {
    let mut d = deployment(2, "v2");
    let long_ago = Time(Timestamp::from_second(1_000).unwrap());
    d.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(3),
        updated_replicas: Some(1),
        available_replicas: Some(2),
        ready_replicas: Some(2),
        conditions: Some(vec![k8s_openapi::api::apps::v1::DeploymentCondition {
            type_: "Progressing".into(),
            status: "True".into(),
            reason: Some("ReplicaSetUpdated".into()),
            message: None,
            last_update_time: Some(long_ago.clone()),
            last_transition_time: Some(long_ago),
        }]),
        ..Default::default()
    });
    let mut new = old_rs(&d, "v2", 2, 1, 200);
    new.status.as_mut().unwrap().available_replicas = Some(0);
    new.status.as_mut().unwrap().ready_replicas = Some(0);
    let api = FakeApi::default();
    let (ctx, _) = context(&api, vec![old_rs(&d, "v1", 1, 2, 100), new]);
    reconcile(Arc::new(d), ctx).await.unwrap();
    let status = &api.calls_to("PATCH", "/status")[0].body["status"];
    let progressing = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert_eq!(progressing["status"], "False");
}
