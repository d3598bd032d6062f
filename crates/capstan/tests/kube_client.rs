//! The API server driven by kube-rs, the Rust client: typed objects, and the runtime's watcher
//! in both list-then-watch and streaming-list modes, including recovery from 410 Gone.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::CapstanServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;

const WAIT: Duration = Duration::from_secs(60);

async fn client(server: &CapstanServer) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    // See the server's answers as they are: no client-side retries of 429s.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    }
}

fn start() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("capstan starts")
}

#[tokio::test]
async fn typed_client_creates_lists_and_conflicts() {
    let server = start();
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    let created = api.create(&PostParams::default(), &configmap("one")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert!(listed.items.iter().any(|c| c.metadata.name.as_deref() == Some("one")));
    assert!(listed.metadata.resource_version.is_some());

    let mut stale = created.clone();
    let mut fresh = created;
    fresh.data = Some([("k".to_owned(), "new".to_owned())].into());
    api.replace("one", &PostParams::default(), &fresh).await.unwrap();
    stale.data = Some([("k".to_owned(), "stale".to_owned())].into());
    match api.replace("one", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("expected 409, got {other:?}"),
    }
    match api.get("missing").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

/// Collects watcher events until `done` says the picture is complete.
async fn watch_until(
    config: watcher::Config,
    api: Api<ConfigMap>,
    mut done: impl FnMut(&watcher::Event<ConfigMap>) -> bool,
) {
    let stream = watcher(api, config);
    futures::pin_mut!(stream);
    tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.try_next().await.expect("watcher keeps working") {
            if done(&event) {
                return;
            }
        }
    })
    .await
    .expect("watcher saw what was expected in time");
}

#[tokio::test]
async fn watcher_lists_then_follows_in_both_modes() {
    let server = start();
    let client = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &configmap("before")).await.unwrap();
    for config in [watcher::Config::default(), watcher::Config::default().streaming_lists()] {
        let writer = api.clone();
        let name = if config.initial_list_strategy == watcher::InitialListStrategy::StreamingList {
            "streamed"
        } else {
            "listed"
        };
        let mut saw_before = false;
        let mut created = false;
        watch_until(config, api.clone(), |event| match event {
            watcher::Event::InitApply(cm) if cm.metadata.name.as_deref() == Some("before") => {
                saw_before = true;
                false
            }
            watcher::Event::InitDone if !created => {
                assert!(saw_before, "the initial list carries existing objects");
                created = true;
                let writer = writer.clone();
                tokio::spawn(async move {
                    writer.create(&PostParams::default(), &configmap(name)).await.unwrap()
                });
                false
            }
            watcher::Event::Apply(cm) => cm.metadata.name.as_deref() == Some(name),
            _ => false,
        })
        .await;
    }
}

