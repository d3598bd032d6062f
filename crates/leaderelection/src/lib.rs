//! Leader election through a coordination.k8s.io/v1 Lease, with client-go's semantics: one
//! holder at a time, renewed every retry period, taken over once it has not been renewed for a
//! lease duration, and given up when it cannot be renewed within the renew deadline.

mod decision;
mod elector;

pub use decision::{Decision, decide};
pub use elector::{Error, LeaderElector};

use std::time::Duration;

/// How long a lease lasts and how often it is renewed (client-go's names and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// How long others wait after the last observed renewal before taking the lease over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}
