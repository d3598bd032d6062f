//! The collector's reconcile against a recording fake API server.

use std::sync::{Arc, Mutex};

use futures::{StreamExt, stream};
use kube::api::ApiResource;
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;
use crate::testing::FakeApi;

fn configmaps() -> Arc<ApiResource> {
    Arc::new(metadata::api_resource(capstan_api::registry::find("", "v1", "configmaps").unwrap()))
}

fn object(name: &str, uid: &str, extra: serde_json::Value) -> Metadata {
    let mut meta =
        json!({"name": name, "namespace": "default", "uid": uid, "resourceVersion": "7"});
    if let (Some(m), Some(e)) = (meta.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}))
        .unwrap()
}

fn owned_by(owner: &str, uid: &str, block: bool) -> serde_json::Value {
    json!({"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid, "blockOwnerDeletion": block}]})
}

/// A collector over ConfigMaps holding `objects`, its graph built from them.
async fn collector(fake: &FakeApi, objects: Vec<Metadata>) -> Arc<Context> {
    let api = configmaps();
    let mut events = vec![Ok(Event::Init)];
    events.extend(objects.iter().cloned().map(|o| Ok(Event::InitApply(o))));
    events.push(Ok(Event::InitDone));
    let (informer, changes) =
        Informer::start(stream::iter(events).chain(stream::pending()).boxed(), api.clone());
    let (graph, _) = first_graph(&mut [changes]).await;
    let informer = Arc::new(informer);
    let (queue, _) = mpsc::unbounded_channel();
    let collector = Collector {
        client: fake.client(),
        kinds: vec![Kind { api, namespaced: true, informer }],
        graph: Mutex::new(graph),
        queues: vec![queue],
    };
    Arc::new(Context { kind: 0, collector: Arc::new(collector) })
}

#[tokio::test]
async fn the_store_keeps_objects_with_owners_or_being_deleted_and_every_change_is_told() {
    let owner = object("owner", "owner-uid", json!({}));
    let dependent = object("dep", "dep-uid", owned_by("owner", "owner-uid", false));
    let deleting =
        object("going", "going-uid", json!({"deletionTimestamp": "2025-01-01T00:00:00Z"}));
    let mut released = dependent.clone();
    released.metadata.owner_references = None;
    let events = vec![
        Ok(Event::Init),
        Ok(Event::InitApply(owner.clone())),
        Ok(Event::InitApply(dependent.clone())),
        Ok(Event::InitApply(deleting)),
        Ok(Event::InitDone),
        Ok(Event::Apply(released)),
        Ok(Event::Delete(owner)),
    ];
    let (informer, mut changes) =
        Informer::start(stream::iter(events).chain(stream::pending()).boxed(), configmaps());
    let names = |objects: &[Arc<Metadata>]| -> Vec<String> {
        let mut names: Vec<String> =
            objects.iter().map(|o| o.metadata.name.clone().unwrap()).collect();
        names.sort();
        names
    };
    match changes.next().await {
        Some(Change::Listed(all)) => assert_eq!(names(&all), ["dep", "going", "owner"]),
        other => panic!("expected the list first, got {other:?}"),
    }
    match changes.next().await {
        Some(Change::Applied(o)) => assert_eq!(o.metadata.owner_references, None),
        other => panic!("expected the release, got {other:?}"),
    }
    assert!(
        matches!(changes.next().await, Some(Change::Deleted(o)) if o.metadata.name.as_deref() == Some("owner"))
    );
    assert_eq!(names(&informer.store().state()), ["going"], "the released object left the store");
}

#[tokio::test]
async fn a_dependent_whose_owner_is_gone_or_replaced_is_deleted_in_the_background() {
    let fake = FakeApi::default();
    let dependent = object("dep", "dep-uid", owned_by("owner", "gone-uid", false));
    let ctx = collector(&fake, vec![dependent.clone()]).await;
    reconcile(Arc::new(dependent), ctx).await.unwrap();
    assert_eq!(fake.writes(), ["DELETE /api/v1/namespaces/default/configmaps/dep"]);
    let delete = fake.calls().into_iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(delete.body["propagationPolicy"], "Background");
    assert_eq!(delete.body["preconditions"]["uid"], "dep-uid");
}

#[tokio::test]
async fn a_dependent_with_a_live_owner_is_kept() {
    let fake = FakeApi::default();
    let owner = object("owner", "owner-uid", json!({}));
    let dependent = object("dep", "dep-uid", owned_by("owner", "owner-uid", false));
    let ctx = collector(&fake, vec![owner, dependent.clone()]).await;
    reconcile(Arc::new(dependent), ctx).await.unwrap();
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn an_orphaning_owner_strips_its_references_then_its_finalizer() {
    let fake = FakeApi::default();
    let owner = object(
        "owner",
        "owner-uid",
        json!({"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["orphan"]}),
    );
    let dependent = object("dep", "dep-uid", owned_by("owner", "owner-uid", true));
    let ctx = collector(&fake, vec![owner.clone(), dependent]).await;
    reconcile(Arc::new(owner), ctx).await.unwrap();
    let requests = fake.calls();
    assert_eq!(
        fake.writes(),
        [
            "PATCH /api/v1/namespaces/default/configmaps/dep",
            "PATCH /api/v1/namespaces/default/configmaps/owner"
        ]
    );
    assert_eq!(requests[0].body["metadata"]["ownerReferences"], serde_json::Value::Null);
    assert_eq!(requests[0].body["metadata"]["resourceVersion"], "7");
    assert_eq!(requests[1].body["metadata"]["finalizers"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_foreground_owner_waits_for_blocking_dependents() {
    let fake = FakeApi::default();
    let owner = object(
        "owner",
        "owner-uid",
        json!({"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["foregroundDeletion", "keep"]}),
    );
    let blocking = object("dep", "dep-uid", owned_by("owner", "owner-uid", true));
    let ctx = collector(&fake, vec![owner.clone(), blocking]).await;
    reconcile(Arc::new(owner.clone()), ctx).await.unwrap();
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    let fake = FakeApi::default();
    let ctx = collector(&fake, vec![owner.clone()]).await;
    reconcile(Arc::new(owner), ctx).await.unwrap();
    assert_eq!(fake.writes(), ["PATCH /api/v1/namespaces/default/configmaps/owner"]);
    assert_eq!(fake.calls()[0].body["metadata"]["finalizers"], json!(["keep"]));
}

#[tokio::test]
async fn a_dependent_of_a_foreground_owner_is_deleted() {
    let fake = FakeApi::default();
    let owner = object(
        "owner",
        "owner-uid",
        json!({"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["foregroundDeletion"]}),
    );
    let dependent = object("dep", "dep-uid", owned_by("owner", "owner-uid", true));
    let ctx = collector(&fake, vec![owner, dependent.clone()]).await;
    reconcile(Arc::new(dependent), ctx).await.unwrap();
    assert_eq!(fake.writes(), ["DELETE /api/v1/namespaces/default/configmaps/dep"]);
}
