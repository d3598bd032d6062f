//! Test harness: starts real processes (etcd, capstan itself) on free loopback ports in temp
//! dirs, and stops them when the test drops them.

mod agent;
mod cluster;
mod etcd;

pub use agent::CapstanAgent;
pub use cluster::{CapstanServer, Kubectl, KubectlOutput, wait_until};
pub use etcd::EtcdServer;
