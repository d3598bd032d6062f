//! ConfigMaps and Secrets: data keys, total size, secret types' required keys, and the
//! `immutable` flag that freezes their data.

use base64::Engine;
use serde_json::Value;

use super::names;
use super::*;

/// Upstream's limit on a ConfigMap's or Secret's data (`MaxSecretSize`).
const MAX_SIZE: usize = 1024 * 1024;

fn data_keys(object: &Value, field: &str, errs: &mut Vec<Cause>) {
    for name in map(object, field).into_iter().flat_map(|m| m.keys()) {
        for msg in names::config_key_errors(name) {
            errs.push(invalid_str(&key(field, name), name, &msg));
        }
    }
}

/// Bytes of a base64 field's values (as stored) or a string field's values.
fn size(object: &Value, field: &str, base64: bool) -> usize {
    map(object, field)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(Value::as_str)
        .map(|v| match base64 {
            true => {
                base64::engine::general_purpose::STANDARD.decode(v).map_or(v.len(), |b| b.len())
            }
            false => v.len(),
        })
        .sum()
}

pub(super) fn config_map(object: &Value, errs: &mut Vec<Cause>) {
    data_keys(object, "data", errs);
    data_keys(object, "binaryData", errs);
    let binary = map(object, "binaryData");
    for name in map(object, "data").into_iter().flat_map(|m| m.keys()) {
        if binary.is_some_and(|b| b.contains_key(name)) {
            errs.push(invalid_str(
                &key("data", name),
                name,
                "duplicate of key present in binaryData",
            ));
        }
    }
    if size(object, "data", false) + size(object, "binaryData", true) > MAX_SIZE {
        errs.push(too_long("", MAX_SIZE));
    }
}

pub(super) fn secret(object: &Value, errs: &mut Vec<Cause>) {
    data_keys(object, "data", errs);
    data_keys(object, "stringData", errs);
    if size(object, "data", true) + size(object, "stringData", false) > MAX_SIZE {
        errs.push(too_long("data", MAX_SIZE));
    }
    let has = |k: &str| {
        map(object, "data").is_some_and(|d| d.contains_key(k))
            || map(object, "stringData").is_some_and(|d| d.contains_key(k))
    };
    let require = |k: &str, errs: &mut Vec<Cause>| {
        if !has(k) {
            errs.push(required(&key("data", k), ""));
        }
    };
    match string(object, "type") {
        "kubernetes.io/service-account-token" => {
            let annotations = &object["metadata"]["annotations"];
            if string(annotations, "kubernetes.io/service-account.name").is_empty() {
                errs.push(required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        "kubernetes.io/dockercfg" => require(".dockercfg", errs),
        "kubernetes.io/dockerconfigjson" => require(".dockerconfigjson", errs),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            require("username", errs);
            require("password", errs);
        }
        "kubernetes.io/ssh-auth" => require("ssh-privatekey", errs),
        "kubernetes.io/tls" => {
            require("tls.crt", errs);
            require("tls.key", errs);
        }
        _ => {}
    }
}

/// An immutable ConfigMap or Secret keeps its data and the flag itself.
fn frozen(old: &Value, new: &Value, fields: &[&str], errs: &mut Vec<Cause>) {
    if old["immutable"] != true {
        return;
    }
    if new["immutable"] != true {
        errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for field in fields {
        if !semantically_equal(&old[*field], &new[*field]) {
            errs.push(forbidden(field, "field is immutable when `immutable` is set"));
        }
    }
}

pub(super) fn config_map_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    frozen(old, new, &["data", "binaryData"], errs);
}

pub(super) fn secret_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    immutable(&old["type"], &new["type"], "type", errs);
    frozen(old, new, &["data"], errs);
}
