use serde_json::{Value, json};

use super::*;
use crate::registry;

fn deployments() -> Scope<'static> {
    Scope { resource: registry::find("apps", "v1", "deployments").unwrap(), subresource: None }
}

fn configmaps() -> Scope<'static> {
    Scope { resource: registry::find("", "v1", "configmaps").unwrap(), subresource: None }
}

fn manager(name: &'static str) -> Manager<'static> {
    Manager { name, api_version: "apps/v1", subresource: None, time: "2025-01-01T00:00:00Z" }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

fn entry<'a>(object: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn fields(object: &Value, manager: &str, operation: &str) -> Value {
    entry(object, manager, operation).map(|e| e["fieldsV1"].clone()).unwrap_or(Value::Null)
}

#[test]
fn fields_v1_reads_and_writes_upstreams_format() {
    let documents = [
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}),
        json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}}),
        json!({}),
    ];
    for document in documents {
        let set = FieldSet::from_fields_v1(&document).unwrap();
        assert_eq!(set.to_fields_v1(), document);
    }
    for bad in [json!([]), json!({"x:y": {}}), json!({"f:a": 1})] {
        assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
    }
}

#[test]
fn paths_print_as_upstream_prints_them() {
    let cases: &[(&[&str], &str)] = &[
        (&["f:spec", "f:replicas"], ".spec.replicas"),
        (
            &["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"],
            ".spec.containers[name=\"web\"].image",
        ),
        (
            &["f:ports", "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
            ".ports[containerPort=80,protocol=\"TCP\"]",
        ),
        (&["f:metadata", "f:finalizers", "v:\"x\""], ".metadata.finalizers[=\"x\"]"),
    ];
    for (path, printed) in cases {
        assert_eq!(fieldset::render_path(path), *printed);
    }
}

#[test]
fn apply_on_create_owns_exactly_the_applied_fields() {
    let object =
        apply(deployments(), None, &deployment(2, "nginx:1"), &manager("m"), false).unwrap();
    assert_eq!(object["spec"]["replicas"], 2);
    let entries = object["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                // LabelSelector is an atomic map: owned as one value.
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {},
                            "f:containerPort": {}
                        }}
                    }}}
                }
            }
        })
    );
}

#[test]
fn changing_another_managers_field_conflicts_and_force_takes_it_over() {
    let created =
        apply(deployments(), None, &deployment(2, "nginx:1"), &manager("first"), false).unwrap();
    let err =
        apply(deployments(), Some(&created), &deployment(3, "nginx:1"), &manager("second"), false)
            .unwrap_err();
    let ApplyError::Conflicts(conflicts) = &err else { panic!("{err}") };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"first\": .spec.replicas"
    );

    let forced =
        apply(deployments(), Some(&created), &deployment(3, "nginx:1"), &manager("second"), true)
            .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let first = FieldSet::from_fields_v1(&fields(&forced, "first", "Apply")).unwrap();
    let second = FieldSet::from_fields_v1(&fields(&forced, "second", "Apply")).unwrap();
    assert!(!first.contains(&["f:spec", "f:replicas"]));
    assert!(second.contains(&["f:spec", "f:replicas"]));
    // Fields both applied with equal values are shared, not taken.
    assert!(first.contains(&["f:metadata", "f:labels", "f:app"]));
}

