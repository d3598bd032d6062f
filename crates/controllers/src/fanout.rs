//! Fan-out of notifications to any number of subscribers, each with its own unbounded queue, as
//! client-go's shared informer gives every handler: nothing is allocated ahead for subscribers
//! that may never come, and a slow subscriber delays only itself, never losing a notification.

use std::sync::{Arc, Mutex};

use futures::Stream;
use tokio::sync::mpsc;

pub struct Fanout<T> {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<T>>>>,
}

impl<T> Clone for Fanout<T> {
    fn clone(&self) -> Self {
        Self { subscribers: self.subscribers.clone() }
    }
}

impl<T> Default for Fanout<T> {
    fn default() -> Self {
        Self { subscribers: Arc::default() }
    }
}

impl<T: Clone + Send + 'static> Fanout<T> {
    /// Queues `item` for every current subscriber; subscribers that went away are forgotten.
    pub fn send(&self, item: T) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| s.send(item.clone()).is_ok());
    }

    /// Everything sent from now on, in order; the stream ends when every sender is dropped.
    pub fn subscribe(&self) -> impl Stream<Item = T> + Send + 'static {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(sender);
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_subscriber_gets_every_item_in_order_however_far_behind() {
        let fanout = Fanout::default();
        let early = fanout.subscribe();
        fanout.send(1);
        let late = fanout.subscribe();
        for i in 2..=100_000 {
            fanout.send(i);
        }
        drop(fanout);
        let early: Vec<i32> = early.collect().await;
        let late: Vec<i32> = late.collect().await;
        assert_eq!(early, (1..=100_000).collect::<Vec<_>>());
        assert_eq!(late, (2..=100_000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn dropped_subscribers_are_forgotten() {
        let fanout = Fanout::default();
        let kept = fanout.subscribe();
        drop(fanout.subscribe());
        fanout.send("x");
        assert_eq!(fanout.subscribers.lock().unwrap().len(), 1);
        drop(fanout);
        assert_eq!(kept.collect::<Vec<_>>().await, vec!["x"]);
    }
}
