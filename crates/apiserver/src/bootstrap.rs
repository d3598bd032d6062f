//! Objects every cluster has: the system namespaces, the `default/kubernetes` Service with its
//! Endpoints and EndpointSlice, and the built-in PriorityClasses. Created when missing; the
//! `kubernetes` endpoints are also corrected when they name another address or port.

use capstan_api::registry;
use capstan_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::Config;
use crate::objects::now_rfc3339;

fn object(
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    rest: Value,
) -> Value {
    let mut object = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now_rfc3339(),
        },
    });
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    if let (Some(map), Value::Object(rest)) = (object.as_object_mut(), rest) {
        for (k, v) in rest {
            if k == "metadata" {
                for (mk, mv) in v.as_object().cloned().unwrap_or_default() {
                    map["metadata"][&mk] = mv;
                }
            } else {
                map.insert(k, v);
            }
        }
    }
    object
}

/// Stores `object` as a v1 `group`/`plural` object unless one of that name exists.
async fn create_if_missing(
    store: &dyn Store,
    group: &str,
    plural: &str,
    object: Value,
) -> Result<(), StoreError> {
    let resource = registry::find(group, "v1", plural).expect("bootstrap resources are registered");
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let key = resource.key(object["metadata"]["namespace"].as_str(), &name);
    let bytes = serde_json::to_vec(&object).map_err(|e| StoreError::Internal(e.to_string()))?;
    match store.create(&key, bytes.into()).await {
        Ok(_) | Err(StoreError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Stores `object` unless one of its name exists; an existing one whose `fields` differ gets
/// `object`'s (upstream's endpoint reconciler: a server restarted on another address or port
/// must not leave the `kubernetes` Service pointing at the old one).
async fn create_or_correct(
    store: &dyn Store,
    group: &str,
    plural: &str,
    object: Value,
    fields: &[&str],
) -> Result<(), StoreError> {
    let resource = registry::find(group, "v1", plural).expect("bootstrap resources are registered");
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let key = resource.key(object["metadata"]["namespace"].as_str(), &name);
    let Some(current) = store.get(&key).await? else {
        return create_if_missing(store, group, plural, object).await;
    };
    let Ok(mut stored) = serde_json::from_slice::<Value>(&current.value) else {
        return Ok(());
    };
    if fields.iter().all(|field| stored[*field] == object[*field]) {
        return Ok(());
    }
    for field in fields {
        stored[*field] = object[*field].clone();
    }
    let bytes = serde_json::to_vec(&stored).map_err(|e| StoreError::Internal(e.to_string()))?;
    tracing::info!(key, "correcting the kubernetes Service's endpoints to this server's address");
    match store.update(&key, bytes.into(), current.mod_revision).await {
        // Another server corrected it meanwhile; the next start looks again.
        Ok(_) | Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn ensure(store: &dyn Store, config: &Config) -> Result<(), StoreError> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace = object(
            "v1",
            "Namespace",
            ns,
            None,
            json!({
                "metadata": {"labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        );
        create_if_missing(store, "", "namespaces", namespace).await?;
        // Pods need their namespace's `default` account; these exist before any controller runs.
        let account = object("v1", "ServiceAccount", "default", Some(ns), json!({}));
        create_if_missing(store, "", "serviceaccounts", account).await?;
    }
    let ip = config.advertise_address.to_string();
    let family = if config.advertise_address.is_ipv4() { "IPv4" } else { "IPv6" };
    // The `kubernetes` Service's address is reserved like any other allocation.
    let first = config.service_range.first();
    let _ = store
        .create(
            &format!("/registry/ipallocations/{first}"),
            "{\"owner\":\"default/kubernetes\"}".into(),
        )
        .await;
    let service = object(
        "v1",
        "Service",
        "kubernetes",
        Some("default"),
        json!({
            "metadata": {"labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": config.service_range.first().to_string(),
                "clusterIPs": [config.service_range.first().to_string()],
                "ipFamilies": [family],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": config.port}],
            },
            "status": {"loadBalancer": {}},
        }),
    );
    create_if_missing(store, "", "services", service).await?;
    let endpoints = object(
        "v1",
        "Endpoints",
        "kubernetes",
        Some("default"),
        json!({
            "metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": config.port, "protocol": "TCP"}]}],
        }),
    );
    create_or_correct(store, "", "endpoints", endpoints, &["subsets"]).await?;
    let slice = object(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "kubernetes",
        Some("default"),
        json!({
            "metadata": {"labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "capstan-apiserver"}},
            "addressType": family,
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": config.port, "protocol": "TCP"}],
        }),
    );
    create_or_correct(
        store,
        "discovery.k8s.io",
        "endpointslices",
        slice,
        &["addressType", "endpoints", "ports"],
    )
    .await?;
    for (name, value, description) in [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        let class = object(
            "scheduling.k8s.io/v1",
            "PriorityClass",
            name,
            None,
            json!({
                "value": value,
                "globalDefault": false,
                "description": description,
                "preemptionPolicy": "PreemptLowerPriority",
            }),
        );
        create_if_missing(store, "scheduling.k8s.io", "priorityclasses", class).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_store::Datastore;

    fn config(advertise: &str, port: u16) -> Config {
        Config {
            data_dir: std::path::PathBuf::new(),
            advertise_address: advertise.parse().unwrap(),
            port,
            service_range: crate::services::ServiceRange::parse("10.43.0.0/16").unwrap(),
            watch_cache_size: 16,
            event_ttl: std::time::Duration::from_secs(60),
            admission: Default::default(),
            metrics: Default::default(),
        }
    }

    async fn stored(store: &dyn Store, key: &str) -> Value {
        serde_json::from_slice(&store.get(key).await.unwrap().unwrap().value).unwrap()
    }

    #[tokio::test]
    async fn the_kubernetes_endpoints_follow_the_advertised_address_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Datastore::Sqlite(dir.path().join("state.db")).open().await.unwrap();
        ensure(&*store, &config("127.0.0.1", 6443)).await.unwrap();
        let key = |group, plural| {
            registry::find(group, "v1", plural).unwrap().key(Some("default"), "kubernetes")
        };
        let slice_key = &key("discovery.k8s.io", "endpointslices");
        let uid = stored(&*store, slice_key).await["metadata"]["uid"].clone();

        ensure(&*store, &config("192.0.2.2", 7443)).await.unwrap();
        let slice = stored(&*store, slice_key).await;
        assert_eq!(slice["endpoints"][0]["addresses"], json!(["192.0.2.2"]));
        assert_eq!(slice["ports"][0]["port"], 7443);
        assert_eq!(slice["metadata"]["uid"], uid, "corrected in place, not replaced");
        let endpoints = stored(&*store, &key("", "endpoints")).await;
        assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], "192.0.2.2");
        assert_eq!(endpoints["subsets"][0]["ports"][0]["port"], 7443);

        let revision = store.current_revision().await.unwrap();
        ensure(&*store, &config("192.0.2.2", 7443)).await.unwrap();
        assert_eq!(store.current_revision().await.unwrap(), revision, "nothing to correct");
    }
}
