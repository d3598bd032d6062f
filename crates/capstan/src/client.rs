//! API clients named after the upstream component they stand for: the User-Agent's first
//! segment is the field manager the API server records for their writes (so `managedFields`
//! says `kube-controller-manager`, `kube-scheduler` or `kubelet`, as on any cluster).

use anyhow::Context as _;
use http::header::{HeaderValue, USER_AGENT};

pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub const SCHEDULER: &str = "kube-scheduler";
pub const KUBELET: &str = "kubelet";

/// A client for `config` that introduces itself as `component`.
pub fn named(mut config: kube::Config, component: &str) -> anyhow::Result<kube::Client> {
    let agent = format!(
        "{component}/v1.33.0 (linux/{}) capstan/{}",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    );
    config.headers.push((USER_AGENT, HeaderValue::from_str(&agent)?));
    kube::Client::try_from(config).context("building the API client")
}
