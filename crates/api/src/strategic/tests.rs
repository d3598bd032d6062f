//! Table-driven tests of strategic merge patch, from upstream's documented behaviour and from
//! the patches kubectl 1.32 sends.

use serde_json::{Value, json};

use super::*;

const POD: &str = "io.k8s.api.core.v1.Pod";
const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

struct Case {
    name: &'static str,
    definition: &'static str,
    original: Value,
    patch: Value,
    expected: Value,
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let patched = apply(&case.original, &case.patch, case.definition)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(patched, case.expected, "{}", case.name);
    }
}

#[test]
fn objects_and_merged_lists_follow_the_schema() {
    run(vec![
        Case {
            name: "an image change in one container keeps the other container",
            definition: POD,
            original: pod(
                json!([{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}),
            expected: pod(
                json!([{"name": "web", "image": "nginx:2"}, {"name": "log", "image": "busybox"}]),
            ),
        },
        Case {
            name: "env merges by name: changed, added, untouched",
            definition: POD,
            original: pod(
                json!([{"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]}}),
            expected: pod(json!([{"name": "web", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}
            ]}])),
        },
        Case {
            name: "ports merge by containerPort",
            definition: POD,
            original: pod(
                json!([{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}]}}),
            expected: pod(json!([{"name": "web", "ports": [
                {"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}
            ]}])),
        },
        Case {
            name: "$patch: delete removes a container",
            definition: POD,
            original: pod(
                json!([{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}),
            expected: pod(json!([{"name": "web", "image": "nginx"}])),
        },
        Case {
            name: "$patch: replace replaces a merged list",
            definition: POD,
            original: pod(
                json!([{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "new", "image": "x"}, {"$patch": "replace"}]}}),
            expected: pod(json!([{"name": "new", "image": "x"}])),
        },
        Case {
            name: "$patch: merge on a list item merges it as usual",
            definition: POD,
            original: pod(json!([{"name": "web", "image": "nginx", "tty": true}])),
            patch: json!({"spec": {"containers": [{"name": "web", "image": "x", "$patch": "merge"}]}}),
            expected: pod(json!([{"name": "web", "image": "x", "tty": true}])),
        },
        Case {
            name: "new items are placed by upstream's ordering rules",
            definition: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
            patch: json!({"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "d"}]}}),
            expected: pod(
                json!([{"name": "a"}, {"name": "b", "image": "x"}, {"name": "d"}, {"name": "c"}]),
            ),
        },
        Case {
            name: "$setElementOrder reorders the merged list",
            definition: POD,
            original: pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
                "containers": [{"name": "a", "image": "x"}],
            }}),
            expected: pod(json!([{"name": "c"}, {"name": "a", "image": "x"}, {"name": "b"}])),
        },
        Case {
            name: "$setElementOrder alone reorders without changing items",
            definition: POD,
            original: pod(json!([{"name": "web", "env": [{"name": "A"}, {"name": "B"}]}])),
            patch: json!({"spec": {"containers": [{"name": "web", "$setElementOrder/env": [{"name": "B"}, {"name": "A"}]}]}}),
            expected: pod(json!([{"name": "web", "env": [{"name": "B"}, {"name": "A"}]}])),
        },
        Case {
            name: "lists without patch strategy are replaced",
            definition: POD,
            original: pod(json!([{"name": "web", "args": ["a", "b"], "command": ["sh"]}])),
            patch: json!({"spec": {"containers": [{"name": "web", "args": ["c"]}]}}),
            expected: pod(json!([{"name": "web", "args": ["c"], "command": ["sh"]}])),
        },
        Case {
            name: "lists of scalars with strategy merge are unioned",
            definition: POD,
            original: json!({"metadata": {"name": "p", "finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["c", "a"]}}),
            expected: json!({"metadata": {"name": "p", "finalizers": ["c", "a", "b"]}}),
        },
        Case {
            name: "$deleteFromPrimitiveList removes finalizers",
            definition: POD,
            original: json!({"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
            expected: json!({"metadata": {"name": "p", "finalizers": ["a", "c"]}}),
        },
        Case {
            name: "null removes a label and other labels merge",
            definition: POD,
            original: json!({"metadata": {"name": "p", "labels": {"app": "web", "tier": "front"}}}),
            patch: json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}),
            expected: json!({"metadata": {"name": "p", "labels": {"app": "web", "env": "prod"}}}),
        },
        Case {
            name: "null for an absent field is nothing",
            definition: POD,
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": null}, "spec": {"nodeName": null}}),
            expected: json!({"metadata": {"name": "p"}, "spec": {}}),
        },
        Case {
            name: "$patch: replace on an object replaces it",
            definition: POD,
            original: json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            expected: json!({"metadata": {"name": "p", "labels": {"c": "3"}}}),
        },
        Case {
            name: "$patch: delete on an object empties it, as upstream",
            definition: POD,
            original: json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "delete"}}}),
            expected: json!({"metadata": {"name": "p", "labels": {}}}),
        },
        Case {
            name: "$retainKeys: switching RollingUpdate to Recreate drops rollingUpdate",
            definition: DEPLOYMENT,
            original: json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            expected: json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "$retainKeys inside a volume switches its source",
            definition: POD,
            original: json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}, {"name": "w", "emptyDir": {}}]}}),
            patch: json!({"spec": {"volumes": [{"$retainKeys": ["name", "secret"], "name": "v", "secret": {"secretName": "s"}}]}}),
            expected: json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "s"}}, {"name": "w", "emptyDir": {}}]}}),
        },
        Case {
            name: "int-or-string and quantities are scalars the patch replaces",
            definition: DEPLOYMENT,
            original: json!({"spec": {
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}},
            }}),
            patch: json!({"spec": {
                "strategy": {"rollingUpdate": {"maxSurge": 2}},
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 0.5}}}]}},
            }}),
            expected: json!({"spec": {
                "strategy": {"rollingUpdate": {"maxSurge": 2}},
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}]}},
            }}),
        },
        Case {
            name: "free-form maps merge key by key",
            definition: "io.k8s.api.core.v1.ConfigMap",
            original: json!({"data": {"a": "1", "b": "2"}}),
            patch: json!({"data": {"b": null, "c": "3"}}),
            expected: json!({"data": {"a": "1", "c": "3"}}),
        },
        Case {
            name: "patch strategy replace replaces an object (PodDisruptionBudget selector)",
            definition: "io.k8s.api.policy.v1.PodDisruptionBudget",
            original: json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}),
            patch: json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            expected: json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}}),
        },
        Case {
            name: "fields the schema lacks patch like a merge patch",
            definition: POD,
            original: json!({"spec": {"extra": {"a": 1, "list": [1, 2]}}}),
            patch: json!({"spec": {"extra": {"b": 2, "list": [3]}}}),
            expected: json!({"spec": {"extra": {"a": 1, "list": [3], "b": 2}}}),
        },
        Case {
            name: "new values lose their nulls and directives; new items go before the rest",
            definition: POD,
            original: pod(json!([{"name": "web"}])),
            patch: json!({"metadata": {"labels": {"a": "1", "b": null}}, "spec": {"containers": [
                {"name": "new", "env": [{"name": "X", "value": null}, {"name": "Y", "$patch": "delete"}]}
            ]}}),
            expected: json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}},
                "spec": {"containers": [{"name": "new", "env": [{"name": "X"}]}, {"name": "web"}]}}),
        },
        Case {
            name: "upstream: unique scalars when merging lists",
            definition: POD,
            original: json!({"metadata": {"finalizers": ["1", "2"]}}),
            patch: json!({"metadata": {"finalizers": ["2", "3"]}}),
            expected: json!({"metadata": {"finalizers": ["1", "2", "3"]}}),
        },
        Case {
            name: "upstream: preserve the order from the patch in a merging list",
            definition: POD,
            original: pod(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])),
            patch: json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
            expected: pod(
                json!([{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}]),
            ),
        },
        Case {
            name: "upstream: delete all duplicate entries in a merging list",
            definition: POD,
            original: pod(
                json!([{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"}, {"name": "3"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "1", "$patch": "delete"}, {"name": "3", "$patch": "delete"}]}}),
            expected: pod(json!([{"name": "2", "image": "a"}])),
        },
        Case {
            name: "upstream: $setElementOrder may name items the list lacks",
            definition: POD,
            original: pod(json!([{"name": "1"}, {"name": "3"}])),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
                "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}],
            }}),
            expected: pod(json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])),
        },
        Case {
            name: "upstream: delete and reorder in one list, reorder in another",
            definition: POD,
            original: json!({"spec": {
                "containers": [{"name": "a"}, {"name": "b"}],
                "initContainers": [{"name": "c"}, {"name": "d"}],
            }}),
            patch: json!({"spec": {
                "$setElementOrder/containers": [{"name": "b"}],
                "$setElementOrder/initContainers": [{"name": "d"}, {"name": "c"}],
                "containers": [{"$patch": "delete", "name": "a"}],
            }}),
            expected: json!({"spec": {
                "containers": [{"name": "b"}],
                "initContainers": [{"name": "d"}, {"name": "c"}],
            }}),
        },
        Case {
            name: "upstream: $deleteFromPrimitiveList also applies to lists without strategy",
            definition: POD,
            original: pod(json!([{"name": "web", "args": ["1", "2", "3"]}])),
            patch: json!({"spec": {"containers": [{"name": "web", "$deleteFromPrimitiveList/args": ["2"]}]}}),
            expected: pod(json!([{"name": "web", "args": ["1", "3"]}])),
        },
        Case {
            name: "the scale subresource patches a Scale",
            definition: "io.k8s.api.autoscaling.v1.Scale",
            original: json!({"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1}}),
            patch: json!({"spec": {"replicas": 3}}),
            expected: json!({"kind": "Scale", "spec": {"replicas": 3}, "status": {"replicas": 1}}),
        },
    ]);
}

