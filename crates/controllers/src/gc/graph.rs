//! The ownership graph: which objects each object owns, kept from every kind's changes, so an
//! owner's deletion reaches its dependents without scanning every cache.

use std::collections::{HashMap, HashSet};

use kube::api::ObjectMeta;

/// Where an object lives: its kind (an index into the collector's kinds), namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub kind: usize,
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone)]
struct Node {
    place: Place,
    /// Owner uid, and whether this object blocks that owner's foreground deletion.
    owners: Vec<(String, bool)>,
    /// Being deleted in the foreground: its dependents go first.
    waiting: bool,
}

/// A dependent as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    pub place: Place,
    pub uid: String,
    pub blocks_owner_deletion: bool,
}

#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

pub fn waiting_for_dependents(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
        && meta.finalizers.iter().flatten().any(|f| f == super::FOREGROUND)
}

impl Graph {
    /// Records an object as it now is; returns the places whose reconcile this may change:
    /// the object itself when it is new with owners, its owners changed, or it is being
    /// deleted, and its dependents when it is being deleted. (A status change of an object
    /// whose owners stand needs no look, as in upstream's graph builder: an owner's deletion
    /// reaches its dependents through `deleted`.)
    pub fn applied(&mut self, place: Place, meta: &ObjectMeta) -> Vec<Place> {
        let Some(uid) = meta.uid.clone() else { return Vec::new() };
        let owners: Vec<(String, bool)> = meta
            .owner_references
            .iter()
            .flatten()
            .map(|r| (r.uid.clone(), r.block_owner_deletion.unwrap_or(false)))
            .collect();
        let waiting = waiting_for_dependents(meta);
        let owners_changed = match self.nodes.get(&uid) {
            Some(old) => old.owners != owners,
            None => !owners.is_empty(),
        };
        let deleting = meta.deletion_timestamp.is_some();
        self.unlink(&uid);
        for (owner, _) in &owners {
            self.dependents.entry(owner.clone()).or_default().insert(uid.clone());
        }
        let mut affected = if deleting { self.dependent_places(&uid) } else { Vec::new() };
        if owners_changed || deleting {
            affected.push(place.clone());
        }
        self.nodes.insert(uid, Node { place, owners, waiting });
        affected
    }

    /// Forgets a deleted object; its dependents are now dangling and its owners may be unblocked.
    pub fn deleted(&mut self, meta: &ObjectMeta) -> Vec<Place> {
        meta.uid.as_deref().map(|uid| self.forget(uid)).unwrap_or_default()
    }

    /// Records a list of every object of `kind`: the objects of that kind it does not name were
    /// deleted while no watch ran, and are forgotten as such.
    pub fn listed<'a>(
        &mut self,
        kind: usize,
        objects: impl IntoIterator<Item = (Place, &'a ObjectMeta)>,
    ) -> Vec<Place> {
        let objects: Vec<(Place, &ObjectMeta)> = objects.into_iter().collect();
        let named: HashSet<&str> = objects.iter().filter_map(|(_, m)| m.uid.as_deref()).collect();
        let gone: Vec<String> = self
            .nodes
            .iter()
            .filter(|(uid, node)| node.place.kind == kind && !named.contains(uid.as_str()))
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut affected: Vec<Place> = gone.iter().flat_map(|uid| self.forget(uid)).collect();
        for (place, meta) in objects {
            affected.extend(self.applied(place, meta));
        }
        affected
    }

    fn forget(&mut self, uid: &str) -> Vec<Place> {
        let mut affected = self.dependent_places(uid);
        if let Some(node) = self.nodes.get(uid) {
            affected.extend(
                node.owners.iter().filter_map(|(o, _)| self.nodes.get(o)).map(|n| n.place.clone()),
            );
        }
        self.unlink(uid);
        self.nodes.remove(uid);
        affected
    }

    fn unlink(&mut self, uid: &str) {
        if let Some(old) = self.nodes.get(uid) {
            for (owner, _) in &old.owners {
                if let Some(set) = self.dependents.get_mut(owner) {
                    set.remove(uid);
                    if set.is_empty() {
                        self.dependents.remove(owner);
                    }
                }
            }
        }
    }

    fn dependent_places(&self, uid: &str) -> Vec<Place> {
        self.dependents_of(uid).into_iter().map(|d| d.place).collect()
    }

