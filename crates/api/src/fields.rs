//! Which fields each kind can be selected by (`?fieldSelector=`), and their values, following
//! upstream's field label conversion funcs and `ToSelectableFields`/`GetAttrs`.

use serde_json::{Map, Value};

use crate::registry::Resource;
use crate::selector::FieldSelector;

/// How a selectable field's value is read from an object.
#[derive(Clone, Copy)]
enum Source {
    /// A string at a path; "" when absent, like an unset Go string.
    Text(&'static [&'static str]),
    /// An integer at a path, printed in decimal; "0" when absent.
    Integer(&'static [&'static str]),
    /// A boolean at a path, "true"/"false"; "false" when absent.
    Boolean(&'static [&'static str]),
    /// Anything that needs more than a path, and the paths it reads.
    Computed(fn(&Value) -> String, &'static [&'static [&'static str]]),
}

/// A field label a kind accepts and where its value comes from.
struct SelectableField {
    label: &'static str,
    source: Source,
}

const fn text(label: &'static str, path: &'static [&'static str]) -> SelectableField {
    SelectableField { label, source: Source::Text(path) }
}

const fn integer(label: &'static str, path: &'static [&'static str]) -> SelectableField {
    SelectableField { label, source: Source::Integer(path) }
}

const fn boolean(label: &'static str, path: &'static [&'static str]) -> SelectableField {
    SelectableField { label, source: Source::Boolean(path) }
}

const fn computed(
    label: &'static str,
    read: fn(&Value) -> String,
    reads: &'static [&'static [&'static str]],
) -> SelectableField {
    SelectableField { label, source: Source::Computed(read, reads) }
}

const POD_IP_READS: &[&[&str]] = &[&["status", "podIPs"], &["status", "podIP"]];
const REGARDING_READS: &[&[&str]] = &[&["involvedObject"], &["regarding"]];
const REPORTING_READS: &[&[&str]] = &[&["reportingComponent"], &["reportingController"]];
const SOURCE_READS: &[&[&str]] =
    &[&["source"], &["deprecatedSource"], &["reportingComponent"], &["reportingController"]];

const NAME: SelectableField = text("metadata.name", &["metadata", "name"]);
const NAMESPACE: SelectableField = text("metadata.namespace", &["metadata", "namespace"]);

/// What every kind without its own conversion func accepts
/// (`DefaultMetaV1FieldSelectorConversion`), cluster-scoped ones included.
const DEFAULT_FIELDS: &[SelectableField] = &[NAME, NAMESPACE];

const POD_FIELDS: &[SelectableField] = &[
    NAME,
    NAMESPACE,
    text("spec.nodeName", &["spec", "nodeName"]),
    text("spec.restartPolicy", &["spec", "restartPolicy"]),
    text("spec.schedulerName", &["spec", "schedulerName"]),
    text("spec.serviceAccountName", &["spec", "serviceAccountName"]),
    boolean("spec.hostNetwork", &["spec", "hostNetwork"]),
    text("status.phase", &["status", "phase"]),
    computed("status.podIP", pod_ip, POD_IP_READS),
    // Accepted by upstream's conversion but absent from its field set, so it only ever
    // equals "" there; kept that way rather than inventing a list format.
    computed("status.podIPs", |_| String::new(), &[]),
    text("status.nominatedNodeName", &["status", "nominatedNodeName"]),
    // Old v1 clients' name for spec.nodeName.
    text("spec.host", &["spec", "nodeName"]),
];

const NODE_FIELDS: &[SelectableField] =
    &[NAME, boolean("spec.unschedulable", &["spec", "unschedulable"])];

const NAMESPACE_FIELDS: &[SelectableField] = &[NAME, text("status.phase", &["status", "phase"])];

const SECRET_FIELDS: &[SelectableField] = &[NAME, NAMESPACE, text("type", &["type"])];

const SERVICE_FIELDS: &[SelectableField] = &[
    NAME,
    NAMESPACE,
    text("spec.clusterIP", &["spec", "clusterIP"]),
    text("spec.type", &["spec", "type"]),
];

const REPLICA_COUNT_FIELDS: &[SelectableField] =
    &[NAME, NAMESPACE, integer("status.replicas", &["status", "replicas"])];

const JOB_FIELDS: &[SelectableField] =
    &[NAME, NAMESPACE, integer("status.successful", &["status", "succeeded"])];

const CSR_FIELDS: &[SelectableField] = &[NAME, text("spec.signerName", &["spec", "signerName"])];

/// core/v1 Events. The readers accept both Event shapes, since both APIs share one storage.
const CORE_EVENT_FIELDS: &[SelectableField] = &[
    computed("involvedObject.kind", |e| event_regarding(e, "kind"), REGARDING_READS),
    computed("involvedObject.namespace", |e| event_regarding(e, "namespace"), REGARDING_READS),
    computed("involvedObject.name", |e| event_regarding(e, "name"), REGARDING_READS),
    computed("involvedObject.uid", |e| event_regarding(e, "uid"), REGARDING_READS),
    computed("involvedObject.apiVersion", |e| event_regarding(e, "apiVersion"), REGARDING_READS),
    computed(
        "involvedObject.resourceVersion",
        |e| event_regarding(e, "resourceVersion"),
        REGARDING_READS,
    ),
    computed("involvedObject.fieldPath", |e| event_regarding(e, "fieldPath"), REGARDING_READS),
    text("reason", &["reason"]),
    computed("reportingComponent", event_reporting_controller, REPORTING_READS),
    computed("source", event_source, SOURCE_READS),
    text("type", &["type"]),
    NAMESPACE,
    NAME,
];

/// events.k8s.io/v1 Events: the same fields under that API's names (upstream maps these
/// labels onto the core ones; `source` stays although the field is now `deprecatedSource`).
const EVENTS_V1_FIELDS: &[SelectableField] = &[
    text("reason", &["reason"]),
    computed("regarding.kind", |e| event_regarding(e, "kind"), REGARDING_READS),
    computed("regarding.namespace", |e| event_regarding(e, "namespace"), REGARDING_READS),
    computed("regarding.name", |e| event_regarding(e, "name"), REGARDING_READS),
    computed("regarding.uid", |e| event_regarding(e, "uid"), REGARDING_READS),
    computed("regarding.apiVersion", |e| event_regarding(e, "apiVersion"), REGARDING_READS),
    computed(
        "regarding.resourceVersion",
        |e| event_regarding(e, "resourceVersion"),
        REGARDING_READS,
    ),
    computed("regarding.fieldPath", |e| event_regarding(e, "fieldPath"), REGARDING_READS),
    computed("reportingController", event_reporting_controller, REPORTING_READS),
    computed("source", event_source, SOURCE_READS),
    text("type", &["type"]),
    NAMESPACE,
    NAME,
];

fn selectable_fields(resource: &Resource) -> &'static [SelectableField] {
    match (resource.group, resource.kind) {
        ("", "Pod") => POD_FIELDS,
        ("", "Node") => NODE_FIELDS,
        ("", "Namespace") => NAMESPACE_FIELDS,
        ("", "Secret") => SECRET_FIELDS,
        ("", "Service") => SERVICE_FIELDS,
        ("", "ReplicationController") | ("apps", "ReplicaSet") => REPLICA_COUNT_FIELDS,
        ("", "Event") => CORE_EVENT_FIELDS,
        ("events.k8s.io", "Event") => EVENTS_V1_FIELDS,
        ("batch", "Job") => JOB_FIELDS,
        ("certificates.k8s.io", "CertificateSigningRequest") => CSR_FIELDS,
        _ => DEFAULT_FIELDS,
    }
}

/// The field labels `?fieldSelector=` may use for this resource; any other is a 400.
pub fn supported_fields(resource: &Resource) -> Vec<&'static str> {
    selectable_fields(resource).iter().map(|f| f.label).collect()
}

/// Checks a parsed selector against [`supported_fields`], with upstream's message.
pub fn check_supported(resource: &Resource, selector: &FieldSelector) -> Result<(), String> {
    let fields = selectable_fields(resource);
    match selector.fields().into_iter().find(|f| !fields.iter().any(|s| s.label == *f)) {
        Some(unsupported) => Err(format!("field label not supported: {unsupported}")),
        None => Ok(()),
    }
}

/// The value of a selectable field on `object`, as upstream's field set holds it: booleans as
/// "true"/"false", integers in decimal, missing strings as "". `None` when the resource does
/// not support `field`.
pub fn field_value(resource: &Resource, object: &Value, field: &str) -> Option<String> {
    let selectable = selectable_fields(resource).iter().find(|f| f.label == field)?;
    Some(match selectable.source {
        Source::Text(path) => str_at(object, path).to_owned(),
        Source::Integer(path) => int_at(object, path).to_string(),
        Source::Boolean(path) => bool_at(object, path).to_string(),
        Source::Computed(read, _) => read(object),
    })
}

/// The labels of `resource`'s selectable fields, name and namespace aside (an object's key
/// gives those), in a fixed order: caches keep values by position in it.
pub fn cached_field_labels(resource: &Resource) -> impl Iterator<Item = &'static str> {
    selectable_fields(resource)
        .iter()
        .map(|f| f.label)
        .filter(|label| *label != NAME.label && *label != NAMESPACE.label)
}

/// The values of the object's selectable fields that are not "", by position in
/// [`cached_field_labels`], computed once so watches and lists can filter without parsing the
/// object again.
pub fn non_empty_field_values(resource: &Resource, object: &Value) -> Vec<(usize, String)> {
    cached_field_labels(resource)
        .enumerate()
        .filter_map(|(position, label)| {
            let value = field_value(resource, object, label)?;
            (!value.is_empty()).then_some((position, value))
        })
        .collect()
}

/// Parses `json` keeping only what the cache reads of an object: `metadata`'s name, namespace,
/// labels and resourceVersion, and the parts `resource`'s selectable fields are read from
/// (`None`: metadata only). [`non_empty_field_values`] of the result equals that of the whole
/// object; skipping the rest unparsed (containers, volumes, managedFields, …) is most of the
/// saving.
pub fn decode_selectable(resource: Option<&Resource>, json: &[u8]) -> serde_json::Result<Value> {
    let mut keep = Keep::default();
    for field in ["name", "namespace", "labels", "resourceVersion"] {
        keep.add(&["metadata", field]);
    }
    for field in resource.map(selectable_fields).unwrap_or_default() {
        match field.source {
            Source::Text(path) | Source::Integer(path) | Source::Boolean(path) => keep.add(path),
            Source::Computed(_, reads) => reads.iter().for_each(|path| keep.add(path)),
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde::de::DeserializeSeed::deserialize(&keep, &mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// What to keep of a JSON value: all of it, or of an object the members named (each with
/// what to keep of it).
#[derive(Default)]
struct Keep {
    whole: bool,
    members: Vec<(&'static str, Keep)>,
}

impl Keep {
    fn add(&mut self, path: &[&'static str]) {
        if self.whole {
            return;
        }
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            self.members.clear();
            return;
        };
        match self.members.iter_mut().find(|(name, _)| name == first) {
            Some((_, member)) => member.add(rest),
            None => {
                let mut member = Keep::default();
                member.add(rest);
                self.members.push((first, member));
            }
        }
    }

    fn member(&self, name: &str) -> Option<&Keep> {
        self.members.iter().find(|(n, _)| *n == name).map(|(_, keep)| keep)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(key.to_owned()))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &Keep {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        use serde::Deserialize;
        if self.whole {
            return Value::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &Keep {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match self.member(&key) {
                Some(keep) => {
                    kept.insert(key.into_owned(), map.next_value_seed(keep)?);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }

    // A kept path that meets something other than an object keeps nothing of it: no field
    // reads below a scalar or a list.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The first pod IP; objects written before `podIPs` existed only carry `podIP`.
fn pod_ip(pod: &Value) -> String {
    match list_at(pod, &["status", "podIPs"]).first() {
        Some(first) => str_at(first, &["ip"]).to_owned(),
        None => str_at(pod, &["status", "podIP"]).to_owned(),
    }
}

/// A field of the object an Event is about: `involvedObject` in core/v1, `regarding` in
/// events.k8s.io/v1.
pub(crate) fn event_regarding(event: &Value, field: &str) -> String {
    let reference = at(event, &["involvedObject"]).or_else(|| at(event, &["regarding"]));
    reference.map(|r| str_at(r, &[field])).unwrap_or_default().to_owned()
}

/// `reportingComponent` in core/v1, `reportingController` in events.k8s.io/v1.
pub(crate) fn event_reporting_controller(event: &Value) -> String {
    first_non_empty(&[
        str_at(event, &["reportingComponent"]),
        str_at(event, &["reportingController"]),
    ])
    .to_owned()
}

/// The legacy source component, or the reporting controller when it has none (upstream's
/// field set does the same).
fn event_source(event: &Value) -> String {
    let component = first_non_empty(&[
        str_at(event, &["source", "component"]),
        str_at(event, &["deprecatedSource", "component"]),
    ]);
    if component.is_empty() { event_reporting_controller(event) } else { component.to_owned() }
}

// ---------------------------------------------------------------------------------------------
// Reading user-supplied objects. Objects arrive as arbitrary JSON, so every reader has a
// zero-value default for a missing or wrongly typed field instead of failing, as a Go struct
// decoded with that field unset would hold. Shared with the table printers.

/// The value at `path` (object keys), if every step exists.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).and_then(Value::as_str).unwrap_or_default()
}

/// An integer field; JSON floats with no fraction count too (some clients write `3.0`).
pub(crate) fn int_at(value: &Value, path: &[&str]) -> i64 {
    opt_int_at(value, path).unwrap_or_default()
}

/// An integer field that may be unset (a Go `*int32`).
pub(crate) fn opt_int_at(value: &Value, path: &[&str]) -> Option<i64> {
    let v = at(value, path)?;
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

pub(crate) fn bool_at(value: &Value, path: &[&str]) -> bool {
    at(value, path).and_then(Value::as_bool).unwrap_or_default()
}

pub(crate) fn list_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn map_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(value, path).and_then(Value::as_object)
}

pub(crate) fn first_non_empty<'a>(candidates: &[&'a str]) -> &'a str {
    candidates.iter().copied().find(|s| !s.is_empty()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::{RESOURCES, find};

    fn resource(group: &str, plural: &str) -> &'static Resource {
        find(group, "v1", plural).unwrap()
    }

    #[test]
    fn a_pruned_decode_yields_the_same_field_values_and_metadata() {
        let meta = json!({"name": "x", "namespace": "ns", "labels": {"a": "b"},
            "resourceVersion": "7", "uid": "u", "managedFields": [{"manager": "m"}],
            "annotations": {"k": "v"}});
        let cases = [
            (
                resource("", "pods"),
                json!({"metadata": meta, "spec": {"nodeName": "n1",
                "restartPolicy": "Always", "schedulerName": "s", "serviceAccountName": "sa",
                "hostNetwork": true, "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}],
                "nominatedNodeName": "n2", "conditions": [{"type": "Ready"}]}}),
            ),
            (
                resource("", "pods"),
                json!({"metadata": meta, "spec": "odd",
                "status": {"podIP": "10.0.0.2", "podIPs": 3}}),
            ),
            (
                resource("", "events"),
                json!({"metadata": meta, "reason": "Scheduled",
                "type": "Normal", "message": "m", "involvedObject": {"kind": "Pod", "name": "p",
                "uid": "u", "fieldPath": "spec"}, "source": {"component": "kubelet"}}),
            ),
            (
                resource("events.k8s.io", "events"),
                json!({"metadata": meta,
                "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "rc",
                "note": "n", "deprecatedSource": {}}),
            ),
            (
                resource("", "nodes"),
                json!({"metadata": meta, "spec": {"unschedulable": true,
                "taints": []}, "status": {"capacity": {"cpu": "1"}}}),
            ),
            (
                resource("", "secrets"),
                json!({"metadata": meta, "type": "Opaque",
                "data": {"k": "dg=="}}),
            ),
            (
                resource("apps", "replicasets"),
                json!({"metadata": meta,
                "spec": {"replicas": 3}, "status": {"replicas": 2}}),
            ),
            (resource("batch", "jobs"), json!({"metadata": meta, "status": {"succeeded": 1.0}})),
            (resource("", "configmaps"), json!({"metadata": meta, "data": {"a": "b"}})),
        ];
        for (resource, object) in cases {
            let bytes = serde_json::to_vec(&object).unwrap();
            let pruned = decode_selectable(Some(resource), &bytes).unwrap();
            let full = non_empty_field_values(resource, &object);
            assert!(!full.is_empty() || resource.kind == "ConfigMap");
            assert_eq!(non_empty_field_values(resource, &pruned), full, "{object}");
            for field in ["name", "namespace", "labels", "resourceVersion"] {
                assert_eq!(pruned["metadata"][field], object["metadata"][field]);
            }
            assert!(pruned["metadata"].get("managedFields").is_none());
            assert!(pruned["metadata"].get("annotations").is_none());
            assert!(pruned.get("spec").is_none_or(|s| s.get("containers").is_none()));
        }
        let metadata_only = decode_selectable(None, br#"{"metadata":{"name":"x"},"a":1}"#);
        assert_eq!(metadata_only.unwrap(), json!({"metadata": {"name": "x"}}));
        assert!(decode_selectable(None, br#"{"metadata":{"name":"x"}} trailing"#).is_err());
        assert!(decode_selectable(None, br#"{"metadata":{"name":"#).is_err());
    }

    #[test]
    fn kinds_support_upstreams_field_labels() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("", "configmaps", &["metadata.name", "metadata.namespace"]),
            ("scheduling.k8s.io", "priorityclasses", &["metadata.name", "metadata.namespace"]),
            ("", "nodes", &["metadata.name", "spec.unschedulable"]),
            ("", "namespaces", &["metadata.name", "status.phase"]),
            ("", "secrets", &["metadata.name", "metadata.namespace", "type"]),
            (
                "",
                "services",
                &["metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"],
            ),
            (
                "",
                "replicationcontrollers",
                &["metadata.name", "metadata.namespace", "status.replicas"],
            ),
            ("apps", "replicasets", &["metadata.name", "metadata.namespace", "status.replicas"]),
            ("batch", "jobs", &["metadata.name", "metadata.namespace", "status.successful"]),
            (
                "certificates.k8s.io",
                "certificatesigningrequests",
                &["metadata.name", "spec.signerName"],
            ),
            (
                "",
                "pods",
                &[
                    "metadata.name",
                    "metadata.namespace",
                    "spec.nodeName",
                    "spec.restartPolicy",
                    "spec.schedulerName",
                    "spec.serviceAccountName",
                    "spec.hostNetwork",
                    "status.phase",
                    "status.podIP",
                    "status.podIPs",
                    "status.nominatedNodeName",
                    "spec.host",
                ],
            ),
        ];
        for (group, plural, expected) in cases {
            let mut got = supported_fields(resource(group, plural));
            let mut expected = expected.to_vec();
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(got, expected, "{plural}");
        }
    }

    #[test]
    fn the_two_event_apis_use_their_own_field_names() {
        let core = supported_fields(resource("", "events"));
        let v1 = supported_fields(resource("events.k8s.io", "events"));
        for label in ["involvedObject.uid", "reportingComponent", "source", "reason", "type"] {
            assert!(core.contains(&label), "{label}");
        }
        for label in ["regarding.uid", "reportingController", "source", "reason", "type"] {
            assert!(v1.contains(&label), "{label}");
        }
        assert!(!v1.contains(&"involvedObject.kind") && !core.contains(&"regarding.kind"));
    }

    #[test]
    fn pod_field_values_follow_upstreams_field_set() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
        });
        let pods = resource("", "pods");
        let cases = [
            ("metadata.name", Some("web")),
            ("metadata.namespace", Some("prod")),
            ("spec.nodeName", Some("n1")),
            ("spec.host", Some("n1")),
            ("spec.hostNetwork", Some("true")),
            ("spec.restartPolicy", Some("Always")),
            ("spec.schedulerName", Some("")),
            ("status.phase", Some("Running")),
            ("status.podIP", Some("10.0.0.5")),
            ("status.podIPs", Some("")),
            ("status.nominatedNodeName", Some("")),
            ("spec.containers", None),
        ];
        for (field, expected) in cases {
            assert_eq!(field_value(pods, &pod, field).as_deref(), expected, "{field}");
        }
        let legacy = json!({"status": {"podIP": "10.0.0.9"}});
        assert_eq!(field_value(pods, &legacy, "status.podIP").as_deref(), Some("10.0.0.9"));
        assert_eq!(field_value(pods, &legacy, "spec.hostNetwork").as_deref(), Some("false"));
    }

    #[test]
    fn counts_and_flags_print_like_go() {
        let rs = json!({"status": {"replicas": 3}});
        assert_eq!(
            field_value(resource("apps", "replicasets"), &rs, "status.replicas").unwrap(),
            "3"
        );
        let job = json!({"status": {"succeeded": 2}});
        assert_eq!(field_value(resource("batch", "jobs"), &job, "status.successful").unwrap(), "2");
        assert_eq!(
            field_value(resource("batch", "jobs"), &json!({}), "status.successful").unwrap(),
            "0"
        );
        let node = json!({"spec": {"unschedulable": true}});
        assert_eq!(
            field_value(resource("", "nodes"), &node, "spec.unschedulable").unwrap(),
            "true"
        );
        assert_eq!(
            field_value(resource("", "nodes"), &json!({}), "spec.unschedulable").unwrap(),
            "false"
        );
    }

    #[test]
    fn event_fields_read_either_event_shape() {
        let core = json!({
            "involvedObject": {"kind": "Pod", "name": "web", "uid": "u1"},
            "reason": "Started",
            "source": {"component": "kubelet"},
            "reportingComponent": "kubelet-rc",
            "type": "Normal",
        });
        let new = json!({
            "regarding": {"kind": "Pod", "name": "web", "uid": "u1"},
            "reason": "Started",
            "reportingController": "kubelet-rc",
            "type": "Normal",
        });
        let core_events = resource("", "events");
        let v1_events = resource("events.k8s.io", "events");
        for event in [&core, &new] {
            assert_eq!(field_value(core_events, event, "involvedObject.uid").unwrap(), "u1");
            assert_eq!(field_value(v1_events, event, "regarding.kind").unwrap(), "Pod");
            assert_eq!(field_value(v1_events, event, "reportingController").unwrap(), "kubelet-rc");
            assert_eq!(field_value(core_events, event, "reason").unwrap(), "Started");
        }
        assert_eq!(field_value(core_events, &core, "source").unwrap(), "kubelet");
        // Without a legacy source component, the reporting controller stands in.
        assert_eq!(field_value(v1_events, &new, "source").unwrap(), "kubelet-rc");
    }

    #[test]
    fn unsupported_fields_are_named_in_the_error() {
        let nodes = resource("", "nodes");
        let ok = FieldSelector::parse("metadata.name=a,spec.unschedulable=true").unwrap();
        assert_eq!(check_supported(nodes, &ok), Ok(()));
        let bad = FieldSelector::parse("metadata.namespace=a").unwrap();
        assert_eq!(
            check_supported(nodes, &bad),
            Err("field label not supported: metadata.namespace".to_owned())
        );
    }

    #[test]
    fn garbage_objects_give_zero_values_and_never_panic() {
        let garbage = [
            json!(null),
            json!(7),
            json!("text"),
            json!([1, 2]),
            json!({"metadata": 5, "spec": [], "status": "x"}),
            json!({"spec": {"nodeName": 3, "hostNetwork": "yes"}, "status": {"podIPs": [7, null]}}),
            json!({"status": {"replicas": "3", "succeeded": 1.5}, "involvedObject": "pod"}),
        ];
        for resource in RESOURCES {
            for object in &garbage {
                for field in supported_fields(resource) {
                    let value = field_value(resource, object, field).unwrap();
                    assert!(matches!(value.as_str(), "" | "0" | "false"), "{field}: {value}");
                }
            }
        }
    }

    #[test]
    fn path_readers_default_instead_of_failing() {
        let v = json!({"a": {"n": 2, "f": 3.0, "half": 2.5, "s": "x", "b": true, "l": [1]}});
        assert_eq!(int_at(&v, &["a", "n"]), 2);
        assert_eq!(int_at(&v, &["a", "f"]), 3);
        assert_eq!(opt_int_at(&v, &["a", "half"]), None);
        assert_eq!(str_at(&v, &["a", "n"]), "");
        assert_eq!(str_at(&v, &["a", "s", "deeper"]), "");
        assert!(bool_at(&v, &["a", "b"]) && !bool_at(&v, &["a", "s"]));
        assert_eq!(list_at(&v, &["a", "l"]).len(), 1);
        assert!(list_at(&v, &["a", "s"]).is_empty() && map_at(&v, &["a", "l"]).is_none());
    }
}
