//! Decoding hand-built protobuf bodies, laid out as client-go's gogo-protobuf writes them:
//! every non-pointer field present, zero or not.

use serde_json::{Value, json};

use super::decode::go_duration;
use super::{DecodeError, decode, supports};
use crate::registry::RESOURCES;

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A varint field (bool, int32, int64; negative numbers sign-extended as Go writes them).
fn int(number: u64, v: i64) -> Vec<u8> {
    [varint(number << 3), varint(v as u64)].concat()
}

fn bytes(number: u64, b: &[u8]) -> Vec<u8> {
    [varint(number << 3 | 2), varint(b.len() as u64), b.to_vec()].concat()
}

fn string(number: u64, s: &str) -> Vec<u8> {
    bytes(number, s.as_bytes())
}

/// An embedded message from its encoded fields.
fn msg(number: u64, fields: &[Vec<u8>]) -> Vec<u8> {
    bytes(number, &fields.concat())
}

/// A `map<string, V>` entry; `value` is the encoded field 2.
fn entry(number: u64, key: &str, value: Vec<u8>) -> Vec<u8> {
    msg(number, &[string(1, key), value])
}

/// `k8s\0` + runtime.Unknown.
fn envelope(api_version: &str, kind: &str, raw: &[Vec<u8>]) -> Vec<u8> {
    let unknown = [
        msg(1, &[string(1, api_version), string(2, kind)]),
        bytes(2, &raw.concat()),
        string(3, ""),
        string(4, ""),
    ];
    [b"k8s\0".to_vec(), unknown.concat()].concat()
}

/// ObjectMeta with a name, namespace and the zero fields gogo always writes.
fn meta(name: &str, namespace: &str) -> Vec<u8> {
    msg(
        1,
        &[
            string(1, name),
            string(2, ""),
            string(3, namespace),
            string(4, ""),
            string(5, ""),
            string(6, ""),
            int(7, 0),
            msg(8, &[]),
        ],
    )
}

#[test]
fn namespace_decodes_to_what_kubectl_sends_as_json() {
    let body =
        envelope("v1", "Namespace", &[meta("foo", ""), msg(2, &[]), msg(3, &[string(1, "")])]);
    let object = decode(&body).unwrap();
    // Byte for byte `kubectl create namespace foo --dry-run=client -o json`, key order too.
    assert_eq!(
        serde_json::to_string(&object).unwrap(),
        r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"foo","creationTimestamp":null},"spec":{},"status":{}}"#
    );
}

#[test]
fn configmap_keeps_its_maps_and_encodes_binary_data_as_base64() {
    let body = envelope(
        "v1",
        "ConfigMap",
        &[
            meta("settings", "default"),
            entry(2, "a", string(2, "b")),
            entry(2, "empty", string(2, "")),
            entry(3, "bin", bytes(2, &[0, 1, 2, 0xff])),
            // A field this schema does not know (a newer client's) is skipped.
            string(99, "from the future"),
        ],
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "settings", "namespace": "default", "creationTimestamp": null},
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
        })
    );
}

#[test]
fn secret_data_is_base64_and_pointer_false_survives() {
    let body = envelope(
        "v1",
        "Secret",
        &[
            meta("creds", "default"),
            entry(2, "password", bytes(2, b"s3cr3t")),
            string(3, "Opaque"),
            int(5, 0),
        ],
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "creds", "namespace": "default", "creationTimestamp": null},
            "immutable": false,
            "data": {"password": "czNjcjN0"},
            "type": "Opaque",
        })
    );
}

fn int_or_string_int(number: u64, v: i64) -> Vec<u8> {
    msg(number, &[int(1, 0), int(2, v), string(3, "")])
}

fn int_or_string_str(number: u64, s: &str) -> Vec<u8> {
    msg(number, &[int(1, 1), int(2, 0), string(3, s)])
}

fn quantity(number: u64, key: &str, q: &str) -> Vec<u8> {
    entry(number, key, msg(2, &[string(1, q)]))
}