    /// The objects that name `uid` as an owner.
    pub fn dependents_of(&self, uid: &str) -> Vec<Dependent> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let node = self.nodes.get(d)?;
                let blocks = node.owners.iter().any(|(o, block)| o == uid && *block);
                Some(Dependent {
                    place: node.place.clone(),
                    uid: d.clone(),
                    blocks_owner_deletion: blocks,
                })
            })
            .collect()
    }

    pub fn has_dependents(&self, uid: &str) -> bool {
        self.dependents.get(uid).is_some_and(|d| !d.is_empty())
    }

    /// Whether the object is known, and if so whether it waits for its dependents.
    pub fn known(&self, uid: &str) -> Option<bool> {
        self.nodes.get(uid).map(|n| n.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

    fn meta(uid: &str, owners: &[(&str, bool)]) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            owner_references: Some(
                owners
                    .iter()
                    .map(|(o, block)| OwnerReference {
                        uid: (*o).into(),
                        block_owner_deletion: Some(*block),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn place(name: &str) -> Place {
        Place { kind: 0, namespace: Some("default".into()), name: name.into() }
    }

    #[test]
    fn deleting_an_owner_reaches_its_dependents_and_unblocks_nothing_else() {
        let mut graph = Graph::default();
        graph.applied(place("rs"), &meta("rs-uid", &[]));
        graph.applied(place("pod-a"), &meta("a", &[("rs-uid", true)]));
        graph.applied(place("pod-b"), &meta("b", &[("rs-uid", false)]));
        let mut dependents = graph.dependents_of("rs-uid");
        dependents.sort_by(|x, y| x.uid.cmp(&y.uid));
        assert_eq!(dependents.len(), 2);
        assert!(dependents[0].blocks_owner_deletion && !dependents[1].blocks_owner_deletion);
        let mut affected = graph.deleted(&meta("rs-uid", &[]));
        affected.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(affected, vec![place("pod-a"), place("pod-b")]);
    }

    #[test]
    fn a_deleted_dependent_leaves_its_owner_and_requeues_it() {
        let mut graph = Graph::default();
        graph.applied(place("rs"), &meta("rs-uid", &[]));
        graph.applied(place("pod-a"), &meta("a", &[("rs-uid", true)]));
        assert_eq!(graph.deleted(&meta("a", &[("rs-uid", true)])), vec![place("rs")]);
        assert!(!graph.has_dependents("rs-uid"));
    }

    #[test]
    fn an_object_is_looked_at_when_new_with_owners_when_its_owners_change_or_when_deleted() {
        let mut graph = Graph::default();
        assert_eq!(graph.applied(place("cm"), &meta("cm", &[])), vec![], "no owners: nothing");
        let owned = meta("a", &[("rs-uid", true)]);
        assert_eq!(graph.applied(place("pod-a"), &owned), vec![place("pod-a")]);
        assert_eq!(graph.applied(place("pod-a"), &owned), vec![], "a status change: nothing");
        let adopted = meta("a", &[("rs-uid", true), ("other-uid", false)]);
        assert_eq!(graph.applied(place("pod-a"), &adopted), vec![place("pod-a")]);
        let mut deleting = meta("rs-uid", &[]);
        deleting.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        graph.applied(place("rs"), &meta("rs-uid", &[]));
        assert_eq!(graph.applied(place("rs"), &deleting), vec![place("pod-a"), place("rs")]);
    }

    #[test]
    fn a_list_forgets_the_objects_of_its_kind_it_does_not_name() {
        let mut graph = Graph::default();
        let other_kind = Place { kind: 1, namespace: None, name: "node".into() };
        graph.applied(other_kind, &meta("node-uid", &[]));
        graph.applied(place("rs"), &meta("rs-uid", &[]));
        graph.applied(place("pod-a"), &meta("a", &[("rs-uid", true)]));
        // The ReplicaSet went while no watch ran; the pod is listed again, unchanged.
        let affected = graph.listed(0, [(place("pod-a"), &meta("a", &[("rs-uid", true)]))]);
        assert_eq!(affected, vec![place("pod-a")], "its dependent is looked at");
        assert_eq!(graph.known("rs-uid"), None);
        assert_eq!(graph.known("node-uid"), Some(false), "other kinds are not touched");
        assert_eq!(graph.known("a"), Some(false));
        let new = graph.listed(0, [(place("cm"), &meta("cm-uid", &[("node-uid", false)]))]);
        assert_eq!(new, vec![place("cm")], "a new dependent is looked at");
        assert_eq!(graph.known("a"), None);
    }

    #[test]
    fn dropping_an_owner_reference_unlinks_the_dependent() {
        let mut graph = Graph::default();
        graph.applied(place("pod-a"), &meta("a", &[("rs-uid", true)]));
        graph.applied(place("pod-a"), &meta("a", &[]));
        assert!(graph.dependents_of("rs-uid").is_empty());
    }
}
