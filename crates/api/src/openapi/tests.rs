//! What kubectl and client-go need from the documents, checked on the rendered bytes.

use serde_json::Value;

use super::*;
use crate::registry::RESOURCES;

fn v2() -> Value {
    serde_json::from_slice(v2_json()).expect("v2 is JSON")
}

fn v3(path: &str) -> Value {
    serde_json::from_slice(v3_document(path).expect("served group-version")).expect("v3 is JSON")
}

fn v3_path_of(group: &str, version: &str) -> String {
    match group {
        "" => format!("api/{version}"),
        _ => format!("apis/{group}/{version}"),
    }
}

fn prefix_of(group: &str, version: &str) -> String {
    format!("/{}", v3_path_of(group, version))
}

/// Every `$ref` string anywhere below `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn has_query_param(params: &Value, name: &str) -> bool {
    params.as_array().into_iter().flatten().any(|p| p["name"] == name && p["in"] == "query")
}

#[test]
fn v3_apps_v1_describes_deployment_strategy_for_kubectl_explain() {
    let doc = v3("apis/apps/v1");
    let schemas = &doc["components"]["schemas"];
    let strategy = &schemas["io.k8s.api.apps.v1.DeploymentStrategy"];
    assert!(strategy["description"].as_str().is_some_and(|d| d.contains("replace existing pods")));
    assert_eq!(
        strategy["properties"]["rollingUpdate"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.RollingUpdateDeployment"
    );
    let field = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(
        field["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    assert!(field["description"].is_string(), "the field keeps its own description");
    assert_eq!(
        schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
}

#[test]
fn deployment_writes_carry_gvk_and_field_validation_so_kubectl_validates_server_side() {
    let doc = v3("apis/apps/v1");
    let collection = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    let create = &collection["post"];
    assert_eq!(
        create["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(create["x-kubernetes-action"], "post");
    assert!(has_query_param(&create["parameters"], "fieldValidation"));
    // kubectl's QueryParamVerifierV3 looks at the first PATCH carrying the kind's GVK.
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    assert!(has_query_param(&patch["parameters"], "fieldValidation"));
}

#[test]
fn every_write_operation_offers_field_validation() {
    for r in RESOURCES {
        let doc = v3(&v3_path_of(r.group, r.version));
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "put", "patch"] {
                let op = &item[method];
                if op.is_object() && op["x-kubernetes-action"] != "connect" {
                    assert!(
                        has_query_param(&op["parameters"], "fieldValidation"),
                        "{method} {path}"
                    );
                }
            }
        }
    }
}

#[test]
fn pod_spec_containers_keep_list_and_patch_semantics() {
    let v2 = v2();
    let v3 = v3("api/v1");
    for containers in [
        &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"],
        &v3["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"],
    ] {
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    }
}

#[test]
fn every_registry_resource_appears_in_both_documents() {
    let v2 = v2();
    for r in RESOURCES {
        let prefix = prefix_of(r.group, r.version);
        let collection = match r.namespaced {
            true => format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            false => format!("{prefix}/{}", r.plural),
        };
        let item = format!("{collection}/{{name}}");
        let doc = v3(&v3_path_of(r.group, r.version));
        if r.is_review() {
            // Only created, never stored: one POST on the collection, no list kind.
            for paths in [&v2["paths"], &doc["paths"]] {
                let post = &paths[&collection]["post"];
                assert_eq!(post["x-kubernetes-group-version-kind"]["kind"], r.kind, "{collection}");
                assert!(paths[&collection]["get"].is_null() && paths[&item].is_null());
            }
            continue;
        }
        for paths in [&v2["paths"], &doc["paths"]] {
            assert_eq!(paths[&collection]["get"]["x-kubernetes-action"], "list", "{collection}");
            assert_eq!(paths[&item]["get"]["x-kubernetes-group-version-kind"]["kind"], r.kind);
            for sub in r.subresources {
                assert!(paths[&format!("{item}/{}", sub.name)].is_object(), "{item}/{}", sub.name);
            }
        }
        for kind in [r.kind.to_owned(), r.list_kind()] {
            let gvk = json!({"group": r.group, "kind": kind, "version": r.version});
            for schemas in [&v2["definitions"], &doc["components"]["schemas"]] {
                let found = schemas.as_object().unwrap().values().any(|s| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.contains(&gvk))
                });
                assert!(found, "no schema for {gvk}; rerun scripts/gen-openapi.py");
            }
        }
    }
}

#[test]
fn watch_and_all_namespaces_paths_follow_upstream() {
    let v2 = v2();
    let paths = &v2["paths"];
    assert_eq!(paths["/api/v1/pods"]["get"]["operationId"], "listCoreV1PodForAllNamespaces");
    assert_eq!(
        paths["/api/v1/watch/pods"]["get"]["operationId"],
        "watchCoreV1PodListForAllNamespaces"
    );
    let watch = &paths["/api/v1/watch/namespaces/{namespace}/pods/{name}"]["get"];
    assert_eq!(watch["operationId"], "watchCoreV1NamespacedPod");
    assert_eq!(watch["x-kubernetes-action"], "watch");
    assert_eq!(
        paths["/apis/apps/v1/namespaces/{namespace}/deployments"]["delete"]["operationId"],
        "deleteAppsV1CollectionNamespacedDeployment"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert!(paths["/api/v1/namespaces"]["delete"].is_null(), "namespaces have no deletecollection");
    assert_eq!(
        paths["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["tags"],
        json!(["rbacAuthorization_v1"])
    );
}

#[test]
fn subresources_name_the_kind_they_read_and_write() {
    let doc = v3("apis/apps/v1");
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(scale["patch"]["operationId"], "patchAppsV1NamespacedDeploymentScale");
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());

    let core = v3("api/v1");
    let pods = "/api/v1/namespaces/{namespace}/pods/{name}";
    let exec = &core["paths"][format!("{pods}/exec")];
    assert_eq!(exec["post"]["operationId"], "connectCoreV1PostNamespacedPodExec");
    assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
    assert!(has_query_param(&exec["parameters"], "command"));
    let eviction = &core["paths"][format!("{pods}/eviction")]["post"];
    assert_eq!(eviction["x-kubernetes-group-version-kind"]["group"], "policy");
    assert_eq!(
        eviction["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.policy.v1.Eviction"
    );
    let log = &core["paths"][format!("{pods}/log")]["get"];
    assert_eq!(
        log["responses"]["200"]["content"]["text/plain"]["schema"],
        json!({"type": "string"})
    );
}

#[test]
fn every_reference_resolves() {
    let v2 = v2();
    let mut found = Vec::new();
    refs(&v2, &mut found);
    for r in &found {
        let (section, name) = r.trim_start_matches("#/").split_once('/').unwrap();
        assert!(v2[section][name].is_object(), "v2: dangling {r}");
    }
    for (group, version) in crate::registry::group_versions() {
        let doc = v3(&v3_path_of(group, version));
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in &found {
            let name = r.strip_prefix("#/components/schemas/").expect("schema ref");
            assert!(doc["components"]["schemas"][name].is_object(), "{group}/{version}: {r}");
        }
    }
}

#[test]
fn v2_schemas_are_plain_swagger_and_v3_scalars_use_one_of() {
    let v2 = v2();
    for (name, schema) in v2["definitions"].as_object().unwrap() {
        let text = schema.to_string();
        assert!(!text.contains("\"null\"") && !text.contains("oneOf"), "{name}: {text:.200}");
    }
    let int_or_string = &v2["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
    let apps = v3("apis/apps/v1");
    let int_or_string =
        &apps["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["oneOf"], json!([{"type": "integer"}, {"type": "string"}]));
    assert!(int_or_string.get("type").is_none());
}

#[test]
fn v3_index_lists_every_group_version_with_its_hash() {
    let index: Value = serde_json::from_slice(&v3_index()).unwrap();
    let paths = index["paths"].as_object().unwrap();
    assert_eq!(paths.len(), crate::registry::group_versions().len());
    let url = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    let hash = v3_hash("apis/apps/v1").unwrap();
    assert_eq!(url, format!("/openapi/v3/apis/apps/v1?hash={hash}"));
    assert_eq!(v3_document("/apis/apps/v1"), v3_document("apis/apps/v1"));
    assert!(v3_document("apis/apps/v2").is_none());
    assert_ne!(v3_hash("api/v1"), v3_hash("apis/apps/v1"));
}

#[test]
fn protobuf_is_offered_under_both_spellings_and_labelled_the_parseable_one() {
    assert!(accepts_v2_protobuf(V2_PROTOBUF_ACCEPT));
    assert!(accepts_v2_protobuf(&format!("{V2_PROTOBUF_CONTENT_TYPE}, application/json")));
    assert!(!accepts_v2_protobuf("application/json, */*"));
    assert!(!V2_PROTOBUF_CONTENT_TYPE.contains('@'));
}

#[test]
fn protobuf_encoding_leaves_out_nothing() {
    let mut encoder = gnostic::Encoder::default();
    v2::protobuf(&mut encoder);
    assert!(encoder.skipped.is_empty(), "no protobuf field for {:?}", encoder.skipped);
}

#[test]
fn vendor_extensions_are_yaml_that_reads_back_as_the_same_value() {
    let gvk = json!([{"group": "", "kind": "Pod", "version": "v1"}]);
    assert_eq!(
        gnostic::yaml(&gvk),
        "- \"group\": \"\"\n  \"kind\": \"Pod\"\n  \"version\": \"v1\"\n"
    );
    assert_eq!(gnostic::yaml(&json!("merge")), "\"merge\"\n");
    let unions = json!([{"discriminator": "type", "fields-to-discriminateBy": {"a": "A"}}]);
    assert_eq!(
        gnostic::yaml(&unions),
        "- \"discriminator\": \"type\"\n  \"fields-to-discriminateBy\":\n    \"a\": \"A\"\n"
    );
    assert_eq!(gnostic::yaml(&json!([["a"], []])), "- - \"a\"\n- []\n");
}

/// Minimal protobuf wire reader: the fields of one message, in order.
fn fields(mut bytes: &[u8]) -> Vec<(u32, Field<'_>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let (b, rest) = bytes.split_first().expect("truncated varint");
            *bytes = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Field::Varint(varint(&mut bytes)))),
            2 => {
                let len = varint(&mut bytes) as usize;
                let (body, rest) = bytes.split_at(len);
                bytes = rest;
                out.push((field, Field::Bytes(body)));
            }
            wire => panic!("unexpected wire type {wire}"),
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn all(bytes: &[u8], field: u32) -> Vec<&[u8]> {
    fields(bytes)
        .into_iter()
        .filter_map(|(f, v)| match v {
            Field::Bytes(b) if f == field => Some(b),
            _ => None,
        })
        .collect()
}

fn one(bytes: &[u8], field: u32) -> &[u8] {
    let found = all(bytes, field);
    assert_eq!(found.len(), 1, "field {field}");
    found[0]
}

fn text(bytes: &[u8], field: u32) -> &str {
    std::str::from_utf8(one(bytes, field)).unwrap()
}

/// The `value` of the `Named*` entry called `name` among `entries`.
fn named<'a>(entries: &[&'a [u8]], name: &str) -> &'a [u8] {
    let entry = entries.iter().find(|e| text(e, 1) == name).unwrap_or_else(|| panic!("{name}"));
    one(entry, 2)
}

#[test]
fn v2_protobuf_decodes_to_the_json_document() {
    let json = v2();
    let doc = v2_protobuf();
    assert_eq!(text(doc, 1), "2.0");
    assert_eq!(text(one(doc, 2), 2), VERSION);

    let paths = all(one(doc, 8), 2);
    assert_eq!(paths.len(), json["paths"].as_object().unwrap().len());
    let definitions = all(one(doc, 9), 1);
    assert_eq!(definitions.len(), json["definitions"].as_object().unwrap().len());
    let parameters = all(one(doc, 10), 1);
    assert_eq!(parameters.len(), json["parameters"].as_object().unwrap().len());

    // Schema.vendor_extension (31) → NamedAny → Any.yaml (2), as kube-openapi reads GVKs.
    let deployment = named(&definitions, "io.k8s.api.apps.v1.Deployment");
    let gvk = named(&all(deployment, 31), "x-kubernetes-group-version-kind");
    assert_eq!(
        std::str::from_utf8(one(gvk, 2)).unwrap(),
        "- \"group\": \"apps\"\n  \"kind\": \"Deployment\"\n  \"version\": \"v1\"\n"
    );
    let properties = all(one(deployment, 25), 1);
    assert_eq!(
        properties.len(),
        json["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]
            .as_object()
            .unwrap()
            .len()
    );
    let spec = named(&properties, "spec");
    assert_eq!(text(spec, 1), "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");

    // client-go's v2 QueryParamVerifier: PATCH (8) → parameters (8) → JsonReference (2) →
    // document parameter → NonBodyParameter (2) → QueryParameterSubSchema (3) named
    // fieldValidation.
    let item = named(&paths, "/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
    let patch = one(item, 8);
    let names: Vec<&str> = all(patch, 8)
        .into_iter()
        .filter_map(|p| all(p, 2).first().map(|r| text(r, 1)))
        .map(|r| named(&parameters, r.trim_start_matches("#/parameters/")))
        .filter_map(|param| all(param, 2).first().map(|non_body| one(non_body, 3)))
        .map(|query| text(query, 4))
        .collect();
    assert!(names.contains(&"fieldValidation"), "{names:?}");
    let action = named(&all(patch, 13), "x-kubernetes-action");
    assert_eq!(std::str::from_utf8(one(action, 2)).unwrap(), "\"patch\"\n");

    // Path parameters set `required` (field 1) on PathParameterSubSchema (4).
    let namespace = parameters
        .iter()
        .map(|named| one(named, 2))
        .filter_map(|param| all(param, 2).first().copied())
        .filter_map(|non_body| all(non_body, 4).first().copied())
        .find(|path| text(path, 4) == "namespace")
        .expect("shared namespace parameter");
    assert!(fields(namespace).iter().any(|f| matches!(f, (1, Field::Varint(1)))));
}

#[test]
fn embedded_definitions_split_into_one_entry_per_definition() {
    let whole: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("../../data/openapi-definitions.json")).unwrap();
    let defs = definitions::load();
    let names: Vec<&str> = defs.iter().map(|(name, _)| name).collect();
    assert_eq!(names, whole.keys().map(String::as_str).collect::<Vec<_>>());
    for (name, raw) in defs.iter() {
        assert_eq!(serde_json::from_str::<Value>(raw).unwrap(), whole[name], "{name}");
    }
}

#[test]
fn embedded_definitions_cover_meta_types() {
    let defs = definitions::load();
    for name in
        ["Status", "APIResourceList", "WatchEvent", "DeleteOptions", "Patch", "APIGroupList"]
    {
        assert!(
            defs.get(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{name}")).is_some(),
            "{name}"
        );
    }
    for kind in [
        ("autoscaling", "Scale"),
        ("policy", "Eviction"),
        ("authentication.k8s.io", "TokenRequest"),
    ] {
        assert!(defs.by_kind(kind.0, "v1", kind.1).is_some(), "{kind:?}");
    }
}
