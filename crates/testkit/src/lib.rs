//! Test harness: starts real processes (etcd, capstan itself) on free loopback ports in temp
//! dirs, and stops them when the test drops them.

mod agent;
mod cluster;
mod docker;
mod etcd;

pub use agent::CapstanAgent;
pub use cluster::{CapstanServer, Kubectl, KubectlOutput, wait_until};
pub use docker::{
    BUSYBOX_IMAGE, DockerNodeCleanup, KUBECTL_IMAGE, PAUSE_IMAGE, ensure_test_images,
};
pub use etcd::EtcdServer;
