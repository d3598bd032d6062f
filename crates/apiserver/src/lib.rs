//! The Kubernetes API server: TLS serving with client-certificate and token authentication,
//! discovery, a watch cache over the store, and REST handlers driven by the resource registry.

pub mod admission;
pub mod auth;
mod bootstrap;
pub mod cache;
mod connect;
mod conversion;
pub mod discovery;
mod event_ttl;
mod handlers;
mod layout;
pub mod objects;
pub mod pki;
mod routes;
mod serve;
pub mod services;
pub mod status;
pub mod tokens;
mod typecheck;
mod validation;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use capstan_api::Resource;
use capstan_store::Store;

pub use pki::{Pki, ServingNames};
pub use serve::{InProcess, serve};

use crate::cache::{ResourceCache, WatchCache};
use crate::status::{ApiError, ApiResult};

/// How the API server is reached and what it serves.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The address clients (and the `default/kubernetes` Endpoints) are told to use.
    pub advertise_address: IpAddr,
    pub port: u16,
    /// Where Service ClusterIPs come from; its first address is the `kubernetes` Service's.
    pub service_range: services::ServiceRange,
    /// Events kept per resource for watchers resuming from a recent resourceVersion.
    pub watch_cache_size: usize,
    /// How long Events are kept after their last occurrence.
    pub event_ttl: std::time::Duration,
    pub admission: admission::AdmissionConfig,
    /// What `/metrics` serves besides the API server's own figures.
    pub metrics: MetricsSource,
}

/// Renders counters of in-process components (the controller manager) in the Prometheus text
/// format, for `/metrics`.
#[derive(Clone, Default)]
pub struct MetricsSource(pub Option<Arc<dyn Fn() -> String + Send + Sync>>);

impl std::fmt::Debug for MetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "MetricsSource(..)" } else { "MetricsSource(none)" })
    }
}

/// What every handler shares.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    pub config: Config,
    /// Signs and checks service-account tokens.
    pub tokens: tokens::TokenIssuer,
    /// Reaches kubelets for pods' logs, exec, attach and port-forward.
    kubelets: connect::KubeletClient,
}

impl ApiServer {
    /// Loads the watch cache and creates the bootstrap objects.
    pub async fn start(
        store: Arc<dyn Store>,
        config: Config,
    ) -> Result<Arc<Self>, capstan_store::StoreError> {
        let cache = WatchCache::start(store.clone(), config.watch_cache_size).await?;
        bootstrap::ensure(&*store, &config).await?;
        let tokens = tokens::TokenIssuer::load_or_create(&config.data_dir)
            .map_err(|e| capstan_store::StoreError::Internal(e.to_string()))?;
        let kubelets = connect::KubeletClient::load(&config.data_dir)
            .map_err(|e| capstan_store::StoreError::Internal(e.to_string()))?;
        let server = Arc::new(Self { store, cache, config, tokens, kubelets });
        tokio::spawn(event_ttl::run(server.clone(), server.config.event_ttl));
        Ok(server)
    }

    /// The watch cache of `resource`; an error for one served from the store (events).
    pub fn cache_for(&self, resource: &Resource) -> ApiResult<&Arc<ResourceCache>> {
        self.cache
            .resource(resource.storage_plural.unwrap_or(resource.plural))
            .ok_or_else(|| ApiError::internal(format!("no cache for {}", resource.plural)))
    }

    /// Whether `resource` is served from the watch cache (events are read from the store).
    pub fn is_cached(&self, resource: &Resource) -> bool {
        self.cache.resource(resource.storage_plural.unwrap_or(resource.plural)).is_some()
    }

    /// Every object of `resource` under `prefix`, in key order: from the watch cache (as
    /// current as the cache is; callers that need it current sync it first), or for a resource
    /// the cache does not keep, read from the store at its current revision.
    pub async fn objects_under(
        &self,
        resource: &Resource,
        prefix: &str,
    ) -> ApiResult<Vec<Arc<cache::CachedObject>>> {
        if let Ok(cache) = self.cache_for(resource) {
            return Ok(cache.range(prefix, None));
        }
        let mut objects = Vec::new();
        cache::list_all(&*self.store, prefix, |kv| {
            objects.extend(cache::CachedObject::decode(kv).map(Arc::new));
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(objects)
    }

    /// An object of a v1 resource from the cache; when absent, after the cache has caught up
    /// with the store (it may have been created a moment ago).
    pub async fn cached(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<Arc<cache::CachedObject>>> {
        let resource = capstan_api::registry::find(group, "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
        let cache = self.cache_for(resource)?;
        let key = resource.key(namespace, name);
        if let Some(found) = cache.get(&key) {
            return Ok(Some(found));
        }
        self.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
        Ok(cache.get(&key))
    }

    /// `https://ADDRESS:PORT` as clients should dial it.
    pub fn url(&self) -> String {
        match self.config.advertise_address {
            IpAddr::V6(ip) => format!("https://[{ip}]:{}", self.config.port),
            IpAddr::V4(ip) => format!("https://{ip}:{}", self.config.port),
        }
    }
}
