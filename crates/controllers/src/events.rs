//! Event recording for controllers, off the reconcile path: events go through a bounded queue
//! to a background publisher (kube's events `Recorder`), with upstream's spam filter (a burst of
//! 25 events per object, then one per five minutes) so a busy controller cannot flood the API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
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
        let publisher = Arc::new(Recorder::new(client, Reporter::from(controller)));
        let publish = tokio_stream_of(receiver).for_each_concurrent(CONCURRENCY, move |event| {
            let publisher = publisher.clone();
            async move {
                let kube_event = Event {
                    type_: if event.warning { EventType::Warning } else { EventType::Normal },
                    reason: event.reason,
                    note: Some(event.note),
                    action: event.action,
                    secondary: None,
                };
                if let Err(error) = publisher.publish(&kube_event, &event.regarding).await {
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
}