#[test]
fn deployment_keeps_pointer_zeros_and_drops_omitempty_zeros() {
    let container = msg(
        2,
        &[
            string(1, "web"),
            string(2, "busybox"),
            string(5, ""),
            msg(
                8,
                &[
                    quantity(1, "cpu", "500m"),
                    quantity(1, "memory", "128Mi"),
                    quantity(2, "cpu", "100m"),
                ],
            ),
            string(13, "/dev/termination-log"),
            string(14, "IfNotPresent"),
            int(16, 0),
            int(17, 0),
            int(18, 0),
            string(20, "File"),
        ],
    );
    let pod_spec = msg(2, &[container, string(3, "Always"), int(4, 30), int(11, 0)]);
    let template = msg(3, &[msg(1, &[entry(11, "app", string(2, "web")), msg(8, &[])]), pod_spec]);
    let spec = msg(
        2,
        &[
            int(1, 0),
            msg(2, &[entry(1, "app", string(2, "web"))]),
            template,
            msg(
                4,
                &[
                    string(1, "RollingUpdate"),
                    msg(2, &[int_or_string_int(1, 1), int_or_string_str(2, "25%")]),
                ],
            ),
            int(5, 0),
            int(6, 10),
            int(7, 0),
            int(9, 600),
        ],
    );
    let body = envelope("apps/v1", "Deployment", &[meta("web", "default"), spec, msg(3, &[])]);
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "busybox",
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": "100m"},
                            },
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        })
    );
}

#[test]
fn struct_typed_zeros_survive_omitempty() {
    let port =
        msg(1, &[string(1, ""), string(2, "TCP"), int(3, 80), int_or_string_int(4, 0), int(5, 0)]);
    let body =
        envelope("v1", "Service", &[meta("svc", "ns"), msg(2, &[port, string(4, "ClusterIP")])]);
    assert_eq!(
        decode(&body).unwrap()["spec"],
        json!({"ports": [{"protocol": "TCP", "port": 80, "targetPort": 0}], "type": "ClusterIP"})
    );
}

#[test]
fn inlined_structs_join_their_parent_and_packed_numbers_unpack() {
    let volume = msg(1, &[string(1, "config"), msg(2, &[msg(19, &[msg(1, &[string(1, "cfg")])])])]);
    let security = msg(14, &[bytes(4, &[varint(1000), varint(2000)].concat()), int(2, 0)]);
    let container = msg(2, &[string(1, "c")]);
    let body = envelope("v1", "Pod", &[meta("p", "ns"), msg(2, &[volume, container, security])]);
    let pod = decode(&body).unwrap();
    assert_eq!(pod["spec"]["volumes"], json!([{"name": "config", "configMap": {"name": "cfg"}}]));
    assert_eq!(
        pod["spec"]["securityContext"],
        json!({"runAsUser": 0, "supplementalGroups": [1000, 2000]})
    );
}

#[test]
fn times_are_rfc3339_and_micro_times_keep_microseconds() {
    let micro = |number| msg(number, &[int(1, 1_700_000_000), int(2, 123_456_789)]);
    let body = envelope(
        "coordination.k8s.io/v1",
        "Lease",
        &[
            msg(1, &[string(1, "l"), msg(8, &[int(1, 1_700_000_000), int(2, 5)])]),
            msg(2, &[string(1, "me"), micro(3), micro(4), int(5, 0)]),
        ],
    );
    let lease = decode(&body).unwrap();
    assert_eq!(lease["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(
        lease["spec"],
        json!({
            "holderIdentity": "me",
            "acquireTime": "2023-11-14T22:13:20.123456Z",
            "renewTime": "2023-11-14T22:13:20.123456Z",
            "leaseTransitions": 0,
        })
    );
}

#[test]
fn delete_options_decode_under_any_group_version() {
    let body = envelope(
        "apps/v1",
        "DeleteOptions",
        &[int(1, 0), string(4, "Foreground"), msg(2, &[string(1, "uid-1")])],
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "kind": "DeleteOptions",
            "apiVersion": "apps/v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "uid-1"},
            "propagationPolicy": "Foreground",
        })
    );
}

