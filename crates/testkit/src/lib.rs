//! Test harness: starts real processes (etcd, later capstan itself) on free loopback ports in
//! temp dirs, and stops them when the test drops them.

mod etcd;

pub use etcd::EtcdServer;