/// The live object the kubectl cases start from: what `kubectl apply` created from
/// `kubectl_manifest(1)`, with its last-applied annotation.
fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "busybox:1", "env": [
                        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}
                    ]},
                    {"name": "sidecar", "image": "busybox:1"},
                ]},
            },
        },
    })
}

/// Patches as kubectl 1.32 sends them (its `-v=9` request bodies, captured against capstan)
/// for the live deployment.
#[test]
fn kubectl_patches_apply_as_kubectl_expects() {
    let live = live_deployment();
    // `kubectl apply` of the manifest with web's image changed, env B and label tier removed,
    // env C moved first and the strategy switched to Recreate.
    let apply_patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"},
            "labels": {"tier": null},
        },
        "spec": {
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "image": "busybox:2",
                    "name": "web",
                }],
            }},
        },
    });
    let applied = apply(&live, &apply_patch, DEPLOYMENT).unwrap();
    assert_eq!(applied["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":true}\n"
    );
    assert_eq!(applied["spec"]["strategy"], json!({"type": "Recreate"}));
    let containers = &applied["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0],
        json!({"name": "web", "image": "busybox:2", "env": [
            {"name": "C", "value": "3"}, {"name": "A", "value": "1"}
        ]})
    );
    assert_eq!(containers[1], json!({"name": "sidecar", "image": "busybox:1"}));

    // `kubectl set image deployment/web sidecar=busybox:3`
    let set_image = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [{"image": "busybox:3", "name": "sidecar"}],
    }}}});
    let imaged = apply(&live, &set_image, DEPLOYMENT).unwrap();
    let containers = &imaged["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0], live["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(containers[1], json!({"name": "sidecar", "image": "busybox:3"}));

    // `kubectl set env deployment/web -c web D=4 A=9`
    let set_env = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}],
            "env": [{"name": "A", "value": "9"}, {"name": "D", "value": "4"}],
            "name": "web",
        }],
    }}}});
    let envs = apply(&live, &set_env, DEPLOYMENT).unwrap();
    assert_eq!(
        envs["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([
            {"name": "A", "value": "9"}, {"name": "B", "value": "2"},
            {"name": "C", "value": "3"}, {"name": "D", "value": "4"}
        ])
    );
    assert_eq!(
        envs["spec"]["template"]["spec"]["containers"][1],
        json!({"name": "sidecar", "image": "busybox:1"})
    );
}