#[test]
fn raw_extensions_embed_json_and_negative_numbers_keep_their_sign() {
    let body = envelope(
        "apps/v1",
        "ControllerRevision",
        &[meta("rev", "ns"), msg(2, &[string(1, r#"{"spec":{"x":1}}"#)]), int(3, -1)],
    );
    let revision = decode(&body).unwrap();
    assert_eq!(revision["data"], json!({"spec": {"x": 1}}));
    assert_eq!(revision["revision"], -1);
}

#[test]
fn extra_values_unwrap_to_plain_arrays() {
    let extra = entry(5, "scopes", msg(2, &[string(1, "a"), string(1, "b")]));
    let body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", &[msg(2, &[extra])]);
    assert_eq!(decode(&body).unwrap()["spec"]["extra"], json!({"scopes": ["a", "b"]}));
}

#[test]
fn every_registry_kind_has_a_schema() {
    for resource in RESOURCES {
        assert!(supports(&resource.api_version(), resource.kind), "{}", resource.kind);
        for sub in resource.subresources {
            let api_version = match sub.group_version {
                Some(("", v)) => v.to_owned(),
                Some((g, v)) => format!("{g}/{v}"),
                None => resource.api_version(),
            };
            assert!(supports(&api_version, sub.kind), "{api_version} {}", sub.kind);
        }
    }
}

#[test]
fn unknown_kinds_and_encodings_are_refused_by_name() {
    let body = envelope("example.com/v1", "Widget", &[]);
    assert!(matches!(decode(&body), Err(DecodeError::UnknownKind { .. })));
    let gzip =
        [b"k8s\0".to_vec(), msg(1, &[string(1, "v1"), string(2, "ConfigMap")]), string(3, "gzip")]
            .concat();
    assert_eq!(decode(&gzip), Err(DecodeError::UnsupportedEncoding("gzip".into())));
}

#[test]
fn wrong_wire_types_name_the_field() {
    let body = envelope("v1", "ConfigMap", &[msg(1, &[int(1, 5)])]);
    let Err(DecodeError::Malformed(message)) = decode(&body) else { panic!("accepted") };
    assert!(message.contains("ObjectMeta.name"), "{message}");
}

#[test]
fn garbage_is_an_error_and_never_a_panic() {
    for body in [&b""[..], b"{\"kind\":\"ConfigMap\"}", b"k8s\0", b"k8s\0\x0a\xff\xff\xff\xff\x0f"]
    {
        assert!(decode(body).is_err(), "{body:?}");
    }
    // Every prefix of a valid body, and a few thousand pseudo-random mutations of it.
    let valid = envelope("v1", "ConfigMap", &[meta("x", "y"), entry(2, "a", string(2, "b"))]);
    for len in 0..valid.len() {
        let _ = decode(&valid[..len]);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..5000 {
        let mut body = valid.clone();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = 4 + (seed as usize) % (body.len() - 4);
            body[at] = (seed >> 32) as u8;
        }
        let _ = decode(&body);
    }
}

#[test]
fn nesting_past_the_depth_limit_is_refused() {
    // ControllerRevision.data may carry another protobuf object, which may carry another…
    let mut body = envelope("v1", "ConfigMap", &[]);
    for _ in 0..100 {
        body = envelope("apps/v1", "ControllerRevision", &[msg(2, &[bytes(1, &body)])]);
    }
    let Err(DecodeError::Malformed(message)) = decode(&body) else { panic!("accepted") };
    assert!(message.contains("deeper"), "{message}");
}

#[test]
fn durations_print_like_go() {
    let cases = [
        (0, "0s"),
        (1_500, "1.5µs"),
        (2_000_000, "2ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_723_000_000_000, "1h2m3s"),
        (-1_000_000, "-1ms"),
    ];
    for (nanos, text) in cases {
        assert_eq!(go_duration(nanos), text);
    }
}

#[test]
fn the_table_parses() {
    let schema = super::schema::Schema::get();
    assert!(schema.messages.len() > 100);
    let _: Value = decode(&envelope("policy/v1", "Eviction", &[meta("p", "ns")])).unwrap();
}
