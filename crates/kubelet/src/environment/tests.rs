use super::*;

fn pod(manifest: serde_json::Value) -> Pod {
    serde_json::from_value(manifest).unwrap()
}

fn service(namespace: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": ports}
    }))
    .unwrap()
}

fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn web_pod(links: Option<bool>) -> Pod {
    pod(serde_json::json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "enableServiceLinks": links, "containers": [{"name": "c"}]}
    }))
}

#[test]
fn every_pod_learns_the_kubernetes_service_and_its_namespaces_services_with_links() {
    let services = vec![
        service(
            "default",
            "kubernetes",
            "10.43.0.1",
            serde_json::json!([{"name": "https", "port": 443}]),
        ),
        service(
            "shop",
            "redis-main",
            "10.43.0.7",
            serde_json::json!([{"port": 6379, "protocol": "TCP"}]),
        ),
        service("shop", "headless", "None", serde_json::json!([{"port": 80}])),
        service("other", "elsewhere", "10.43.0.9", serde_json::json!([{"port": 80}])),
    ];
    let env = service_env(&web_pod(None), &services);
    assert_eq!(value(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
    assert_eq!(value(&env, "KUBERNETES_SERVICE_PORT"), Some("443"));
    assert_eq!(value(&env, "KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
    assert_eq!(value(&env, "KUBERNETES_PORT"), Some("tcp://10.43.0.1:443"));
    assert_eq!(value(&env, "KUBERNETES_PORT_443_TCP"), Some("tcp://10.43.0.1:443"));
    assert_eq!(value(&env, "KUBERNETES_PORT_443_TCP_PROTO"), Some("tcp"));
    assert_eq!(value(&env, "KUBERNETES_PORT_443_TCP_PORT"), Some("443"));
    assert_eq!(value(&env, "KUBERNETES_PORT_443_TCP_ADDR"), Some("10.43.0.1"));
    assert_eq!(value(&env, "REDIS_MAIN_SERVICE_HOST"), Some("10.43.0.7"));
    assert_eq!(value(&env, "REDIS_MAIN_PORT_6379_TCP_ADDR"), Some("10.43.0.7"));
    assert!(value(&env, "HEADLESS_SERVICE_HOST").is_none());
    assert!(value(&env, "ELSEWHERE_SERVICE_HOST").is_none());

    let without_links = service_env(&web_pod(Some(false)), &services);
    assert_eq!(value(&without_links, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
    assert!(value(&without_links, "REDIS_MAIN_SERVICE_HOST").is_none());
}

#[test]
fn env_values_come_from_fields_config_maps_and_secrets_and_later_ones_win() {
    let mut pod = web_pod(Some(false));
    let container: Container = serde_json::from_value(serde_json::json!({
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "CFG_color", "value": "blue and $(POD)"},
            {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}}
        ]
    }))
    .unwrap();
    pod.spec.as_mut().unwrap().containers = vec![container.clone()];
    let inputs = PodInputs {
        config_maps: HashMap::from([(
            "settings".into(),
            serde_json::from_value(serde_json::json!({"data": {"color": "red", "bad name": "x"}}))
                .unwrap(),
        )]),
        secrets: HashMap::from([(
            "creds".into(),
            serde_json::from_value(serde_json::json!({"data": {"password": "aHVudGVyMg=="}}))
                .unwrap(),
        )]),
        services: vec![],
        pod_ip: Some("10.42.0.5".parse().unwrap()),
        host_ip: Some("192.168.1.2".parse().unwrap()),
    };
    let env = container_env(&pod, &container, &inputs).unwrap();
    assert_eq!(value(&env, "POD"), Some("web"));
    assert_eq!(value(&env, "NS"), Some("shop"));
    assert_eq!(value(&env, "UID"), Some("u-1"));
    assert_eq!(value(&env, "NODE"), Some("n1"));
    assert_eq!(value(&env, "IP"), Some("10.42.0.5"));
    assert_eq!(value(&env, "HOST"), Some("192.168.1.2"));
    assert_eq!(value(&env, "APP"), Some("web"));
    assert_eq!(value(&env, "COLOR"), Some("red"));
    assert_eq!(value(&env, "PASSWORD"), Some("hunter2"));
    assert_eq!(value(&env, "CFG_color"), Some("blue and web"));
    assert!(value(&env, "CFG_bad name").is_none());
    assert!(value(&env, "MAYBE").is_none());
}

#[test]
fn a_missing_config_map_that_is_not_optional_is_a_config_error() {
    let pod = web_pod(None);
    let container: Container = serde_json::from_value(serde_json::json!({
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]
    }))
    .unwrap();
    let error = container_env(&pod, &container, &PodInputs::default()).unwrap_err();
    assert!(error.contains("absent"), "{error}");
}

#[test]
fn expansion_replaces_known_names_and_keeps_unknown_and_escaped_ones() {
    let env = vec![("A".to_owned(), "1".to_owned())];
    assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "1-$(B)-$(A)-$");
    assert_eq!(expand("$(unclosed", &env), "$(unclosed");
}
