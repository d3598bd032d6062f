//! Pod volumes materialised under the agent's data dir and bind-mounted into containers:
//! emptyDir, hostPath, and the file-projecting kinds (configMap, secret, downwardAPI, projected
//! with service-account tokens), written atomically as upstream's AtomicWriter does (a fresh
//! timestamped dir swapped in through the `..data` symlink).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};

use crate::environment::{PodInputs, field_value};

/// Upstream's default file mode of projected files (0644).
const DEFAULT_MODE: i32 = 0o644;
/// Where the files of a projected volume live, swapped in atomically.
const DATA_LINK: &str = "..data";
const DATA_LINK_NEW: &str = "..data_tmp";
/// Upstream reads at most this much of a termination message.
const MAX_TERMINATION_MESSAGE: usize = 4096;

/// Files a volume shows, by relative path.
pub type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// A service-account token a projected volume asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenSpec {
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

/// Where a pod's volumes and container files live on the node.
#[derive(Clone, Debug)]
pub struct PodDirs {
    /// `<data dir>/pods`.
    pub root: PathBuf,
}

impl PodDirs {
    pub fn pod(&self, uid: &str) -> PathBuf {
        self.root.join(safe_name(uid))
    }

    /// upstream's `pods/<uid>/volumes/kubernetes.io~<kind>/<name>`.
    pub fn volume(&self, uid: &str, kind: &str, name: &str) -> PathBuf {
        self.pod(uid).join("volumes").join(format!("kubernetes.io~{kind}")).join(safe_name(name))
    }

    /// The host file behind a container attempt's terminationMessagePath.
    pub fn termination_log(&self, uid: &str, container: &str, attempt: u32) -> PathBuf {
        self.pod(uid).join("containers").join(safe_name(container)).join(attempt.to_string())
    }

    /// The termination message a container attempt left, if any.
    pub fn termination_message(&self, uid: &str, container: &str, attempt: u32) -> String {
        let Ok(bytes) = std::fs::read(self.termination_log(uid, container, attempt)) else {
            return String::new();
        };
        let end = bytes.len().min(MAX_TERMINATION_MESSAGE);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
}

/// A name as one path component (API names never hold `/`, but nothing read from a client may
/// climb out of the data dir).
fn safe_name(name: &str) -> String {
    let cleaned = name.replace(['/', '\0'], "_");
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." { "_".into() } else { cleaned }
}

/// Whether `path` is relative and stays below its volume.
fn valid_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with("..")
        && Path::new(path).components().all(|c| matches!(c, Component::Normal(_)))
}

fn mode_of(mode: Option<i32>, default: Option<i32>) -> u32 {
    u32::try_from(mode.or(default).unwrap_or(DEFAULT_MODE) & 0o777).unwrap_or(0o644)
}

/// `data` as files: every key, or the listed items (a missing item key is an error unless the
/// source is optional).
fn project(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    what: &str,
    optional: bool,
    files: &mut Files,
) -> Result<(), String> {
    match items {
        None => {
            for (key, value) in data {
                files.insert(key.clone(), (value.clone(), mode_of(None, default_mode)));
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(value) => {
                        files.insert(
                            item.path.clone(),
                            (value.clone(), mode_of(item.mode, default_mode)),
                        );
                    }
                    None if optional => {}
                    None => return Err(format!("{what} has no key {:?}", item.key)),
                }
            }
        }
    }
    Ok(())
}

fn config_map_data(inputs: &PodInputs, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let map = inputs.config_maps.get(name)?;
    let mut data: BTreeMap<String, Vec<u8>> =
        map.data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
    data.extend(map.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())));
    Some(data)
}

fn secret_data(inputs: &PodInputs, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
    let secret = inputs.secrets.get(name)?;
    Some(secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect())
}

/// The service-account tokens a pod's projected volumes ask for.
pub fn token_specs(pod: &Pod) -> Vec<TokenSpec> {
    let mut specs: Vec<TokenSpec> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .flat_map(|v| v.projected.iter().flat_map(|p| p.sources.iter().flatten()))
        .filter_map(|s| s.service_account_token.as_ref())
        .map(|t| TokenSpec {
            audience: t.audience.clone().filter(|a| !a.is_empty()),
            expiration_seconds: t.expiration_seconds.unwrap_or(3600),
        })
        .collect();
    specs.sort();
    specs.dedup();
    specs
}

