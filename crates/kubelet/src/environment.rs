//! What a container's environment holds, as upstream's kubelet builds it: the Service variables
//! (`KUBERNETES_SERVICE_HOST`, docker-link style `<NAME>_PORT_…`), `envFrom`, then `env` with
//! `valueFrom` (downward API fields, ConfigMap and Secret keys) and `$(VAR)` expansion.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service, ServicePort};

/// What a pod's containers may refer to, read from the API before they are created.
#[derive(Clone, Debug, Default)]
pub struct PodInputs {
    /// ConfigMaps of the pod's namespace by name; a missing one is absent.
    pub config_maps: HashMap<String, ConfigMap>,
    pub secrets: HashMap<String, Secret>,
    /// The Services of the pod's namespace and `default/kubernetes`.
    pub services: Vec<Service>,
    pub pod_ip: Option<IpAddr>,
    pub host_ip: Option<IpAddr>,
}

/// The namespace and name of the Service every pod learns about.
const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// The value a downward API `fieldPath` names, or why it names none.
pub fn field_value(pod: &Pod, path: &str, inputs: &PodInputs) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let ip = |ip: Option<IpAddr>| ip.map(|i| i.to_string()).unwrap_or_default();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    let map_text = |map: &Option<BTreeMap<String, String>>| {
        map.iter().flatten().map(|(k, v)| format!("{k}={v:?}\n")).collect::<String>()
    };
    if let Some(key) = subscript(path, "metadata.labels") {
        return Ok(from_map(&meta.labels, key));
    }
    if let Some(key) = subscript(path, "metadata.annotations") {
        return Ok(from_map(&meta.annotations, key));
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => map_text(&meta.labels),
        "metadata.annotations" => map_text(&meta.annotations),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => {
            spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default()
        }
        "status.podIP" | "status.podIPs" => ip(inputs.pod_ip),
        "status.hostIP" | "status.hostIPs" => ip(inputs.host_ip),
        other => return Err(format!("unsupported fieldPath {other:?}")),
    })
}

/// `labels['key']` → `key`.
fn subscript<'a>(path: &'a str, field: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(field)?.strip_prefix("['")?;
    rest.strip_suffix("']")
}

fn config_map_value(map: &ConfigMap, key: &str) -> Option<String> {
    if let Some(value) = map.data.as_ref().and_then(|d| d.get(key)) {
        return Some(value.clone());
    }
    let binary = map.binary_data.as_ref().and_then(|d| d.get(key))?;
    Some(String::from_utf8_lossy(&binary.0).into_owned())
}

fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(value) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(String::from_utf8_lossy(&value.0).into_owned());
    }
    secret.string_data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// Whether `name` may be an environment variable name (upstream's C_IDENTIFIER-or-relaxed rule:
/// printable ASCII other than `=`, not starting with a digit).
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

/// The variables a pod sees for its namespace's Services (when `enableServiceLinks`) and always
/// for `default/kubernetes`; a Service of the pod's namespace named `kubernetes` wins.
pub fn service_env(pod: &Pod, services: &[Service]) -> Vec<(String, String)> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for service in services {
        let ns = service.metadata.namespace.as_deref().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        if ns == namespace && links {
            chosen.insert(name, service);
        } else if (ns, name.as_str()) == MASTER_SERVICE {
            chosen.entry(name).or_insert(service);
        }
    }
    let mut env = Vec::new();
    for (name, service) in chosen {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let prefix = name.to_uppercase().replace('-', "_");
        let ports = spec.ports.as_deref().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
        env.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                let port_name = port_name.to_uppercase().replace('-', "_");
                env.push((format!("{prefix}_SERVICE_PORT_{port_name}"), port.port.to_string()));
            }
        }
        let protocol = |p: &ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        let url = |p: &ServicePort| format!("{}://{ip}:{}", protocol(p).to_lowercase(), p.port);
        env.push((format!("{prefix}_PORT"), url(first)));
        for port in ports {
            let proto = protocol(port);
            let base = format!("{prefix}_PORT_{}_{}", port.port, proto.to_uppercase());
            env.push((base.clone(), url(port)));
            env.push((format!("{base}_PROTO"), proto.to_lowercase()));
            env.push((format!("{base}_PORT"), port.port.to_string()));
            env.push((format!("{base}_ADDR"), ip.to_owned()));
        }
    }
    env
}

/// The container's environment in upstream's order (Service variables, `envFrom`, `env`; later
/// ones win), or why it cannot be built (a missing ConfigMap, Secret or key that is not
/// optional: upstream's CreateContainerConfigError).
pub fn container_env(
    pod: &Pod,
    container: &Container,
    inputs: &PodInputs,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| match env
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    };
    for (name, value) in service_env(pod, &inputs.services) {
        set(&mut env, name, value);
    }
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        let pairs: Vec<(String, String)> = if let Some(r) = &source.config_map_ref {
            match inputs.config_maps.get(&r.name) {
                Some(map) => {
                    let mut pairs: Vec<(String, String)> =
                        map.data.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
                    pairs.extend(
                        map.binary_data
                            .iter()
                            .flatten()
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned())),
                    );
                    pairs
                }
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        } else if let Some(r) = &source.secret_ref {
            match inputs.secrets.get(&r.name) {
                Some(secret) => secret
                    .data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                    .collect(),
                None if r.optional == Some(true) => Vec::new(),
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        } else {
            Vec::new()
        };
        for (key, value) in pairs {
            let name = format!("{prefix}{key}");
            // Upstream skips keys that are no variable names (and records an event).
            if valid_env_name(&name) {
                set(&mut env, name, value);
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &env),
            (None, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    field_value(pod, &field.field_path, inputs)?
                } else if let Some(key) = &from.config_map_key_ref {
                    let optional = key.optional == Some(true);
                    match inputs.config_maps.get(&key.name) {
                        Some(map) => match config_map_value(map, &key.key) {
                            Some(value) => value,
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {}",
                                    key.key, key.name
                                ));
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("configmap \"{}\" not found", key.name)),
                    }
                } else if let Some(key) = &from.secret_key_ref {
                    let optional = key.optional == Some(true);
                    match inputs.secrets.get(&key.name) {
                        Some(secret) => match secret_value(secret, &key.key) {
                            Some(value) => value,
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {}",
                                    key.key, key.name
                                ));
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("secret \"{}\" not found", key.name)),
                    }
                } else {
                    // resourceFieldRef: no resource accounting on this node yet.
                    String::new()
                }
            }
            (None, None) => String::new(),
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

/// Expands `$(NAME)` from `env` (an unknown name stays as written; `$$` is a literal `$`), as
/// upstream expands env values, command and args.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Names of the ConfigMaps and Secrets a pod's containers and volumes refer to.
pub fn referenced_objects(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let mut maps = Vec::new();
    let mut secrets = Vec::new();
    let Some(spec) = &pod.spec else { return (maps, secrets) };
    let containers =
        spec.init_containers.iter().flatten().chain(&spec.containers).collect::<Vec<_>>();
    for container in containers {
        for source in container.env_from.iter().flatten() {
            maps.extend(source.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(source.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in container.env.iter().flatten() {
            if let Some(from) = &var.value_from {
                maps.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
        }
    }
    for volume in spec.volumes.iter().flatten() {
        maps.extend(volume.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(volume.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in volume.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            maps.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    maps.sort();
    maps.dedup();
    secrets.sort();
    secrets.dedup();
    (maps, secrets)
}

#[cfg(test)]
mod tests;
