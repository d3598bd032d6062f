//! Deployment arithmetic and bookkeeping as upstream's deployment util: surge/unavailable
//! fenceposts, the pod-template-hash, revision annotations, and template comparison.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations not copied to its ReplicaSets (upstream's annotationsToSkip).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// `value` of `total`: an absolute number, or a percentage rounded up or down.
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => {
            let quarter = f64::from(total) * 0.25;
            (if round_up { quarter.ceil() } else { quarter.floor() }) as i32
        }
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let percent: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let exact = f64::from(total) * percent / 100.0;
            (if round_up { exact.ceil() } else { exact.floor() }) as i32
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas; both zero would deadlock, so
/// unavailable becomes 1 (upstream's ResolveFenceposts).
pub fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, desired, true);
    let unavailable = scaled_value(max_unavailable, desired, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// The deployment's resolved (maxSurge, maxUnavailable); Recreate has neither.
pub fn deployment_fenceposts(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let rolling =
        d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let (surge, unavailable) = fenceposts(
        rolling.and_then(|r| r.max_surge.as_ref()),
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    );
    (surge, unavailable.min(replicas(d)))
}

/// Upstream's `ComputeHash`: FNV-1a over the template (and the collision count), encoded with
/// the alphabet generated names use.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(serde_json::to_string(template).unwrap_or_default().as_bytes());
    if let Some(count) = collision_count {
        feed(&count.to_le_bytes());
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// Drops nulls and empty maps/lists, so "absent" and "empty" compare equal (as Go's
/// semantic equality treats nil and empty).
fn normalized(mut value: Value) -> Value {
    fn strip(value: &mut Value) -> bool {
        match value {
            Value::Null => true,
            Value::Object(map) => {
                map.retain(|_, v| !strip(v));
                map.is_empty()
            }
            Value::Array(items) => {
                items.iter_mut().for_each(|v| {
                    strip(v);
                });
                items.is_empty()
            }
            _ => false,
        }
    }
    strip(&mut value);
    value
}

/// Templates equal apart from the pod-template-hash label (upstream's EqualIgnoreHash).
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let without_hash = |t: &PodTemplateSpec| {
        let mut value = serde_json::to_value(t).unwrap_or_default();
        if let Some(labels) = value.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        normalized(value)
    };
    without_hash(a) == without_hash(b)
}

pub fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, DESIRED_REPLICAS)
}

pub fn max_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, MAX_REPLICAS)
}

/// The annotations a new ReplicaSet takes from its deployment, plus its bookkeeping ones.
pub fn new_rs_annotations(
    d: &Deployment,
    revision: i64,
    max_replicas: i32,
) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(REVISION.into(), revision.to_string());
    annotations.insert(DESIRED_REPLICAS.into(), replicas(d).to_string());
    annotations.insert(MAX_REPLICAS.into(), max_replicas.to_string());
    annotations
}

/// The annotation updates a reused ReplicaSet needs: the deployment's copied annotations, a
/// new revision (remembering the old one in revision-history, as upstream does on rollback).
pub fn annotation_updates(
    d: &Deployment,
    rs: &ReplicaSet,
    revision: i64,
) -> BTreeMap<String, String> {
    let current = rs.metadata.annotations.clone().unwrap_or_default();
    let mut updates = BTreeMap::new();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&k.as_str()) && current.get(k) != Some(v) {
            updates.insert(k.clone(), v.clone());
        }
    }
    let old = revision_of(rs);
    if old < revision {
        updates.insert(REVISION.into(), revision.to_string());
        if old > 0 {
            let history = match current.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old.to_string(),
            };
            updates.insert(REVISION_HISTORY.into(), history);
        }
    }
    updates
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn s(v: &str) -> Option<IntOrString> {
        Some(IntOrString::String(v.into()))
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let int = |n| Some(IntOrString::Int(n));
        let cases = [
            (s("25%"), s("25%"), 10, (3, 2)),
            (s("25%"), s("25%"), 4, (1, 1)),
            (s("25%"), s("25%"), 1, (1, 0)),
            (int(0), int(0), 5, (0, 1)),
            (int(2), int(1), 5, (2, 1)),
            (s("50%"), int(0), 3, (2, 0)),
            (int(0), s("10%"), 5, (0, 1)),
            (None, None, 8, (2, 2)),
        ];
        for (surge, unavailable, desired, want) in cases {
            assert_eq!(
                fenceposts(surge.as_ref(), unavailable.as_ref(), desired),
                want,
                "{surge:?} {unavailable:?} of {desired}"
            );
        }
    }

    #[test]
    fn template_hash_is_stable_short_and_changes_with_the_template() {
        let a = PodTemplateSpec::default();
        let labels = Some([("app".to_owned(), "x".to_owned())].into());
        let b = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(template_hash(&a, None), template_hash(&a, None));
        assert_ne!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        let hash = template_hash(&b, None);
        assert!(
            hash.len() <= 10 && hash.bytes().all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c))
        );
    }

    #[test]
    fn templates_compare_equal_without_the_hash_label_and_empty_maps() {
        let labels = Some([("pod-template-hash".to_owned(), "abc".to_owned())].into());
        let mut a = PodTemplateSpec {
            metadata: Some(ObjectMeta { labels, ..Default::default() }),
            ..Default::default()
        };
        assert!(equal_ignoring_hash(&a, &PodTemplateSpec::default()));
        a.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("x".into(), "y".into());
        assert!(!equal_ignoring_hash(&a, &PodTemplateSpec::default()));
    }
}