/// The files a configMap, secret, downwardAPI or projected volume shows; `None` for kinds that
/// are a directory (emptyDir, hostPath). `token` yields the token of a TokenSpec.
pub fn volume_files(
    pod: &Pod,
    volume: &Volume,
    inputs: &PodInputs,
    token: &dyn Fn(&TokenSpec) -> Option<String>,
) -> Result<Option<Files>, String> {
    let mut files = Files::new();
    if let Some(source) = &volume.config_map {
        let optional = source.optional == Some(true);
        match config_map_data(inputs, &source.name) {
            Some(data) => project(
                &data,
                source.items.as_ref(),
                source.default_mode,
                &format!("configmap {:?}", source.name),
                optional,
                &mut files,
            )?,
            None if optional => {}
            None => return Err(format!("configmap \"{}\" not found", source.name)),
        }
    } else if let Some(source) = &volume.secret {
        let name = source.secret_name.clone().unwrap_or_default();
        let optional = source.optional == Some(true);
        match secret_data(inputs, &name) {
            Some(data) => project(
                &data,
                source.items.as_ref(),
                source.default_mode,
                &format!("secret {name:?}"),
                optional,
                &mut files,
            )?,
            None if optional => {}
            None => return Err(format!("secret \"{name}\" not found")),
        }
    } else if let Some(source) = &volume.downward_api {
        for item in source.items.iter().flatten() {
            if let Some(field) = &item.field_ref {
                let value = field_value(pod, &field.field_path, inputs)?;
                files.insert(
                    item.path.clone(),
                    (value.into_bytes(), mode_of(item.mode, source.default_mode)),
                );
            }
        }
    } else if let Some(projected) = &volume.projected {
        let default_mode = projected.default_mode;
        for source in projected.sources.iter().flatten() {
            if let Some(t) = &source.service_account_token {
                let spec = TokenSpec {
                    audience: t.audience.clone().filter(|a| !a.is_empty()),
                    expiration_seconds: t.expiration_seconds.unwrap_or(3600),
                };
                let value = token(&spec).ok_or("the service account token is not issued yet")?;
                files.insert(t.path.clone(), (value.into_bytes(), mode_of(None, default_mode)));
            }
            if let Some(c) = &source.config_map {
                let optional = c.optional == Some(true);
                match config_map_data(inputs, &c.name) {
                    Some(data) => project(
                        &data,
                        c.items.as_ref(),
                        default_mode,
                        &format!("configmap {:?}", c.name),
                        optional,
                        &mut files,
                    )?,
                    None if optional => {}
                    None => return Err(format!("configmap \"{}\" not found", c.name)),
                }
            }
            if let Some(s) = &source.secret {
                let optional = s.optional == Some(true);
                match secret_data(inputs, &s.name) {
                    Some(data) => project(
                        &data,
                        s.items.as_ref(),
                        default_mode,
                        &format!("secret {:?}", s.name),
                        optional,
                        &mut files,
                    )?,
                    None if optional => {}
                    None => return Err(format!("secret \"{}\" not found", s.name)),
                }
            }
            if let Some(d) = &source.downward_api {
                for item in d.items.iter().flatten() {
                    if let Some(field) = &item.field_ref {
                        let value = field_value(pod, &field.field_path, inputs)?;
                        files.insert(
                            item.path.clone(),
                            (value.into_bytes(), mode_of(item.mode, default_mode)),
                        );
                    }
                }
            }
        }
    } else {
        return Ok(None);
    }
    if let Some(bad) = files.keys().find(|p| !valid_relative(p)) {
        return Err(format!("volume {:?}: invalid path {bad:?}", volume.name));
    }
    Ok(Some(files))
}

/// The upstream plugin name a volume's directory is filed under.
pub fn kind_of(volume: &Volume) -> &'static str {
    if volume.config_map.is_some() {
        "configmap"
    } else if volume.secret.is_some() {
        "secret"
    } else if volume.downward_api.is_some() {
        "downward-api"
    } else if volume.projected.is_some() {
        "projected"
    } else {
        "empty-dir"
    }
}

/// Makes `dir` show exactly `files`: unchanged files are left alone; otherwise the new set is
/// written to a fresh dir and swapped in through the `..data` symlink in one rename, so a reader
/// sees the old set or the new one, never a mix.
pub fn write_atomically(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let current = dir.join(DATA_LINK);
    if current.exists() && same_files(&current, files) {
        return Ok(());
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let fresh_name = format!("..{stamp}");
    let fresh = dir.join(&fresh_name);
    std::fs::create_dir_all(&fresh)?;
    for (path, (content, mode)) in files {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::File::create(&target)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    let old = std::fs::read_link(&current).ok();
    let staging = dir.join(DATA_LINK_NEW);
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(&fresh_name, &staging)?;
    std::fs::rename(&staging, &current)?;
    // The visible names point through `..data`; names no longer projected go.
    let tops: std::collections::BTreeSet<String> =
        files.keys().filter_map(|p| p.split('/').next().map(str::to_owned)).collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_LINK).join(top), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old.filter(|o| *o != Path::new(&fresh_name)) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn same_files(data: &Path, files: &Files) -> bool {
    let count = walk_count(data);
    count == files.len()
        && files.iter().all(|(path, (content, _))| {
            std::fs::read(data.join(path)).is_ok_and(|found| found == *content)
        })
}

fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { walk_count(&e.path()) } else { 1 }).sum()
}

#[cfg(test)]
mod tests;
