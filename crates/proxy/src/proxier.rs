//! The proxy's loop: reflectors of Services and EndpointSlices, and a sync that renders the
//! rules from them and applies them when they changed — at most once per `min_sync_period`,
//! and in full every `sync_period` (upstream's bounded-frequency runner). Everything under the
//! prefix is swept at start and removed at shutdown.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::iptables::{self, Iptables, IptablesError};
use crate::model::{SERVICE_NAME_LABEL, service_ports};
use crate::rules::{self, RuleConfig, Ruleset};

/// How soon a failed sync is tried again.
const RETRY_PERIOD: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub rules: RuleConfig,
    /// Changes are applied at most this often (upstream's `--iptables-min-sync-period`).
    pub min_sync_period: Duration,
    /// Everything is applied again this often, changed or not, so rules someone else deleted
    /// come back (upstream's `--iptables-sync-period`).
    pub sync_period: Duration,
}

impl ProxyConfig {
    /// Upstream's periods: 1 s between syncs at most, 30 s at least.
    pub fn new(rules: RuleConfig) -> Self {
        Self {
            rules,
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the chain prefix {0:?} must be 1 to 10 of A-Z and 0-9")]
    InvalidPrefix(String),
}

/// Keeps this host's rules in step with the API until `shutdown`, then removes them. iptables
/// failures (not root, no iptables) are logged and retried, never fatal.
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    iptables: Arc<dyn Iptables>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProxyError> {
    let prefix = config.rules.prefix.clone();
    if !rules::valid_prefix(&prefix) {
        return Err(ProxyError::InvalidPrefix(prefix));
    }
    tokio::pin!(shutdown);
    let changed = Arc::new(Notify::new());
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let watchers = [
        watch(Api::all(client.clone()), watcher::Config::default(), services_writer, &changed),
        watch(
            Api::all(client),
            watcher::Config::default().labels(SERVICE_NAME_LABEL),
            slices_writer,
            &changed,
        ),
    ];
    // Chains an earlier run left (it crashed, or was killed) go before the first sync.
    if let Err(e) = blocking(&iptables, {
        let prefix = prefix.clone();
        move |iptables| iptables::remove_all(iptables, &prefix)
    })
    .await
    {
        tracing::error!(prefix, "removing stale iptables chains: {e}");
    }
    let ready = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
    };
    let mut sync = SyncState::new(prefix.clone());
    tokio::select! {
        () = ready => {
            tracing::info!(prefix, "proxy started (iptables)");
            sync_loop(&config, &services, &slices, &changed, &iptables, &mut sync, &mut shutdown)
                .await;
        }
        () = &mut shutdown => {}
    }
    for watcher in watchers {
        watcher.abort();
    }
    match blocking(&iptables, move |iptables| iptables::remove_all(iptables, &prefix)).await {
        Ok(()) => tracing::info!("proxy stopped; its iptables rules are removed"),
        Err(e) => tracing::error!("removing the proxy's iptables rules: {e}"),
    }
    Ok(())
}

async fn sync_loop(
    config: &ProxyConfig,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    changed: &Notify,
    iptables: &Arc<dyn Iptables>,
    sync: &mut SyncState,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) {
    let mut next_full = Instant::now();
    let mut last_sync: Option<Instant> = None;
    loop {
        let full = tokio::select! {
            () = changed.notified() => false,
            () = tokio::time::sleep_until(next_full) => true,
            () = shutdown.as_mut() => return,
        };
        if let Some(last) = last_sync {
            tokio::select! {
                () = tokio::time::sleep_until(last + config.min_sync_period) => {}
                () = shutdown.as_mut() => return,
            }
        }
        last_sync = Some(Instant::now());
        let ports = service_ports(
            services.state().iter().map(AsRef::as_ref),
            slices.state().iter().map(AsRef::as_ref),
        );
        let ruleset = rules::render(&ports, &config.rules);
        if !full && !sync.needs(&ruleset) {
            continue;
        }
        let previous = sync.applied.clone();
        let result = blocking(iptables, {
            let (prefix, ruleset) = (sync.prefix.clone(), ruleset.clone());
            move |iptables| iptables::apply(iptables, &prefix, &ruleset, previous.as_ref())
        })
        .await;
        match result {
            Ok(()) => {
                tracing::debug!(ports = ports.len(), full, "iptables rules synced");
                sync.applied = Some(ruleset);
                next_full = Instant::now() + config.sync_period;
            }
            Err(e) => {
                tracing::error!(
                    "syncing iptables rules (the proxy needs root and iptables): {e}; retrying in {RETRY_PERIOD:?}"
                );
                next_full = Instant::now() + RETRY_PERIOD;
            }
        }
    }
}

/// What was last applied, to apply only changes.
struct SyncState {
    prefix: String,
    /// The ruleset the kernel holds, once one was applied; its chains that a new ruleset lacks
    /// are deleted.
    applied: Option<Ruleset>,
}

impl SyncState {
    fn new(prefix: String) -> Self {
        Self { prefix, applied: None }
    }

    fn needs(&self, ruleset: &Ruleset) -> bool {
        self.applied.as_ref() != Some(ruleset)
    }
}

/// Runs `call` on the blocking pool: iptables commands wait on processes and the xtables lock.
async fn blocking<T: Send + 'static>(
    iptables: &Arc<dyn Iptables>,
    call: impl FnOnce(&dyn Iptables) -> Result<T, IptablesError> + Send + 'static,
) -> Result<T, IptablesError> {
    let iptables = iptables.clone();
    match tokio::task::spawn_blocking(move || call(&*iptables)).await {
        Ok(result) => result,
        Err(e) => Err(IptablesError::Spawn {
            command: "iptables".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Mirrors `api` into `writer`, waking `changed` on every event; retries with backoff.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    changed: &Arc<Notify>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let changed = changed.clone();
    tokio::spawn(async move {
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        let events = reflector::reflector(writer, watcher(api, config).default_backoff());
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!("watching {kind}s: {e}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iptables::RecordingIptables;
    use crate::model::{Endpoint, Protocol, ServicePort};

    fn ports(endpoints: &[u16]) -> Vec<ServicePort> {
        vec![ServicePort {
            namespace: "shop".into(),
            service: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: "10.43.0.9".parse().unwrap(),
            port: 80,
            node_port: None,
            affinity_seconds: None,
            endpoints: endpoints
                .iter()
                .map(|port| Endpoint { ip: "10.42.0.1".parse().unwrap(), port: *port })
                .collect(),
        }]
    }

    #[test]
    fn a_sync_is_needed_only_when_the_rules_changed() {
        let config = RuleConfig { prefix: "T1".into(), cluster_cidr: None };
        let iptables = RecordingIptables::default();
        let mut sync = SyncState::new("T1".into());
        let first = rules::render(&ports(&[80]), &config);
        assert!(sync.needs(&first), "nothing was applied yet");
        iptables::apply(&iptables, "T1", &first, None).unwrap();
        sync.applied = Some(first);
        assert!(!sync.needs(&rules::render(&ports(&[80]), &config)));
        assert!(sync.needs(&rules::render(&ports(&[80, 81]), &config)));
        assert!(sync.needs(&rules::render(&ports(&[]), &config)));
    }
}