#[tokio::test]
async fn watcher_relists_when_its_resource_version_is_gone() {
    // A watch cache that keeps ten events per resource (fresh history grows to 25 times that):
    // history rolls over after 250 writes.
    let server = CapstanServer::start(
        Path::new(env!("CARGO_BIN_EXE_capstan")),
        &["--default-watch-cache-size", "10"],
    )
    .expect("capstan starts");
    let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
    // The watcher selects nothing that will be written, so its resourceVersion stays at its
    // initial list; short watches make it resume from there again and again.
    let config = watcher::Config::default().labels("group=quiet").timeout(1);
    let mut stream = watcher(api.clone(), config).boxed();
    let mut lists = 0;
    let mut gone = false;
    tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.next().await {
            match event {
                // The watcher reports the 410 once, then starts over with a fresh list.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => gone = true,
                Err(other) => panic!("unexpected watcher error: {other}"),
                Ok(watcher::Event::InitDone) => {
                    lists += 1;
                    if lists == 1 {
                        for i in 0..300 {
                            let cm = configmap(&format!("noise-{i}"));
                            api.create(&PostParams::default(), &cm).await.unwrap();
                        }
                    } else {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("after 410 Gone the watcher lists again and carries on");
    assert!(gone, "the server answered the stale resourceVersion with 410 Gone");
    assert_eq!(lists, 2);
}

#[tokio::test]
async fn events_recorded_as_events_k8s_io_show_in_kubectl_get_events() {
    let server = start();
    let client = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = api.create(&PostParams::default(), &configmap("watched")).await.unwrap();
    let reporter = Reporter { controller: "capstan-test".into(), instance: None };
    let recorder = Recorder::new(client, reporter);
    let reference = kube::Resource::object_ref(&cm, &());
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Tested".into(),
                note: Some("recorded through events.k8s.io/v1".into()),
                action: "Testing".into(),
                secondary: None,
            },
            &reference,
        )
        .await
        .unwrap();
    let events = server.kubectl().ok(&["get", "events"]);
    assert!(events.contains("Tested") && events.contains("configmap/watched"), "{events}");
    assert!(events.contains("recorded through events.k8s.io/v1"), "{events}");
    let described = server.kubectl().ok(&["describe", "configmap", "watched"]);
    assert!(described.contains("Tested"), "{described}");
}

#[tokio::test]
async fn scale_binding_and_eviction_subresources() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    let server = start();
    let client = client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(scale.status.as_ref().and_then(|s| s.selector.clone()).as_deref(), Some("app=web"));
    let mut wanted = scale.clone();
    wanted.spec.as_mut().unwrap().replicas = Some(3);
    deployments.replace_scale("web", &PostParams::default(), &wanted).await.unwrap();
    let updated = deployments.get("web").await.unwrap();
    assert_eq!(updated.spec.unwrap().replicas, Some(3));
    assert_eq!(updated.metadata.generation, Some(2), "a spec change bumps generation");

    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = serde_json::json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let _: serde_json::Value =
        pods.create_subresource("binding", "p", &PostParams::default(), &binding).await.unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let again: Result<serde_json::Value, _> =
        pods.create_subresource("binding", "p", &PostParams::default(), &binding).await;
    match again {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("a second binding must conflict, got {other:?}"),
    }

    // An eviction of an unscheduled pod deletes it at once.
    let loose: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "loose", "labels": {"app": "guarded"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &loose).await.unwrap();
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(pods.clone().into_client(), "default");
    let pdb = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "guard"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    // A pending pod may always go (as upstream); a running one only as its budget allows.
    let running = serde_json::json!({"status": {"phase": "Running"}});
    pods.patch_status("loose", &PatchParams::default(), &Patch::Merge(&running)).await.unwrap();
    match pods.evict("loose", &kube::api::EvictParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429),
        other => panic!("the budget must block the eviction, got {other:?}"),
    }
    pdbs.delete("guard", &Default::default()).await.unwrap();
    pods.evict("loose", &kube::api::EvictParams::default()).await.unwrap();
    assert!(pods.get_opt("loose").await.unwrap().is_none());
}

