//! Feedback through the API: the `PodScheduled=False` condition and `FailedScheduling` events
//! for pods that do not fit, `Scheduled` events for bound pods, nominations and evictions for
//! preemption. Runs beside the scheduling thread so API latency never holds it up.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter as EventSource};
use serde_json::json;
use tokio::sync::mpsc;

use crate::framework::PodInfo;

/// Scheduled events waiting at most; beyond that they are dropped, as upstream's event
/// broadcaster drops events when its queue is full.
const MAX_PENDING_EVENTS: usize = 1000;
/// Reports handled at once (each is an API request; kube's client opens a connection per
/// concurrent request).
const CONCURRENCY: usize = 16;

enum Report {
    Failed { pod: Arc<PodInfo>, message: String },
    Preempted { pod: Arc<PodInfo>, node: String, victims: Vec<Arc<PodInfo>> },
}

#[derive(Clone)]
pub struct Reporter {
    reports: mpsc::UnboundedSender<Report>,
    scheduled: mpsc::Sender<(Arc<PodInfo>, String)>,
}

fn reference(pod: &PodInfo) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(pod.namespace().to_owned()),
        name: Some(pod.name().to_owned()),
        uid: Some(pod.uid.clone()),
        ..Default::default()
    }
}

impl Reporter {
    /// Starts the tasks that carry out reports; they end when every clone is dropped.
    pub fn new(client: kube::Client, scheduler_name: &str) -> Self {
        let (reports, mut received) = mpsc::unbounded_channel();
        let (scheduled, mut scheduled_received) = mpsc::channel(MAX_PENDING_EVENTS);
        let source = EventSource {
            controller: scheduler_name.to_owned(),
            instance: Some(crate::identity()),
        };
        // One recorder for failures: repeats of one pod's failure become an event series.
        let recorder = Recorder::new(client.clone(), source.clone());
        let task_client = client.clone();
        tokio::spawn(async move {
            let stream = futures::stream::poll_fn(move |cx| received.poll_recv(cx));
            stream
                .for_each_concurrent(CONCURRENCY, |report| {
                    carry_out(&task_client, &recorder, report)
                })
                .await;
        });
        tokio::spawn(async move {
            let stream = futures::stream::poll_fn(move |cx| scheduled_received.poll_recv(cx));
            stream
                .for_each_concurrent(CONCURRENCY, |(pod, node)| {
                    publish_scheduled(&client, &source, pod, node)
                })
                .await;
        });
        Self { reports, scheduled }
    }

    pub fn failed(&self, pod: Arc<PodInfo>, message: String) {
        let _ = self.reports.send(Report::Failed { pod, message });
    }

    pub fn preempted(&self, pod: Arc<PodInfo>, node: String, victims: Vec<Arc<PodInfo>>) {
        let _ = self.reports.send(Report::Preempted { pod, node, victims });
    }

    /// Queues the `Scheduled` event, unless too many are already waiting.
    pub fn scheduled(&self, pod: Arc<PodInfo>, node: String) {
        if let Err(mpsc::error::TrySendError::Full((pod, _))) = self.scheduled.try_send((pod, node))
        {
            tracing::debug!(pod = pod.key, "dropping a Scheduled event: too many waiting");
        }
    }
}

async fn publish_scheduled(
    client: &kube::Client,
    source: &EventSource,
    pod: Arc<PodInfo>,
    node: String,
) {
    // A fresh recorder: each pod is scheduled once, so there is no series to keep.
    let recorder = Recorder::new(client.clone(), source.clone());
    let event = Event {
        type_: EventType::Normal,
        reason: "Scheduled".into(),
        note: Some(format!("Successfully assigned {}/{} to {node}", pod.namespace(), pod.name())),
        action: "Binding".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &reference(&pod)).await {
        tracing::debug!(pod = pod.key, "publishing a Scheduled event: {error}");
    }
}

async fn carry_out(client: &kube::Client, recorder: &Recorder, report: Report) {
    match report {
        Report::Failed { pod, message } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), pod.namespace());
            let patch = json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": Timestamp::now().to_string(),
            }]}});
            if let Err(error) = api
                .patch_status(pod.name(), &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = pod.key, "recording the Unschedulable condition: {error}");
            }
            let event = Event {
                type_: EventType::Warning,
                reason: "FailedScheduling".into(),
                note: Some(message),
                action: "Scheduling".into(),
                secondary: None,
            };
            if let Err(error) = recorder.publish(&event, &reference(&pod)).await {
                tracing::debug!(pod = pod.key, "publishing a FailedScheduling event: {error}");
            }
        }
        Report::Preempted { pod, node, victims } => {
            let api: Api<Pod> = Api::namespaced(client.clone(), pod.namespace());
            let patch = json!({"status": {"nominatedNodeName": node}});
            if let Err(error) =
                api.patch_status(pod.name(), &PatchParams::default(), &Patch::Merge(patch)).await
            {
                tracing::warn!(pod = pod.key, "nominating node {node}: {error}");
            }
            for victim in victims {
                tracing::info!(victim = victim.key, preemptor = pod.key, node, "preempting");
                let api: Api<Pod> = Api::namespaced(client.clone(), victim.namespace());
                // Graceful: the victim gets its termination grace period.
                if let Err(error) = api.delete(victim.name(), &DeleteParams::default()).await {
                    tracing::warn!(victim = victim.key, "deleting a preemption victim: {error}");
                    continue;
                }
                let event = Event {
                    type_: EventType::Normal,
                    reason: "Preempted".into(),
                    note: Some(format!("Preempted by pod {} on node {node}", pod.uid)),
                    action: "Preempting".into(),
                    secondary: Some(reference(&pod)),
                };
                let _ = recorder.publish(&event, &reference(&victim)).await;
            }
        }
    }
}
