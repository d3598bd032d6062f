//! What real containers need from outside the runtime: the ConfigMaps, Secrets and Services
//! their environment and volumes refer to (read through the API), service-account tokens
//! (TokenRequest, bound to the pod, refreshed before they expire), and the pod's volume
//! directories on the node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};

use crate::environment::{PodInputs, referenced_objects};
use crate::volumes::{self, PodDirs, TokenSpec};

/// A token is replaced once this share of its lifetime has passed (upstream: 80%).
const REFRESH_AT_PERCENT: u32 = 80;

/// A pod's volumes as host paths, and the objects its containers' environment reads.
#[derive(Clone, Debug, Default)]
pub struct PreparedPod {
    pub inputs: PodInputs,
    /// Volume name → (host path, whether containers only read it).
    pub volumes: HashMap<String, (PathBuf, bool)>,
}

struct IssuedToken {
    token: String,
    refresh_at: SystemTime,
}

/// The pod files of one node.
pub struct PodFiles {
    client: kube::Client,
    pub dirs: PodDirs,
    tokens: Mutex<HashMap<(String, TokenSpec), IssuedToken>>,
}

impl PodFiles {
    pub fn new(client: kube::Client, root: PathBuf) -> Self {
        Self { client, dirs: PodDirs { root }, tokens: Mutex::new(HashMap::new()) }
    }

    /// Reads what the pod refers to, issues its tokens and (re)writes its volumes. Returns the
    /// prepared pod and when its tokens need refreshing; an error says why the pod's
    /// containers cannot be created yet.
    pub async fn prepare(
        &self,
        pod: &Pod,
        pod_ip: Option<IpAddr>,
        host_ip: IpAddr,
    ) -> Result<(PreparedPod, Option<Duration>), String> {
        let inputs = self.inputs(pod, pod_ip, host_ip).await.map_err(|e| e.to_string())?;
        let refresh = self.ensure_tokens(pod).await?;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let token =
            |spec: &TokenSpec| tokens.get(&(uid.clone(), spec.clone())).map(|t| t.token.clone());
        let mut volumes = HashMap::new();
        for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if let Some(host) = &volume.host_path {
                let path = PathBuf::from(&host.path);
                host_path_setup(&path, host.type_.as_deref().unwrap_or_default())?;
                volumes.insert(volume.name.clone(), (path, false));
                continue;
            }
            let dir = self.dirs.volume(&uid, volumes::kind_of(volume), &volume.name);
            match volumes::volume_files(pod, volume, &inputs, &token)? {
                Some(files) => {
                    volumes::write_atomically(&dir, &files)
                        .map_err(|e| format!("writing volume {:?}: {e}", volume.name))?;
                    volumes.insert(volume.name.clone(), (dir, true));
                }
                None if volume.empty_dir.is_some() => {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("creating volume {:?}: {e}", volume.name))?;
                    volumes.insert(volume.name.clone(), (dir, false));
                }
                // Kinds this node cannot provide (persistent volumes, …) stay unmounted.
                None => {}
            }
        }
        Ok((PreparedPod { inputs, volumes }, refresh))
    }

    async fn inputs(
        &self,
        pod: &Pod,
        pod_ip: Option<IpAddr>,
        host_ip: IpAddr,
    ) -> Result<PodInputs, kube::Error> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let (maps, secrets) = referenced_objects(pod);
        let mut inputs = PodInputs { pod_ip, host_ip: Some(host_ip), ..PodInputs::default() };
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &namespace);
        for name in maps {
            if let Some(map) = config_maps.get_opt(&name).await? {
                inputs.config_maps.insert(name, map);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        for name in secrets {
            if let Some(secret) = secret_api.get_opt(&name).await? {
                inputs.secrets.insert(name, secret);
            }
        }
        let services: Api<Service> = Api::namespaced(self.client.clone(), &namespace);
        inputs.services = services.list(&ListParams::default()).await?.items;
        if namespace != "default" {
            let default: Api<Service> = Api::namespaced(self.client.clone(), "default");
            inputs.services.extend(default.get_opt("kubernetes").await?);
        }
        Ok(inputs)
    }

    /// Issues the pod's service-account tokens that are missing or due; returns how soon the
    /// next one is due.
    async fn ensure_tokens(&self, pod: &Pod) -> Result<Option<Duration>, String> {
        let specs = volumes::token_specs(pod);
        if specs.is_empty() {
            return Ok(None);
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let now = SystemTime::now();
        let mut next: Option<SystemTime> = None;
        for spec in specs {
            let key = (uid.clone(), spec.clone());
            let due = {
                let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                tokens.get(&key).map(|t| t.refresh_at)
            };
            let refresh_at = match due {
                Some(at) if at > now => at,
                _ => {
                    let issued = self.request_token(pod, &spec).await?;
                    let at = issued.refresh_at;
                    let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    tokens.insert(key, issued);
                    at
                }
            };
            next = Some(next.map_or(refresh_at, |n| n.min(refresh_at)));
        }
        Ok(next.map(|at| at.duration_since(now).unwrap_or(Duration::ZERO)))
    }

    async fn request_token(&self, pod: &Pod, spec: &TokenSpec) -> Result<IssuedToken, String> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: spec.audience.clone().into_iter().collect(),
                expiration_seconds: Some(spec.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &namespace);
        let issued = api
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("requesting a token for service account {account:?}: {e}"))?;
        let status = issued.status.ok_or("the TokenRequest came back without a token")?;
        let expires = SystemTime::from(status.expiration_timestamp.0);
        Ok(IssuedToken { token: status.token, refresh_at: refresh_at(SystemTime::now(), expires) })
    }

    /// Forgets pod `uid`: its tokens and its files on the node.
    pub fn remove_pod(&self, uid: &str) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).retain(|(u, _), _| u != uid);
        let dir = self.dirs.pod(uid);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(uid, "removing {}: {e}", dir.display());
        }
    }
}

/// When a token issued at `now` that expires at `expires` is replaced: after 80% of its life.
pub fn refresh_at(now: SystemTime, expires: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(now).unwrap_or(Duration::ZERO);
    now + lifetime * REFRESH_AT_PERCENT / 100
}

/// Creates a hostPath that its type says to create.
fn host_path_setup(path: &std::path::Path, kind: &str) -> Result<(), String> {
    let result = match kind {
        "DirectoryOrCreate" => std::fs::create_dir_all(path),
        "FileOrCreate" if !path.exists() => {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::File::create(path).map(|_| ())
        }
        "Directory" if !path.is_dir() => {
            return Err(format!("hostPath {} is not a directory", path.display()));
        }
        "File" if !path.is_file() => {
            return Err(format!("hostPath {} is not a file", path.display()));
        }
        _ => Ok(()),
    };
    result.map_err(|e| format!("creating hostPath {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_refreshed_after_80_percent_of_its_life_and_an_expired_one_at_once() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(refresh_at(now, now + hour), now + Duration::from_secs(2880));
        assert_eq!(refresh_at(now, now - hour), now);
    }

    #[test]
    fn host_paths_are_created_only_when_their_type_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("a/b");
        host_path_setup(&made, "DirectoryOrCreate").unwrap();
        assert!(made.is_dir());
        let file = dir.path().join("c/f");
        host_path_setup(&file, "FileOrCreate").unwrap();
        assert!(file.is_file());
        assert!(host_path_setup(&dir.path().join("missing"), "Directory").is_err());
        assert!(host_path_setup(&file, "Directory").is_err());
        host_path_setup(&dir.path().join("untyped"), "").unwrap();
        assert!(!dir.path().join("untyped").exists());
    }
}
