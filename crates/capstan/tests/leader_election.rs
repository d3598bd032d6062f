//! Lease-based leader election against a real server: of two electors only one leads, and the
//! other takes over when the leader stops.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capstan_leaderelection::{LeaderElector, Timings};
use capstan_testkit::{CapstanServer, wait_until};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(60);

async fn client(server: &CapstanServer) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}

/// Short timings keep the test quick; the ratios are client-go's.
fn timings() -> Timings {
    Timings {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
    }
}

/// Starts an elector whose work sets `leading` while it runs; the sender stops it.
fn candidate(client: kube::Client, identity: &str) -> (Arc<AtomicBool>, oneshot::Sender<()>) {
    let leading = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = oneshot::channel::<()>();
    let elector = LeaderElector::new(client, "default", "bench-lock", identity, timings());
    let flag = leading.clone();
    tokio::spawn(async move {
        let work = || {
            let flag = flag.clone();
            async move {
                flag.store(true, Ordering::SeqCst);
                // Cleared when leadership ends and this future is dropped.
                struct Clear(Arc<AtomicBool>);
                impl Drop for Clear {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::SeqCst);
                    }
                }
                let _clear = Clear(flag);
                std::future::pending::<()>().await
            }
        };
        elector.run(work, async { stopped.await.unwrap_or_default() }).await;
    });
    (leading, stop)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_elector_leads_and_the_other_takes_over_when_it_stops() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let client = client(&server).await;
    let (a, stop_a) = candidate(client.clone(), "a");
    let (b, stop_b) = candidate(client.clone(), "b");
    wait_until("one elector leads", WAIT, || a.load(Ordering::SeqCst) || b.load(Ordering::SeqCst));
    // Across many renewals, never both.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst)), "both lead");
    }
    let (leader, follower, stop_leader, stop_follower, leader_name, follower_name) =
        if a.load(Ordering::SeqCst) {
            (a, b, stop_a, stop_b, "a", "b")
        } else {
            (b, a, stop_b, stop_a, "b", "a")
        };
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let lease = leases.get("bench-lock").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(leader_name));
    assert_eq!(lease.lease_duration_seconds, Some(3));
    assert!(lease.acquire_time.is_some() && lease.renew_time.is_some());
    let transitions = lease.lease_transitions.unwrap_or(0);

    stop_leader.send(()).unwrap();
    wait_until("the follower takes over", WAIT, || follower.load(Ordering::SeqCst));
    assert!(!leader.load(Ordering::SeqCst));
    let lease = leases.get("bench-lock").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some(follower_name));
    assert_eq!(lease.lease_transitions, Some(transitions + 1));
    drop(stop_follower);
}
