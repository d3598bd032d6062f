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

/// This host's address on its default route: where pods and other hosts reach it.
pub fn host_ip() -> std::net::Ipv4Addr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket.connect("203.0.113.1:53").expect("this host needs a default route");
    match socket.local_addr().expect("local address").ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() => ip,
        other => panic!("no usable host address: {other}"),
    }
}