/// A client that authenticates with `token` only (no client certificate).
async fn token_client(server: &CapstanServer, token: &str) -> kube::Client {
    let mut kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.client_certificate_data = None;
            auth.client_key_data = None;
            auth.token = Some(token.to_owned().into());
        }
    }
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn service_account_tokens_authenticate_while_what_they_are_bound_to_exists() {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    let server = start();
    let admin = client(&server).await;
    let out = server.kubectl().ok(&["create", "token", "default", "--duration=1h"]);
    let token = out.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let as_account = token_client(&server, &token).await;
    let namespaces: Api<Namespace> = Api::all(as_account);
    assert!(!namespaces.list(&ListParams::default()).await.unwrap().items.is_empty());

    let bogus: Api<Namespace> = Api::all(token_client(&server, &format!("{token}x")).await);
    match bogus.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("a tampered token must be refused, got {other:?}"),
    }

    // Bound to a pod: the token stops working when the pod goes.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "holder"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let bound = server.kubectl().ok(&[
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=holder",
    ]);
    let bound_client = token_client(&server, bound.trim()).await;
    let as_pod: Api<Namespace> = Api::all(bound_client.clone());
    assert!(as_pod.list(&ListParams::default()).await.is_ok());
    pods.delete("holder", &Default::default()).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match as_pod.list(&ListParams::default()).await {
            Err(kube::Error::Api(status)) if status.code == 401 => break,
            _ => assert!(std::time::Instant::now() < deadline, "the bound token outlived its pod"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The OIDC discovery document points at the JWKS.
    let discovery: serde_json::Value = admin
        .request(http::Request::get("/.well-known/openid-configuration").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://kubernetes.default.svc.cluster.local");
    let jwks: serde_json::Value = admin
        .request(http::Request::get("/openid/v1/jwks").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
}

#[tokio::test]
async fn concurrent_creates_never_exceed_a_quota() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let server = start();
    let client = client(&server).await;
    let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "few"},
        "spec": {"hard": {"configmaps": "10"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    // The root CA publisher's ConfigMap counts too: let it land first.
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get_opt("kube-root-ca.crt").await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "kube-root-ca.crt never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = api.list(&ListParams::default()).await.unwrap().items.len();
    let attempts = (0..40).map(|i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &configmap(&format!("c{i}"))).await }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        match refused {
            kube::Error::Api(status) => {
                assert!(status.code == 403 || status.code == 409, "refused with {status:?}")
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
    let after = api.list(&ListParams::default()).await.unwrap().items.len();
    assert_eq!(after, before + created);
    assert!(after <= 10, "{after} configmaps under a quota of 10");
    assert_eq!(after, 10, "the quota fills up: {created} created after {before}");
}

#[tokio::test]
async fn events_are_listed_got_and_watched_from_the_store() {
    use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
    use kube::api::{DeleteParams, GetParams, WatchEvent, WatchParams};
    let server = start();
    let client = client(&server).await;
    let events: Api<CoreEvent> = Api::namespaced(client, "default");
    let event = |name: &str, about: &str| CoreEvent {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        involved_object: ObjectReference {
            kind: Some("ConfigMap".into()),
            name: Some(about.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        reason: Some("Tested".into()),
        message: Some(format!("about {about}")),
        type_: Some("Normal".into()),
        ..Default::default()
    };
    for (name, about) in [("e1", "a"), ("e2", "b"), ("e3", "a")] {
        events.create(&PostParams::default(), &event(name, about)).await.unwrap();
    }
    let about_a = WatchParams::default().fields("involvedObject.name=a").timeout(30);
    let mut watch = events.watch(&about_a, "0").await.unwrap().boxed();
    let mut next = async || match watch.try_next().await.unwrap().expect("the watch goes on") {
        WatchEvent::Added(e) => ("ADDED", e.metadata.name.unwrap()),
        WatchEvent::Deleted(e) => ("DELETED", e.metadata.name.unwrap()),
        other => panic!("unexpected {other:?}"),
    };
    let mut initial = vec![next().await, next().await];
    initial.sort();
    assert_eq!(initial, [("ADDED", "e1".to_owned()), ("ADDED", "e3".to_owned())]);
    events.create(&PostParams::default(), &event("e4", "b")).await.unwrap();
    events.create(&PostParams::default(), &event("e5", "a")).await.unwrap();
    assert_eq!(next().await, ("ADDED", "e5".into()), "an event about b is filtered out");
    events.delete("e1", &DeleteParams::default()).await.unwrap();
    assert_eq!(next().await, ("DELETED", "e1".into()));

    let got = events.get_with("e2", &GetParams::any()).await.unwrap();
    assert_eq!(got.message.as_deref(), Some("about b"));
    let listed = events.list(&ListParams::default().fields("involvedObject.name=b")).await.unwrap();
    let names: Vec<_> = listed.items.iter().filter_map(|e| e.metadata.name.clone()).collect();
    assert_eq!(names, ["e2", "e4"]);
    let mut paged = Vec::new();
    let mut params = ListParams::default().limit(1);
    loop {
        let page = events.list(&params).await.unwrap();
        paged.extend(page.items.into_iter().filter_map(|e| e.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(paged, ["e2", "e3", "e4", "e5"]);

    // A watch from the list's resourceVersion sees only what came after it.
    let version = listed.metadata.resource_version.unwrap();
    let all = WatchParams::default().timeout(30);
    let mut later = events.watch(&all, &version).await.unwrap().boxed();
    events.create(&PostParams::default(), &event("e6", "c")).await.unwrap();
    match later.try_next().await.unwrap() {
        Some(WatchEvent::Added(e)) => assert_eq!(e.metadata.name.as_deref(), Some("e6")),
        other => panic!("unexpected {other:?}"),
    }
    let described =
        server.kubectl().ok(&["get", "events", "--field-selector", "involvedObject.name=c"]);
    assert!(described.contains("about c"), "{described}");
}
