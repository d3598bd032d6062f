//! ServiceAccount admission: a pod runs as `default` unless it names an account, the account
//! must exist in its namespace, and unless automounting is turned off every container gets the
//! account's credentials: a projected volume with a bound token, the cluster CA and the
//! namespace, mounted where in-cluster clients look for them.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

pub async fn admit(server: &Arc<ApiServer>, pod: &mut Value) -> ApiResult<()> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
    let name = pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_owned();
    let Some(account) = server.cached("", "serviceaccounts", Some(&namespace), &name).await? else {
        return Err(ApiError::forbidden(format!(
            "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        )));
    };
    if !pod["spec"].is_object() {
        return Ok(());
    }
    pod["spec"]["serviceAccountName"] = json!(name);
    // The deprecated alias is kept in step, as upstream does.
    pod["spec"]["serviceAccount"] = json!(name);
    let mirror = !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null();
    let automount = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| account.value()["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if automount && !mirror {
        mount_token(pod);
    }
    Ok(())
}

/// Where in-cluster clients read the token, CA and namespace.
const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const VOLUME_PREFIX: &str = "kube-api-access-";
/// Upstream's bound-token lifetime for these volumes (an hour, plus slack for warnings).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// Mounts the token volume into every container without a mount of its own at the token path,
/// adding the volume when one needs it.
fn mount_token(pod: &mut Value) {
    let existing = pod["spec"]["volumes"].as_array().and_then(|volumes| {
        volumes
            .iter()
            .filter_map(|v| v["name"].as_str())
            .find(|name| name.starts_with(VOLUME_PREFIX))
            .map(str::to_owned)
    });
    let volume_name =
        existing.clone().unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", random_suffix()));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        // `get_mut`, not indexing: indexing a missing list would store it as null.
        let Some(containers) = pod["spec"].get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let mounted = container["volumeMounts"]
                .as_array()
                .is_some_and(|mounts| mounts.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH));
            if mounted || !container.is_object() {
                continue;
            }
            if !container["volumeMounts"].is_array() {
                container["volumeMounts"] = json!([]);
            }
            if let Some(mounts) = container["volumeMounts"].as_array_mut() {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if existing.is_none() && needed {
        if !pod["spec"]["volumes"].is_array() {
            pod["spec"]["volumes"] = json!([]);
        }
        if let Some(volumes) = pod["spec"]["volumes"].as_array_mut() {
            volumes.push(token_volume(&volume_name));
        }
    }
}

fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{
                    "path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}
                }]}}
            ],
            "defaultMode": 0o644
        }
    })
}

/// Five characters from the alphabet upstream uses for generated names.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"spec": {
            "initContainers": [{"name": "setup"}],
            "containers": [
                {"name": "app"},
                {"name": "own", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}
            ],
            "volumes": [{"name": "mine", "emptyDir": {}}]
        }})
    }

    #[test]
    fn containers_without_their_own_mount_get_the_token_volume() {
        let mut pod = pod();
        mount_token(&mut pod);
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        let name = volumes[1]["name"].as_str().unwrap();
        assert!(name.starts_with("kube-api-access-") && name.len() == 21, "{name}");
        assert_eq!(volumes[1]["projected"]["sources"][0]["serviceAccountToken"]["path"], "token");
        for list in ["initContainers", "containers"] {
            let first = &pod["spec"][list][0]["volumeMounts"];
            assert_eq!(
                first,
                &json!([{"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}])
            );
        }
        let own = pod["spec"]["containers"][1]["volumeMounts"].as_array().unwrap();
        assert_eq!(own.len(), 1, "a container's own mount at the path is left alone");
    }

    #[test]
    fn an_existing_token_volume_is_reused() {
        let mut pod = json!({"spec": {
            "containers": [{"name": "app"}],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}]
        }});
        mount_token(&mut pod);
        assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );
    }
}
