//! The `capstan` binary: one clap subcommand per component or tool.

mod agent;
mod client;
mod controller_flags;
mod controller_manager;
mod scheduler;
mod server;
mod snapshot;

use clap::{Parser, Subcommand};

/// glibc's malloc took about a third of the API server's time under write load; mimalloc, with
/// thread-local free lists, is faster at the many small allocations of JSON handling.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc (v3) keeps freed pages committed for a second before it returns them to the OS;
/// the server frees buffers at a high rate while its caches grow, and those pages then count
/// in its RSS (tens of megabytes at 50,000 pods). Returned at once, they don't.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn purge_freed_pages_at_once() {
    // SAFETY: sets a plain integer option, which mimalloc reads at each purge; no memory is
    // handed across.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

/// `mi_option_purge_delay` in mimalloc's option enum; the sys crate names no constant for it.
#[cfg(feature = "mimalloc")]
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[derive(Parser)]
#[command(name = "capstan", version, about = "A Kubernetes-compatible cluster in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane.
    Server(server::ServerArgs),
    /// Run the controllers alone against an API server (under leader election).
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Run the scheduler alone, against an API server.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the node agent (the kubelet) against a server.
    Agent(agent::AgentArgs),
    /// Save or restore a snapshot of the embedded store.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Run a benchmark scenario; prints one JSON object per result.
    #[command(subcommand)]
    Bench(capstan_bench::Scenario),
}

fn main() -> anyhow::Result<()> {
    #[cfg(feature = "mimalloc")]
    purge_freed_pages_at_once();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::ControllerManager(args) => controller_manager::run(args).await,
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Snapshot(command) => snapshot::run(command),
            Command::Bench(scenario) => capstan_bench::run(scenario).await,
        }
    });
    // Connections and watches still open must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads a plain integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        // mimalloc v3's default, unless the environment sets it: a shifted enum shows here.
        let expected = std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse().ok());
        assert_eq!(delay, expected.unwrap_or(1000));
    }
}
