//! The Service data plane, as kube-proxy's iptables mode: Services and EndpointSlices in, the
//! kernel's NAT rules out.
//!
//! [`model`] reduces the API objects to what the rules need, [`rules`] renders them as
//! `iptables-restore` input (pure), [`iptables`] applies that text and removes it again, and
//! [`proxier`] watches the API and keeps the kernel in step.

pub mod iptables;
pub mod model;
pub mod proxier;
pub mod rules;

pub use iptables::{ChainsGuard, Iptables, IptablesError, SystemIptables};
pub use proxier::{ProxyConfig, run};
pub use rules::RuleConfig;
