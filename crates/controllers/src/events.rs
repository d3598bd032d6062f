//! Event recording for controllers, off the reconcile path: events go through a bounded queue
//! to a background publisher (events.k8s.io/v1, repeats as series), with upstream's spam filter (a burst of
//! 25 events per object, then one per five minutes) so a busy controller cannot flood the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

/// Events waiting to be written; beyond this they are dropped, as upstream's broadcaster does.
const QUEUE: usize = 1000;
/// Writes in flight at once.
const CONCURRENCY: usize = 8;
const BURST: f64 = 25.0;
const REFILL_EVERY: Duration = Duration::from_secs(300);

/// One event about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: String,
    pub action: String,
    pub note: String,
}

/// A cheap handle controllers record events through.
#[derive(Clone)]
pub struct EventRecorder {
    queue: mpsc::Sender<Recorded>,
    /// Tokens per object uid (or name), refilled over time.
    budget: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl EventRecorder {
    /// A recorder whose events are handed to the returned receiver (for tests, or a custom sink).
    pub fn channel() -> (Self, mpsc::Receiver<Recorded>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        (Self { queue, budget: Arc::default() }, receiver)
    }

    /// A recorder publishing as `controller` (e.g. `replicaset-controller`) through `client`,
    /// and the future that publishes (while it is polled).
    pub fn new(
        client: kube::Client,
        controller: &str,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (recorder, receiver) = Self::channel();
        let publisher = Arc::new(Publisher {
            client,
            controller: controller.to_owned(),
            written: Mutex::default(),
        });
        let publish = tokio_stream_of(receiver).for_each_concurrent(CONCURRENCY, move |event| {
            let publisher = publisher.clone();
            async move {
                if let Err(error) = publisher.publish(event).await {
                    tracing::debug!("writing an event: {error}");
                }
            }
        });
        (recorder, publish)
    }

    /// Queues an event unless the object's budget is spent or the queue is full.
    pub fn record(&self, event: Recorded) {
        let key = event.regarding.uid.clone().unwrap_or_else(|| {
            format!("{:?}/{:?}", event.regarding.namespace, event.regarding.name)
        });
        {
            let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if budget.len() > 100_000 {
                budget.retain(|_, (_, last)| now.duration_since(*last) < REFILL_EVERY * 25);
            }
            let (tokens, last) = budget.entry(key).or_insert((BURST, now));
            let refill = now.duration_since(*last).as_secs_f64() / REFILL_EVERY.as_secs_f64();
            *tokens = (*tokens + refill).min(BURST);
            *last = now;
            if *tokens < 1.0 {
                return;
            }
            *tokens -= 1.0;
        }
        let _ = self.queue.try_send(event);
    }

    pub fn normal(&self, regarding: ObjectReference, reason: &str, action: &str, note: String) {
        self.record(Recorded {
            regarding,
            warning: false,
            reason: reason.into(),
            action: action.into(),
            note,
        });
    }

    pub fn warning(&self, regarding: ObjectReference, reason: &str, action: &str, note: String) {
        self.record(Recorded {
            regarding,
            warning: true,
            reason: reason.into(),
            action: action.into(),
            note,
        });
    }
}

/// How long a written event is remembered, so a repeat bumps its series instead of adding one.
const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// What makes two events the same occurrence (upstream's dedup key includes the message;
/// kube's `Recorder` leaves the note out, which folds "Scaled up … from 0 to 4" and "… from 4
/// to 6" into one series).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Occurrence {
    regarding: (Option<String>, Option<String>, Option<String>, Option<String>),
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

/// A written event: its namespace and name, how often it happened, when last.
struct Written {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// Writes events.k8s.io/v1 Events, one per distinct occurrence, repeats as series updates.
struct Publisher {
    client: kube::Client,
    controller: String,
    written: Mutex<HashMap<Occurrence, Written>>,
}

impl Publisher {
    async fn publish(&self, event: Recorded) -> Result<(), kube::Error> {
        let r = &event.regarding;
        let occurrence = Occurrence {
            regarding: (r.kind.clone(), r.namespace.clone(), r.name.clone(), r.uid.clone()),
            warning: event.warning,
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
        };
        let now = Timestamp::now();
        let repeat = {
            let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            written.retain(|_, w| w.last.elapsed() < SERIES_TTL);
            written.get_mut(&occurrence).map(|w| {
                w.count += 1;
                w.last = Instant::now();
                (w.namespace.clone(), w.name.clone(), w.count)
            })
        };
        if let Some((namespace, name, count)) = repeat {
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
            return Ok(());
        }
        let namespace = r.namespace.clone().unwrap_or_else(|| "default".into());
        let name =
            format!("{}.{:x}", r.name.as_deref().unwrap_or(&self.controller), now.as_nanosecond());
        let written = K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
            reason: Some(event.reason),
            action: Some(event.action),
            note: Some(event.note),
            regarding: Some(event.regarding),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            ..Default::default()
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &written).await?;
        let mut remembered = self.written.lock().unwrap_or_else(|e| e.into_inner());
        remembered.insert(occurrence, Written { namespace, name, count: 1, last: Instant::now() });
        Ok(())
    }
}

fn tokio_stream_of<T: Send + 'static>(
    receiver: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|item| (item, r)) })
}

/// A reference to `object` for an event's `regarding`.
pub fn reference<K: kube::Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    object.object_ref(&())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_object_gets_a_burst_of_25_events_then_is_throttled() {
        let (recorder, mut events) = EventRecorder::channel();
        let regarding = ObjectReference { uid: Some("u1".into()), ..Default::default() };
        for n in 0..30 {
            recorder.normal(regarding.clone(), "SuccessfulCreate", "Create", format!("pod {n}"));
        }
        let other = ObjectReference { uid: Some("u2".into()), ..Default::default() };
        recorder.normal(other, "SuccessfulCreate", "Create", "other".into());
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            seen.push(event);
        }
        assert_eq!(seen.len(), 26);
        assert_eq!(seen.last().map(|e| e.note.as_str()), Some("other"));
    }

    #[tokio::test]
    async fn distinct_notes_are_distinct_events_and_a_repeat_bumps_its_series() {
        let fake = crate::testing::FakeApi::default();
        let publisher = Publisher {
            client: fake.client(),
            controller: "deployment-controller".into(),
            written: Mutex::default(),
        };
        let regarding = ObjectReference {
            kind: Some("Deployment".into()),
            namespace: Some("ns".into()),
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let scaled = |note: &str| Recorded {
            regarding: regarding.clone(),
            warning: false,
            reason: "ScalingReplicaSet".into(),
            action: "Scale".into(),
            note: note.into(),
        };
        for note in ["from 0 to 4", "from 4 to 6", "from 0 to 4"] {
            publisher.publish(scaled(note)).await.unwrap();
        }
        let creates = fake.calls_to("POST", "/apis/events.k8s.io/v1/namespaces/ns/events");
        let notes: Vec<&str> = creates.iter().filter_map(|c| c.body["note"].as_str()).collect();
        assert_eq!(notes, ["from 0 to 4", "from 4 to 6"]);
        let patches: Vec<_> = fake.calls().into_iter().filter(|c| c.method == "PATCH").collect();
        assert_eq!(patches.len(), 1);
        assert_eq!(patches[0].body["series"]["count"], 2);
        assert_eq!(creates[0].body["reportingController"], "deployment-controller");
    }
}
