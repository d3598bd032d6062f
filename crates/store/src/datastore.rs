//! Choosing a backend from `--datastore-endpoint`: `sqlite://PATH` or etcd's `http://HOST:PORT`
//! list, as k3s spells it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::{EtcdOptions, EtcdStore, Result, SqliteOptions, SqliteStore, Store};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datastore {
    Sqlite(PathBuf),
    Etcd(Vec<String>),
}

impl FromStr for Datastore {
    type Err = String;

    fn from_str(endpoint: &str) -> Result<Self, String> {
        if let Some(path) = endpoint.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs a file path, e.g. sqlite:///var/lib/capstan/db/state.db"
                        .into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let endpoints: Vec<String> = endpoint.split(',').map(|e| e.trim().to_owned()).collect();
        for e in &endpoints {
            let host = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://"));
            if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                return Err(format!(
                    "datastore endpoint {e:?} is neither sqlite://PATH nor http(s)://HOST:PORT"
                ));
            }
        }
        Ok(Self::Etcd(endpoints))
    }
}

impl Datastore {
    /// Opens the store; for SQLite, creates the database's directory first.
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(match self {
            Self::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| crate::StoreError::Corrupt {
                        path: dir.display().to_string(),
                        reason: format!("cannot create the directory: {e}"),
                    })?;
                }
                Arc::new(SqliteStore::open(SqliteOptions { path: path.clone() })?)
            }
            Self::Etcd(endpoints) => {
                Arc::new(EtcdStore::connect(EtcdOptions::new(endpoints.clone())).await?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_k3s_spells_them() {
        assert_eq!("sqlite:///d/state.db".parse(), Ok(Datastore::Sqlite("/d/state.db".into())));
        assert_eq!(
            "http://10.0.0.1:2379,http://10.0.0.2:2379".parse(),
            Ok(Datastore::Etcd(vec!["http://10.0.0.1:2379".into(), "http://10.0.0.2:2379".into()]))
        );
        assert!("sqlite://".parse::<Datastore>().unwrap_err().contains("file path"));
        assert!("postgres://x".parse::<Datastore>().unwrap_err().contains("neither"));
        assert!("http://".parse::<Datastore>().is_err());
    }
}
