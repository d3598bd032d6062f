use super::*;

fn pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
        "spec": {"containers": [{"name": "c"}]}
    }))
    .unwrap()
}

fn volume(manifest: serde_json::Value) -> Volume {
    serde_json::from_value(manifest).unwrap()
}

fn inputs() -> PodInputs {
    PodInputs {
        config_maps: [(
            "kube-root-ca.crt".to_owned(),
            serde_json::from_value(serde_json::json!({"data": {"ca.crt": "PEM", "other": "x"}}))
                .unwrap(),
        )]
        .into(),
        ..PodInputs::default()
    }
}

fn text(files: &Files, path: &str) -> String {
    String::from_utf8(files[path].0.clone()).unwrap()
}

#[test]
fn the_service_account_volume_holds_token_ca_and_namespace() {
    let access = volume(serde_json::json!({
        "name": "kube-api-access-abcde",
        "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}
    }));
    let token = |spec: &TokenSpec| {
        assert_eq!(spec, &TokenSpec { audience: None, expiration_seconds: 3607 });
        Some("jwt".to_owned())
    };
    let files = volume_files(&pod(), &access, &inputs(), &token).unwrap().unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["ca.crt", "namespace", "token"]);
    assert_eq!(text(&files, "token"), "jwt");
    assert_eq!(text(&files, "ca.crt"), "PEM");
    assert_eq!(text(&files, "namespace"), "shop");
    assert_eq!(files["token"].1, 0o644);
}

#[test]
fn a_config_map_volume_shows_every_key_or_the_listed_items_and_missing_ones_fail() {
    let all = volume(serde_json::json!({"name": "v", "configMap": {"name": "kube-root-ca.crt"}}));
    let files = volume_files(&pod(), &all, &inputs(), &|_| None).unwrap().unwrap();
    assert_eq!(files.len(), 2);
    let items = volume(serde_json::json!({"name": "v", "configMap": {
        "name": "kube-root-ca.crt", "items": [{"key": "other", "path": "dir/o.txt", "mode": 256}]
    }}));
    let files = volume_files(&pod(), &items, &inputs(), &|_| None).unwrap().unwrap();
    assert_eq!(text(&files, "dir/o.txt"), "x");
    assert_eq!(files["dir/o.txt"].1, 0o400);
    let missing = volume(serde_json::json!({"name": "v", "configMap": {"name": "nope"}}));
    assert!(volume_files(&pod(), &missing, &inputs(), &|_| None).is_err());
    let optional =
        volume(serde_json::json!({"name": "v", "configMap": {"name": "nope", "optional": true}}));
    assert!(volume_files(&pod(), &optional, &inputs(), &|_| None).unwrap().unwrap().is_empty());
}

#[test]
fn item_paths_may_not_climb_out_of_the_volume() {
    let bad = volume(serde_json::json!({"name": "v", "configMap": {
        "name": "kube-root-ca.crt", "items": [{"key": "other", "path": "../../etc/passwd"}]
    }}));
    assert!(volume_files(&pod(), &bad, &inputs(), &|_| None).is_err());
}

#[test]
fn directory_volumes_have_no_files() {
    let empty = volume(serde_json::json!({"name": "v", "emptyDir": {}}));
    assert!(volume_files(&pod(), &empty, &inputs(), &|_| None).unwrap().is_none());
}

#[test]
fn atomic_writes_swap_the_data_link_and_drop_names_no_longer_projected() {
    let dir = tempfile::tempdir().unwrap();
    let first = Files::from([
        ("a".to_owned(), (b"1".to_vec(), 0o644)),
        ("sub/b".to_owned(), (b"2".to_vec(), 0o644)),
    ]);
    write_atomically(dir.path(), &first).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "1");
    assert_eq!(std::fs::read_to_string(dir.path().join("sub/b")).unwrap(), "2");
    let data = std::fs::read_link(dir.path().join("..data")).unwrap();

    // Unchanged content keeps the same data dir.
    write_atomically(dir.path(), &first).unwrap();
    assert_eq!(std::fs::read_link(dir.path().join("..data")).unwrap(), data);

    let second = Files::from([("a".to_owned(), (b"3".to_vec(), 0o644))]);
    write_atomically(dir.path(), &second).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "3");
    assert!(std::fs::symlink_metadata(dir.path().join("sub")).is_err());
    assert!(!dir.path().join(&data).exists(), "the old data dir is removed");
}

#[test]
fn termination_logs_are_per_container_attempt_below_the_pod_dir() {
    let dirs = PodDirs { root: "/data/pods".into() };
    assert_eq!(dirs.termination_log("u-1", "c", 2), PathBuf::from("/data/pods/u-1/containers/c/2"));
    assert_eq!(
        dirs.volume("u-1", "configmap", "cfg"),
        PathBuf::from("/data/pods/u-1/volumes/kubernetes.io~configmap/cfg")
    );
    assert_eq!(dirs.pod(".."), PathBuf::from("/data/pods/_"));
}
