//! API clients named after the upstream component they stand for: the User-Agent's first
//! segment is the field manager the API server records for their writes (so `managedFields`
//! says `kube-controller-manager`, `kube-scheduler` or `kubelet`, as on any cluster).

use std::sync::Arc;

use anyhow::Context as _;
use capstan_apiserver::auth::Identity;
use capstan_apiserver::{ApiServer, InProcess, Pki};
use http::header::{HeaderValue, USER_AGENT};

pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub const SCHEDULER: &str = "kube-scheduler";
pub const KUBELET: &str = "kubelet";

fn user_agent(component: &str) -> anyhow::Result<HeaderValue> {
    let agent = format!(
        "{component}/v1.33.0 (linux/{}) capstan/{}",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    );
    Ok(HeaderValue::from_str(&agent)?)
}

/// A client for `config` that introduces itself as `component`.
pub fn named(mut config: kube::Config, component: &str) -> anyhow::Result<kube::Client> {
    config.headers.push((USER_AGENT, user_agent(component)?));
    kube::Client::try_from(config).context("building the API client")
}

/// A client of the API server running in this process that introduces itself as `component`
/// and is authenticated as upstream's certificate for it names it (`system:<component>`).
pub fn in_process(
    server: &Arc<ApiServer>,
    pki: &Pki,
    component: &str,
) -> anyhow::Result<kube::Client> {
    let identity = Identity {
        user: format!("system:{component}"),
        groups: vec!["system:authenticated".into()],
    };
    let service = InProcess::new(server.clone(), pki, identity, user_agent(component)?);
    Ok(kube::Client::new(service, "default"))
}