#[test]
fn patches_that_do_not_apply_are_errors() {
    let mut original = pod(json!([{"name": "web", "image": "nginx"}]));
    original["metadata"]["finalizers"] = json!(["x"]);
    // (what is wrong, the patch, the PatchError variant expected)
    let cases = [
        ("unknown $patch value", json!({"spec": {"$patch": "explode"}}), "UnknownDirective"),
        (
            "a merge-keyed item without its key",
            json!({"spec": {"containers": [{"image": "x"}]}}),
            "MissingMergeKey",
        ),
        (
            "a deletion without the merge key",
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
            "MissingMergeKey",
        ),
        (
            "a map patched into a list",
            json!({"spec": {"containers": {"name": "web"}}}),
            "TypeMismatch",
        ),
        ("a list patched into an object", json!({"spec": [1]}), "TypeMismatch"),
        ("scalars in a merge-keyed list", json!({"spec": {"containers": ["web"]}}), "TypeMismatch"),
        (
            "$setElementOrder on a scalar field",
            json!({"spec": {"$setElementOrder/nodeName": ["a"]}}),
            "MisplacedDirective",
        ),
        (
            "$deleteFromPrimitiveList on a list of objects",
            json!({"spec": {"$deleteFromPrimitiveList/containers": ["web"]}}),
            "MisplacedDirective",
        ),
        (
            "$deleteFromPrimitiveList without a field",
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            "MalformedDirective",
        ),
        (
            "$retainKeys that is not a list",
            json!({"spec": {"$retainKeys": "containers"}}),
            "MalformedDirective",
        ),
        (
            "a patched field missing from $retainKeys",
            json!({"spec": {"$retainKeys": ["containers"], "nodeName": "n"}}),
            "NotRetained",
        ),
        (
            "a patch list out of $setElementOrder's order",
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}],
            }}),
            "OrderMismatch",
        ),
        ("a list of lists", json!({"metadata": {"finalizers": [["a"]]}}), "MixedList"),
        ("mixed item types", json!({"metadata": {"finalizers": ["a", 1]}}), "MixedList"),
        ("a patch that is not an object", json!([{"op": "add"}]), "NotAnObject"),
    ];
    for (name, patch, variant) in cases {
        match apply(&original, &patch, POD) {
            Ok(patched) => panic!("{name}: applied as {patched}"),
            Err(e) => assert!(format!("{e:?}").starts_with(variant), "{name}: got {e:?}"),
        }
    }
    assert!(matches!(
        apply(&original, &json!({}), "io.k8s.Nope"),
        Err(PatchError::UnknownDefinition(_))
    ));
}

