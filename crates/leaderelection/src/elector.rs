//! The elector: acquires and renews a Lease through the API, and runs the caller's work only
//! while it holds the Lease.

use std::future::Future;
use std::pin::pin;
use std::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::{Decision, Timings, decide};

/// What an acquire or renew attempt can fail with; the elector logs it and retries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lease {name}: {source}")]
    Api { name: String, source: kube::Error },
}

/// One candidate for the leadership a Lease stands for.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: Timings,
}

/// The Lease record this candidate saw last and when it first saw it; expiry counts from there.
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Timestamp,
}

impl LeaderElector {
    /// A candidate named `identity` (unique per process, e.g. host name plus a random suffix)
    /// for the Lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: Timings,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Runs `work()` whenever this candidate leads, until `shutdown` resolves or the work ends.
    /// Losing the Lease drops the running work at once; it starts afresh when the Lease is won
    /// again. On shutdown (or when the work ends) a held Lease is released, so another
    /// candidate takes over without waiting for it to expire.
    pub async fn run<W, F>(&self, mut work: W, shutdown: impl Future<Output = ()>)
    where
        W: FnMut() -> F,
        F: Future<Output = ()>,
    {
        let mut shutdown = pin!(shutdown);
        let mut observed = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                () = self.acquire(&mut observed) => {}
            }
            tracing::info!(lease = self.name, identity = self.identity, "became leader");
            let mut last_renewed = Instant::now();
            let mut work = pin!(work());
            let ended = loop {
                tokio::select! {
                    _ = &mut shutdown => break true,
                    () = &mut work => break true,
                    renewed = self.renew(&mut observed, last_renewed) => match renewed {
                        Some(at) => last_renewed = at,
                        None => break false,
                    },
                }
            };
            if ended {
                self.release().await;
                return;
            }
            tracing::warn!(lease = self.name, identity = self.identity, "lost leadership");
        }
    }

    /// Tries every retry period until this candidate holds the Lease.
    async fn acquire(&self, observed: &mut Option<Observed>) {
        loop {
            match self.try_acquire_or_renew(observed).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!("leader election: {error}"),
            }
            tokio::time::sleep(self.timings.retry_period).await;
        }
    }

    /// Waits a retry period, then renews; returns when the renewal succeeded, or `None` once
    /// the renew deadline since `last_renewed` has passed or another candidate holds the Lease.
    async fn renew(
        &self,
        observed: &mut Option<Observed>,
        last_renewed: Instant,
    ) -> Option<Instant> {
        loop {
            tokio::time::sleep(self.timings.retry_period).await;
            let left = self.timings.renew_deadline.checked_sub(last_renewed.elapsed())?;
            match tokio::time::timeout(left, self.try_acquire_or_renew(observed)).await {
                Ok(Ok(true)) => return Some(Instant::now()),
                Ok(Ok(false)) => return None,
                Ok(Err(error)) => tracing::warn!("leader election: {error}"),
                Err(_) => return None,
            }
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`: read the Lease, decide, write it with the
    /// read resourceVersion (so of two candidates racing, one gets a 409 and loses).
    async fn try_acquire_or_renew(&self, observed: &mut Option<Observed>) -> Result<bool, Error> {
        let api_error = |source| Error::Api { name: self.name.clone(), source };
        let current = self.api.get_opt(&self.name).await.map_err(api_error)?;
        let now = Timestamp::now();
        let spec = current.as_ref().and_then(|lease| lease.spec.clone()).unwrap_or_default();
        let unchanged = observed
            .as_ref()
            .is_some_and(|o| o.holder == spec.holder_identity && o.renew_time == spec.renew_time);
        if !unchanged {
            *observed = Some(Observed {
                holder: spec.holder_identity.clone(),
                renew_time: spec.renew_time.clone(),
                at: now,
            });
        }
        let observed_at = observed.as_ref().map_or(now, |o| o.at);
        let decision = decide(current.as_ref().map(|_| &spec), &self.identity, now, observed_at);
        let mut renewed = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                self.timings.lease_duration.as_secs().try_into().unwrap_or(i32::MAX),
            ),
            renew_time: Some(MicroTime(now)),
            ..spec
        };
        let written = match decision {
            Decision::Wait => return Ok(false),
            Decision::Create => {
                renewed.acquire_time = Some(MicroTime(now));
                renewed.lease_transitions = Some(0);
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                    spec: Some(renewed),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Decision::Acquire | Decision::Renew => {
                if decision == Decision::Acquire {
                    renewed.acquire_time = Some(MicroTime(now));
                    renewed.lease_transitions =
                        Some(renewed.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                let mut lease = current.unwrap_or_default();
                lease.spec = Some(renewed);
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(lease) => {
                let spec = lease.spec.unwrap_or_default();
                *observed = Some(Observed {
                    holder: spec.holder_identity,
                    renew_time: spec.renew_time,
                    at: now,
                });
                Ok(true)
            }
            // Another candidate wrote first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(api_error(source)),
        }
    }

    /// Gives the Lease up (client-go's ReleaseOnCancel): no holder, a one-second duration.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(lease = self.name, identity = self.identity, "released lease"),
            Err(error) => tracing::warn!(lease = self.name, "releasing the lease: {error}"),
        }
    }
}