#[test]
fn conflicts_with_updaters_and_several_fields_are_grouped_by_manager() {
    let mut created = deployment(2, "nginx:1");
    update(deployments(), None, &mut created, &manager("kubectl-client-side-apply"));
    let err = apply(deployments(), Some(&created), &deployment(3, "nginx:2"), &manager("m"), false)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn fields_an_applier_stops_applying_are_removed_unless_someone_else_owns_them() {
    let mut config = deployment(2, "nginx:1");
    config["metadata"]["labels"]["tier"] = json!("front");
    config["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let created = apply(deployments(), None, &config, &manager("m"), false).unwrap();

    // Another manager sets an annotation and takes the sidecar's image.
    let mut edited = created.clone();
    edited["metadata"]["annotations"] = json!({"note": "x"});
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = json!("busybox:2");
    update(deployments(), Some(&created), &mut edited, &manager("editor"));

    let reapplied =
        apply(deployments(), Some(&edited), &deployment(2, "nginx:1"), &manager("m"), true)
            .unwrap();
    assert_eq!(reapplied["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(reapplied["metadata"]["annotations"], json!({"note": "x"}));
    assert_eq!(reapplied["metadata"]["name"], "web");
    let containers = reapplied["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    // The sidecar stays, with its key and the field the editor owns, and nothing else of m's.
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[1], json!({"name": "sidecar", "image": "busybox:2"}));

    // Once nobody owns anything of it, it goes.
    let mut released = reapplied.clone();
    released["metadata"]["managedFields"] =
        json!([entry(&reapplied, "m", "Apply").unwrap().clone()]);
    let again =
        apply(deployments(), Some(&released), &deployment(2, "nginx:1"), &manager("m"), false);
    let again = again.unwrap();
    // The sidecar was never m's alone after the editor's write; m does not own it any more.
    assert_eq!(again["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 2);
}

#[test]
fn removing_a_list_item_removes_the_whole_item() {
    let mut config = deployment(1, "nginx:1");
    config["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let mut created = apply(deployments(), None, &config, &manager("m"), false).unwrap();
    // Defaults nobody owns go with the item.
    created["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
    let reapplied =
        apply(deployments(), Some(&created), &deployment(1, "nginx:1"), &manager("m"), false)
            .unwrap();
    let containers = reapplied["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "web");
}

#[test]
fn keyed_lists_merge_by_key_and_atomic_lists_replace() {
    let live = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {
            "containers": [
                {"name": "a", "image": "a:1", "args": ["x", "y"]},
                {"name": "b", "image": "b:1"}
            ]
        }}}
    });
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {
            "containers": [
                {"name": "c", "image": "c:1"},
                {"name": "a", "args": ["z"]}
            ]
        }}}
    });
    let merged = apply(deployments(), Some(&live), &config, &manager("m"), false).unwrap();
    let containers = &merged["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers,
        &json!([
            {"name": "c", "image": "c:1"},
            {"name": "a", "image": "a:1", "args": ["z"]},
            {"name": "b", "image": "b:1"}
        ])
    );
}

#[test]
fn sets_merge_by_value_and_granular_maps_by_key() {
    let live = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["a"], "labels": {"x": "1"}},
        "data": {"k": "v"}
    });
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["b"], "labels": {"y": "2"}},
        "data": {"k2": "v2"}
    });
    let mut m = manager("m");
    m.api_version = "v1";
    let merged = apply(configmaps(), Some(&live), &config, &m, false).unwrap();
    assert_eq!(merged["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(merged["metadata"]["labels"], json!({"x": "1", "y": "2"}));
    assert_eq!(merged["data"], json!({"k": "v", "k2": "v2"}));
    assert_eq!(
        fields(&merged, "m", "Apply"),
        json!({"f:data": {"f:k2": {}}, "f:metadata": {"f:finalizers": {"v:\"b\"": {}}, "f:labels": {"f:y": {}}}})
    );
}

#[test]
fn malformed_configurations_are_errors_not_panics() {
    let cases = [
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
        json!({"spec": {"template": {"spec": {"containers": ["not-an-object"]}}}}),
        json!({"metadata": {"managedFields": [{}]}}),
    ];
    for config in cases {
        let result = apply(deployments(), None, &config, &manager("m"), false);
        assert!(matches!(result, Err(ApplyError::Invalid { .. })), "{config}");
    }
    // Wrong JSON types are replaced like any value; type checks come later.
    let odd = json!({"spec": {"replicas": {"a": 1}, "template": "x"}});
    assert!(apply(deployments(), None, &odd, &manager("m"), false).is_ok());
}

#[test]
fn updates_own_what_they_change_and_take_it_from_others() {
    let created =
        apply(deployments(), None, &deployment(2, "nginx:1"), &manager("applier"), false).unwrap();
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    update(deployments(), Some(&created), &mut scaled, &manager("scaler"));
    assert_eq!(fields(&scaled, "scaler", "Update"), json!({"f:spec": {"f:replicas": {}}}));
    let applier = FieldSet::from_fields_v1(&fields(&scaled, "applier", "Apply")).unwrap();
    assert!(!applier.contains(&["f:spec", "f:replicas"]));
    assert_eq!(entry(&scaled, "scaler", "Update").unwrap()["apiVersion"], "apps/v1");

    // A write that changes nothing gives the writer nothing.
    let mut same = scaled.clone();
    update(deployments(), Some(&scaled), &mut same, &manager("idle"));
    assert!(entry(&same, "idle", "Update").is_none());
}

#[test]
fn create_records_new_maps_and_items_as_members() {
    let mut created = deployment(1, "nginx:1");
    update(deployments(), None, &mut created, &manager("kubectl-create"));
    let recorded = fields(&created, "kubectl-create", "Update");
    assert_eq!(recorded["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert!(recorded["f:spec"].get(".").is_none());
    assert!(recorded["f:metadata"].get(".").is_none());
}

#[test]
fn repeating_an_apply_changes_nothing() {
    let created =
        apply(deployments(), None, &deployment(2, "nginx:1"), &manager("m"), false).unwrap();
    let mut later = manager("m");
    later.time = "2030-01-01T00:00:00Z";
    let again =
        apply(deployments(), Some(&created), &deployment(2, "nginx:1"), &later, false).unwrap();
    assert_eq!(again, created);
}

#[test]
fn kubectl_takes_over_what_client_side_apply_set_with_the_same_value() {
    let mut live = deployment(2, "nginx:1");
    let mut last = deployment(2, "nginx:1");
    last["metadata"].as_object_mut().unwrap().remove("managedFields");
    live["metadata"]["annotations"] =
        json!({csa::LAST_APPLIED: serde_json::to_string(&last).unwrap()});
    update(deployments(), None, &mut live, &manager("kubectl-client-side-apply"));

    // Changing a field client-side apply set, still at its last-applied value: allowed.
    let moved =
        apply(deployments(), Some(&live), &deployment(3, "nginx:1"), &manager("kubectl"), false)
            .unwrap();
    assert_eq!(moved["spec"]["replicas"], 3);
    let annotation: Value =
        serde_json::from_str(moved["metadata"]["annotations"][csa::LAST_APPLIED].as_str().unwrap())
            .unwrap();
    assert_eq!(annotation["spec"]["replicas"], 3, "the annotation follows the apply");
    // ... but stays client-side apply's, which is how kubectl finds whose fields to take over.
    let csa = FieldSet::from_fields_v1(&fields(&moved, "kubectl-client-side-apply", "Update"));
    let annotation_path =
        ["f:metadata", "f:annotations", "f:kubectl.kubernetes.io/last-applied-configuration"];
    assert!(csa.unwrap().contains(&annotation_path));

    // Another manager may not.
    assert!(
        apply(deployments(), Some(&live), &deployment(3, "nginx:1"), &manager("other"), false)
            .is_err()
    );
    // Nor may kubectl once the live value differs from the last-applied one.
    let mut drifted = live.clone();
    drifted["spec"]["replicas"] = json!(7);
    let err =
        apply(deployments(), Some(&drifted), &deployment(3, "nginx:1"), &manager("kubectl"), false)
            .unwrap_err();
    assert!(err.to_string().contains(".spec.replicas"), "{err}");
}

#[test]
fn status_is_owned_through_the_status_subresource_only() {
    let scope = deployments();
    let mut config = deployment(1, "nginx:1");
    config["status"] = json!({"replicas": 9});
    let created = apply(scope, None, &config, &manager("m"), false).unwrap();
    assert!(fields(&created, "m", "Apply").get("f:status").is_none());

    let status = Scope { subresource: Some("status"), ..scope };
    let mut m = manager("controller");
    m.subresource = Some("status");
    let mut written = created.clone();
    written["status"] = json!({"replicas": 1});
    update(status, Some(&created), &mut written, &m);
    let e = entry(&written, "controller", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
}

#[test]
fn more_than_ten_updaters_have_the_oldest_merged_into_ancient_changes() {
    let mut object = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {}
    });
    let names: Vec<String> = (0..12).map(|i| format!("writer-{i:02}")).collect();
    let times: Vec<String> = (0..12).map(|i| format!("2025-01-01T00:00:{i:02}Z")).collect();
    for i in 0..12 {
        let live = object.clone();
        object["data"][format!("key-{i:02}")] = json!("value");
        let writer = Manager {
            name: names[i].as_str(),
            api_version: "v1",
            subresource: None,
            time: times[i].as_str(),
        };
        update(configmaps(), Some(&live), &mut object, &writer);
    }
    let entries = object["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 10, "{entries:#?}");
    // The three oldest became one bucket holding all their fields, timed as the newest of them.
    let ancient = entry(&object, "ancient-changes", "Update").expect("the bucket");
    assert_eq!(ancient["time"], "2025-01-01T00:00:02Z");
    let fields = FieldSet::from_fields_v1(&ancient["fieldsV1"]).unwrap();
    for key in ["f:key-00", "f:key-01", "f:key-02"] {
        assert!(fields.contains(&["f:data", key]), "{key} is in the bucket");
    }
    for gone in ["writer-00", "writer-01", "writer-02"] {
        assert!(entry(&object, gone, "Update").is_none(), "{gone} was merged");
    }
    assert!(entry(&object, "writer-03", "Update").is_some());
    assert!(entry(&object, "writer-11", "Update").is_some());
}

#[test]
fn an_apply_naming_only_the_object_owns_no_metadata() {
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"},
        "data": {"a": "b"}
    });
    let applied = apply(configmaps(), None, &config, &manager("m"), false).unwrap();
    assert_eq!(fields(&applied, "m", "Apply"), json!({"f:data": {"f:a": {}}}));
}
