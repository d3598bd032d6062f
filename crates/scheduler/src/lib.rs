//! The scheduler: watches pods and nodes through the API, places each pending pod on a node
//! with Kubernetes' scheduling framework (queue, plugins, cache with assumed pods), and binds
//! it through `pods/binding`. Runs inside `capstan server` or alone, under leader election.

mod cache;
pub mod framework;
pub mod plugins;
mod queue;
mod report;
mod scheduler;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use capstan_leaderelection::{LeaderElector, Timings};

pub use cache::Cache;
pub use queue::SchedulingQueue;

/// The scheduler's name in pods' `spec.schedulerName`.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// The Lease schedulers elect their leader with (upstream's name and namespace).
pub const LEASE_NAMESPACE: &str = "kube-system";
pub const LEASE_NAME: &str = "kube-scheduler";

#[derive(Clone, Debug)]
pub struct Config {
    /// Pods naming another scheduler are left alone.
    pub scheduler_name: String,
    /// Upstream's percentageOfNodesToScore; `None` is the adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_owned(),
            percentage_of_nodes_to_score: None,
        }
    }
}

/// Schedules until the returned future is dropped (no leader election).
pub async fn run(client: kube::Client, config: Config) {
    let (inputs, received) = std::sync::mpsc::channel();
    let stopped = Arc::new(AtomicBool::new(false));
    // Dropping this future stops the scheduling thread too.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop = Stop(stopped.clone());
    let reporter = report::Reporter::new(client.clone(), &config.scheduler_name);
    let framework = plugins::default_framework(client.clone(), config.percentage_of_nodes_to_score);
    let runtime = tokio::runtime::Handle::current();
    let thread = {
        let reporter = reporter.clone();
        let inputs = inputs.clone();
        std::thread::Builder::new().name("scheduler".into()).spawn(move || {
            scheduler::Scheduler::new(framework, reporter, runtime, inputs).run(received, stopped)
        })
    };
    if let Err(error) = thread {
        tracing::error!("starting the scheduling thread: {error}");
        return;
    }
    tokio::join!(
        watch::nodes(client.clone(), inputs.clone()),
        watch::pods(client.clone(), config.scheduler_name.clone(), inputs.clone()),
        watch::pdbs(client, inputs),
    );
}

/// Schedules only while this process holds the Lease `kube-system/<lease>` (normally
/// [`LEASE_NAME`]), until `shutdown` resolves.
pub async fn run_with_leader_election(
    client: kube::Client,
    config: Config,
    lease: &str,
    identity: &str,
    shutdown: impl Future<Output = ()>,
) {
    let elector =
        LeaderElector::new(client.clone(), LEASE_NAMESPACE, lease, identity, Timings::default());
    elector.run(|| run(client.clone(), config.clone()), shutdown).await;
}

/// A unique identity for leader election: the host name and a random suffix.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{:08x}{:x}",
        if host.is_empty() { "capstan" } else { host },
        std::process::id(),
        nanos
    )
}
