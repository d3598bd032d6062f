//! DefaultBinder: writes the decision through the `pods/binding` subresource.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::framework::{Bind, Plugin, PodInfo, Status};

pub struct DefaultBinder {
    client: kube::Client,
}

impl DefaultBinder {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        "DefaultBinder"
    }
    fn as_bind(&self) -> Option<&dyn Bind> {
        Some(self)
    }
}

impl Bind for DefaultBinder {
    fn bind(&self, pod: &PodInfo, node: &str) -> Pin<Box<dyn Future<Output = Status> + Send>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), pod.namespace());
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name().to_owned()),
                namespace: Some(pod.namespace().to_owned()),
                uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
                ..Default::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node.to_owned()),
                ..Default::default()
            },
        };
        let name = pod.name().to_owned();
        Box::pin(async move {
            let created: Result<serde_json::Value, _> =
                api.create_subresource("binding", &name, &PostParams::default(), &binding).await;
            match created {
                Ok(_) => Status::success(),
                Err(error) => Status::error(format!("binding rejected: {error}")),
            }
        })
    }
}
