//! The pure part of leader election: given the Lease as read, whose it is and when its current
//! record was first observed, decide whether to acquire it, renew it, or wait.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// What a candidate does with the Lease it just read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists yet: create it, holding it.
    Create,
    /// The Lease is free or expired: take it over (a new acquireTime, one more transition).
    Acquire,
    /// We hold it: renew it (renewTime only).
    Renew,
    /// Someone else holds it and it has not expired: try again after the retry period.
    Wait,
}

/// Decides like client-go's `tryAcquireOrRenew`. Expiry is judged from `observed_at`, the local
/// time this candidate first saw the Lease's current record, not from the record's renewTime,
/// so clock skew between holders cannot make a live lease look expired.
pub fn decide(
    lease: Option<&LeaseSpec>,
    identity: &str,
    now: Timestamp,
    observed_at: Timestamp,
) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let holder = lease.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration = SignedDuration::from_secs(lease.lease_duration_seconds.unwrap_or(0).into());
    if observed_at.saturating_add(duration).is_ok_and(|expiry| expiry <= now) {
        Decision::Acquire
    } else {
        Decision::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }
    }

    #[test]
    fn decisions_follow_client_go() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let at = |s: i64| t0.checked_add(SignedDuration::from_secs(s)).unwrap();
        let cases: &[(&str, Option<LeaseSpec>, i64, Decision)] = &[
            ("no lease yet", None, 0, Decision::Create),
            ("released lease", Some(lease(Some(""), 15)), 0, Decision::Acquire),
            ("lease without holder", Some(lease(None, 15)), 0, Decision::Acquire),
            ("our own lease", Some(lease(Some("me"), 15)), 0, Decision::Renew),
            ("our own lease, long expired", Some(lease(Some("me"), 15)), 100, Decision::Renew),
            ("another's fresh lease", Some(lease(Some("other"), 15)), 0, Decision::Wait),
            (
                "another's lease just before expiry",
                Some(lease(Some("other"), 15)),
                14,
                Decision::Wait,
            ),
            ("another's lease at expiry", Some(lease(Some("other"), 15)), 15, Decision::Acquire),
            ("another's expired lease", Some(lease(Some("other"), 15)), 60, Decision::Acquire),
            (
                "another's lease without duration",
                Some(lease(Some("other"), 0)),
                0,
                Decision::Acquire,
            ),
        ];
        for (what, lease, elapsed, expected) in cases {
            let decision = decide(lease.as_ref(), "me", at(*elapsed), t0);
            assert_eq!(decision, *expected, "{what}");
        }
    }
}
