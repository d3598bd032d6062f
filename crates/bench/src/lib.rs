//! Benchmark scenarios behind `capstan bench`. Each prints one JSON object per result line, with
//! figures whose names carry their unit (`writes_per_sec`, `p50_ms`, `rss_mb`, …).

mod api;
mod api_patch;
mod controllers;
mod report;
mod scheduler;
mod store;

pub use report::{Latencies, rss_mb};

#[derive(clap::Subcommand)]
pub enum Scenario {
    /// A `capstan server` child driven by kube-rs: memory idle and loaded, concurrent creates,
    /// full lists, and watch delivery latency to many watchers.
    Api(api::ApiBench),
    /// Deployments created by server-side apply, then changed by strategic merge patches and
    /// by server-side applies: throughput and latencies of each.
    ApiPatch(api_patch::ApiPatchBench),
    /// Deployments on simulated nodes through a `capstan server` child: time until every pod
    /// is Available, pods created per second, a rolling update of all, requests per reconcile.
    Controllers(controllers::ControllersBench),
    /// Node objects and pods through a `capstan server` child: pods bound per second,
    /// creation → bound latency, and the server's memory.
    Scheduler(scheduler::SchedulerBench),
    /// Acknowledged writes (creates of ~1 KiB values) against a store backend.
    Store(store::StoreBench),
}

pub async fn run(scenario: Scenario) -> anyhow::Result<()> {
    match scenario {
        Scenario::Api(args) => api::run(args).await,
        Scenario::ApiPatch(args) => api_patch::run(args).await,
        Scenario::Controllers(args) => controllers::run(args).await,
        Scenario::Scheduler(args) => scheduler::run(args).await,
        Scenario::Store(args) => store::run(args).await,
    }
}
