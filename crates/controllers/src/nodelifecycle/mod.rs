//! The node lifecycle controller: nodes whose kubelet stops renewing its Lease go Ready=Unknown
//! and get the unreachable (or not-ready) taints, their pods turn not ready; returning nodes are
//! untainted. NoExecute tainting is rate limited per zone (the mass-disruption guard).

pub mod health;
pub mod taint_eviction;
pub mod zones;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::cached_pod::CachedPod;
use crate::events::{EventRecorder, reference};
use crate::informer::{Change, Informer};
use crate::settings::Settings;
use zones::EvictionLimiter;

/// Where kubelets renew their heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How long computed zone states are reused: every node's reconcile needs them, and counting
/// them walks every node.
const ZONE_STATES_TTL: Duration = Duration::from_secs(1);

type ZoneStates = HashMap<String, (zones::ZoneState, usize)>;

pub struct Context {
    pub client: kube::Client,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
    pub pods: Informer<CachedPod>,
    pub settings: Settings,
    pub limiter: EvictionLimiter,
    pub events: EventRecorder,
    /// Uids of the nodes this controller has seen, so each is announced once
    /// (`RegisteredNode`, as upstream records for every node it starts to track).
    pub known: Mutex<HashSet<String>>,
    /// The zone states last counted, and when.
    pub zone_states: Mutex<Option<(Instant, Arc<ZoneStates>)>>,
}

impl Context {
    /// Every zone's state, counted at most once per [`ZONE_STATES_TTL`].
    fn zone_states(&self) -> Arc<ZoneStates> {
        let mut cached = self.zone_states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, states)) = cached.as_ref()
            && at.elapsed() < ZONE_STATES_TTL
        {
            return states.clone();
        }
        let states = Arc::new(zones::zone_states(&self.nodes.state(), &self.settings));
        *cached = Some((Instant::now(), states.clone()));
        states
    }
}

fn since(t: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(now.as_millisecond() - t.as_millisecond()).unwrap_or(0))
}

/// Marks the pods on a node that went quiet not ready, as their kubelet can no longer say.
async fn mark_pods_not_ready(ctx: &Context, node: &str, now: Timestamp) -> Result<(), Error> {
    for pod in ctx.pods.indexed(&crate::informer::node_index_key(node)) {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let conditions =
            pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
        let Some(ready) = conditions.iter().find(|c| c.type_ == "Ready") else { continue };
        if ready.status == "False" {
            continue;
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        // Conditions merge by type, so the patch names only the Ready one.
        let not_ready = PodCondition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: Some("NodeNotReady".into()),
            message: Some("Node is not ready".into()),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        };
        let patch = serde_json::json!({"status": {"conditions": [not_ready]}});
        match api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch)).await {
            Ok(_) => ctx.events.warning(
                reference(&*pod),
                "NodeNotReady",
                "MarkNotReady",
                "Node is not ready".into(),
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Records `RegisteredNode` the first time this controller sees `node`.
fn announce(ctx: &Context, node: &Node, name: &str) {
    let uid = node.metadata.uid.clone().unwrap_or_default();
    if ctx.known.lock().unwrap_or_else(|e| e.into_inner()).insert(uid) {
        let note = format!("Node {name} event: Registered Node {name} in Controller");
        ctx.events.normal(reference(node), "RegisteredNode", "Register", note);
    }
}

/// Records `RemovingNode` for a node that was deleted, and forgets it.
fn farewell(ctx: &Context, node: &Node) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.clone().unwrap_or_default();
    if ctx.known.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid) {
        let note = format!("Node {name} event: Removing Node {name} from Controller");
        ctx.events.normal(reference(node), "RemovingNode", "Remove", note);
    }
}

pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    announce(&ctx, &node, &name);
    let now = Timestamp::now();
    let grace = ctx.settings.node_monitor_grace_period;
    let lease = ctx.leases.get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
    let quiet_for = since(health::last_heartbeat(&node, lease.as_deref()), now);
    let api: Api<Node> = Api::all(ctx.client.clone());
    if quiet_for > grace {
        if let Some(conditions) = health::unknown_conditions(&node, now) {
            let mut updated = (*node).clone();
            updated.status.get_or_insert_default().conditions = Some(conditions);
            api.replace_status(&name, &PostParams::default(), &updated).await?;
            tracing::info!(node = name, "node stopped posting status: Ready=Unknown");
            ctx.events.normal(
                reference(&*node),
                "NodeNotReady",
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            // The status write brings the node back here with its new conditions.
            return Ok(Action::await_change());
        }
        // Until the kubelet returns, its pods cannot be ready (repeated: a write may have failed).
        mark_pods_not_ready(&ctx, &name, now).await?;
    }

    let ready = health::ready(&node);
    let key = health::taint_key(ready);
    let states = ctx.zone_states();
    let zone = zones::zone_of(&node);
    let mut retry = None;
    let no_execute = match (key, zones::eviction_rate(&zone, &states, &ctx.settings)) {
        (None, _) => false,
        // Every zone is down: the control plane is the likelier culprit; evict nothing.
        (Some(_), None) => false,
        (Some(key), Some(_)) if health::has_no_execute(&node, key) => true,
        (Some(_), Some(rate)) => match ctx.limiter.try_take(&zone, rate) {
            Ok(()) => true,
            Err(wait) => {
                retry = Some(wait);
                false
            }
        },
    };
    let taints = health::desired_taints(&node, key, no_execute, now);
    if node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default() != taints {
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": if taints.is_empty() { serde_json::Value::Null } else { serde_json::json!(taints) }},
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        if key.is_none() {
            tracing::info!(node = name, "node ready again: lifecycle taints removed");
        }
    }
    // Look again when the heartbeat would go stale (a quiet node: every monitor period), or
    // when the zone may taint again.
    let stale_in = if quiet_for > grace {
        ctx.settings.node_monitor_period
    } else {
        grace - quiet_for + Duration::from_millis(500)
    };
    Ok(Action::requeue(retry.map_or(stale_in, |r| r.min(stale_in))))
}

pub fn error_policy(_node: Arc<Node>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!("node lifecycle controller: {error}");
    Action::requeue(Duration::from_secs(1))
}

/// Runs until the task is dropped.
pub async fn run(
    client: kube::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<CachedPod>,
    settings: Settings,
    events: EventRecorder,
) {
    nodes.wait_until_ready().await;
    leases.wait_until_ready().await;
    pods.wait_until_ready().await;
    let ctx = Arc::new(Context {
        client,
        nodes: nodes.store(),
        leases: leases.store(),
        pods,
        settings,
        limiter: EvictionLimiter::default(),
        events,
        known: Mutex::default(),
        zone_states: Mutex::new(None),
    });
    let removals = nodes.subscribe().for_each({
        let ctx = ctx.clone();
        move |change| {
            if let Change::Deleted(node) = change {
                farewell(&ctx, &node);
            }
            futures::future::ready(())
        }
    });
    let controller = Controller::for_shared_stream(nodes.touched(), nodes.store())
        .watches_shared_stream(leases.touched(), |lease| {
            lease.metadata.name.clone().map(|n| ObjectRef::<Node>::new(&n))
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    futures::join!(removals, controller);
}
