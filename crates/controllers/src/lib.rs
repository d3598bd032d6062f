//! The controller manager: level-triggered kube-rs Controllers that act through the API like
//! any other client, so each can run inside `capstan server` or on its own.

pub mod namespace;

/// Runs every controller until the task running it is dropped.
pub async fn run(client: kube::Client) {
    namespace::run(client).await;
}
