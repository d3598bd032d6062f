//! Adoption and release through controller ownerReferences (upstream's ControllerRefManager):
//! a controller owns the matching objects that name it as controller, adopts matching orphans,
//! and releases objects it owns whose labels no longer match its selector.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Error;
use crate::pods::controller_of;
use crate::selector::{LabelSelector, Labeled};

/// A 404, 409 or 422 on adopt/release means the object changed meanwhile: skip it this round.
fn skippable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if matches!(s.code, 404 | 409 | 422))
}

/// The candidates `owner` controls after adopting and releasing. `owner_deleting` stops
/// adoption (and release) once the owner is going away.
pub async fn claim<C>(
    api: &Api<C>,
    owner: &OwnerReference,
    owner_deleting: bool,
    selector: &LabelSelector,
    candidates: Vec<Arc<C>>,
) -> Result<Vec<Arc<C>>, Error>
where
    C: kube::Resource + Labeled + Clone + Debug + DeserializeOwned,
{
    let mut owned = Vec::with_capacity(candidates.len());
    for child in candidates {
        let matches = selector.matches(&*child);
        match controller_of(child.meta()) {
            Some(controller) if controller.uid != owner.uid => {}
            Some(_) if matches => owned.push(child),
            Some(_) => {
                if owner_deleting {
                    continue;
                }
                let patch = json!({"metadata": {
                    "ownerReferences": [{"$patch": "delete", "uid": owner.uid}],
                    "uid": child.uid(),
                }});
                match api
                    .patch(&child.name_any(), &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if skippable(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                if !matches || owner_deleting || child.meta().deletion_timestamp.is_some() {
                    continue;
                }
                let patch = json!({"metadata": {
                    "ownerReferences": [owner],
                    "uid": child.uid(),
                }});
                match api
                    .patch(&child.name_any(), &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(adopted) => owned.push(Arc::new(adopted)),
                    Err(e) if skippable(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(owned)
}