#[test]
fn errors_name_the_field_and_say_whether_the_patch_is_malformed() {
    let original = pod(json!([{"name": "web", "image": "nginx", "env": [{"name": "A"}]}]));
    let patch = json!({"spec": {"containers": [{"name": "web", "env": [{"value": "x"}]}]}});
    let error = apply(&original, &patch, POD).unwrap_err();
    assert_eq!(
        error.to_string(),
        "spec.containers[name=\"web\"].env: the items of this list are merged by \"name\", \
         but an item has none: {\"value\":\"x\"}"
    );
    assert!(!error.is_malformed());
    let error = apply(&original, &json!({"spec": {"$retainKeys": 1}}), POD).unwrap_err();
    assert!(error.is_malformed(), "{error}");
}

#[test]
fn deep_patches_are_refused_not_overflowed() {
    let mut patch = json!("leaf");
    for _ in 0..(MAX_DEPTH + 10) {
        patch = json!({"x": patch});
    }
    let patch = json!({"spec": {"extra": patch}});
    let original = json!({"spec": {"extra": {"x": {"x": 1}}}});
    assert!(matches!(apply(&original, &patch, POD), Err(PatchError::TooDeep { .. })));
    assert!(matches!(apply(&json!({}), &patch, POD), Err(PatchError::TooDeep { .. })));
}

#[test]
fn every_served_resource_has_a_schema() {
    for resource in crate::RESOURCES {
        let definition = definition_for(resource, None)
            .unwrap_or_else(|| panic!("no definition for {}", resource.kind));
        assert!(definition.ends_with(&format!(".{}", resource.kind)), "{definition}");
        assert!(apply(&json!({}), &json!({"metadata": {"name": "x"}}), definition).is_ok());
    }
    let deployments = crate::registry::find("apps", "v1", "deployments").unwrap();
    assert_eq!(definition_for(deployments, None), Some(DEPLOYMENT));
    assert_eq!(definition_for(deployments, Some("status")), Some(DEPLOYMENT));
    assert_eq!(definition_for(deployments, Some("scale")), Some("io.k8s.api.autoscaling.v1.Scale"));
}

/// A small deterministic generator (xorshift) of JSON values built from the words patches use.
struct Noise(u64);

impl Noise {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }

    fn value(&mut self, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "spec",
            "metadata",
            "containers",
            "name",
            "env",
            "image",
            "ports",
            "containerPort",
            "finalizers",
            "labels",
            "volumes",
            "$patch",
            "$retainKeys",
            "$setElementOrder/containers",
            "$setElementOrder/env",
            "$deleteFromPrimitiveList/finalizers",
            "strategy",
            "x",
        ];
        const WORDS: &[&str] = &["delete", "replace", "merge", "web", "a", "name", "80"];
        match (depth, self.next(7)) {
            (0, _) | (_, 0) => json!(WORDS[self.next(WORDS.len() as u64) as usize]),
            (_, 1) => json!(self.next(3)),
            (_, 2) => Value::Null,
            (_, 3) => Value::Array((0..self.next(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.next(5))
                    .map(|_| {
                        (
                            KEYS[self.next(KEYS.len() as u64) as usize].to_owned(),
                            self.value(depth - 1),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

#[test]
fn arbitrary_patches_never_panic() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let base = live_deployment();
    for _ in 0..20_000 {
        let patch = noise.value(6);
        let original = if noise.next(2) == 0 { base.clone() } else { noise.value(6) };
        for definition in [DEPLOYMENT, POD] {
            let _ = apply(&original, &patch, definition);
            let _ = apply(
                &original,
                &json!({"spec": {"template": {"spec": patch.clone()}}}),
                definition,
            );
        }
    }
}
