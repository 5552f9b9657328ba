//! New and changed objects, served before periodic work: what their watch
//! event brought, kept until their next pass takes it.
//!
//! A created or changed object (spec, deletion, a reconcile request) is
//! marked *fresh*: its pass runs at once, while passes that only re-check
//! (a due DNS/TLS check, the resync, a wake-up) take one of a few turns or
//! yield ([`Turns`]). A storm of due checks cannot delay an add.
//!
//! A new object (no finalizer of this controller's) also keeps the copy its
//! event brought, so its first pass starts without a read. That copy is safe
//! to act on: the first write of a pass on such an object is its finalizer,
//! guarded by the copy's resourceVersion, so a copy a later change made
//! stale ends the pass in a conflict before it acts, and the retry reads
//! afresh. Every other pass reads its object fresh (the watch may lag
//! behind this controller's own writes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::MappedDomain;
use crate::plan::Finalizer;

/// At most this many copies are kept: a burst of thousands of creates
/// costs the rest a read each, not the memory of their copies.
const KEPT_COPIES: usize = 1000;

/// An object's namespace and name.
type Key = (String, String);

/// Fresh objects by namespace and name, with the copy of the new ones
/// (boxed: a map sized for a burst of thousands keeps its buckets small).
#[derive(Debug, Default)]
pub struct FreshObjects(Mutex<HashMap<Key, Option<Box<MappedDomain>>>>);

/// What a pass finds for its object.
#[derive(Debug, PartialEq)]
pub enum Freshness {
    /// New: the copy its watch event brought.
    New(Box<MappedDomain>),
    /// Changed since its last pass.
    Changed,
    /// Nothing new: a periodic pass.
    Periodic,
}

impl FreshObjects {
    /// Notes a watch event's object: a new one is kept whole, a changed one
    /// (`news`: something a pass reacts to) is marked; an event that is not
    /// news leaves the mark but drops an older copy.
    pub fn offer(&self, md: &MappedDomain, news: bool) {
        let key = key_of(md);
        let mut fresh = self.0.lock().unwrap();
        let new =
            md.metadata.deletion_timestamp.is_none() && Finalizer::of(md.finalizers()).is_none();
        if new && fresh.len() < KEPT_COPIES {
            // what a pass reads of it; managed fields are the bulk of an object
            let mut copy = md.clone();
            copy.metadata.managed_fields = None;
            fresh.insert(key, Some(Box::new(copy)));
        } else if new {
            // past the bound: marked, read by its pass
            fresh.insert(key, None);
        } else if news {
            fresh.insert(key, None);
        } else if let Some(copy) = fresh.get_mut(&key) {
            *copy = None;
        }
    }

    /// Forgets the object (it was deleted).
    pub fn forget(&self, md: &MappedDomain) {
        let mut fresh = self.0.lock().unwrap();
        fresh.remove(&key_of(md));
        shrink(&mut fresh);
    }

    /// What is fresh about an object, taken: its next pass serves it.
    pub fn take(&self, namespace: &str, name: &str) -> Freshness {
        let key = (namespace.to_owned(), name.to_owned());
        let mut fresh = self.0.lock().unwrap();
        let taken = fresh.remove(&key);
        shrink(&mut fresh);
        match taken {
            Some(Some(md)) => Freshness::New(md),
            Some(None) => Freshness::Changed,
            None => Freshness::Periodic,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Gives back the room a burst took once it has been served: a map keeps
/// its capacity, and this one is empty nearly always.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

fn key_of(md: &MappedDomain) -> Key {
    (md.namespace().unwrap_or_default(), md.name_any())
}

/// The turns of periodic passes: at most half the passes at once, so
/// fresh work always finds room. A periodic pass that finds no turn free
/// yields: it is tried again a moment later, spread over [`YIELD`].
#[derive(Debug, Clone)]
pub struct Turns(Arc<Semaphore>);

/// How far a periodic pass that found no turn is put back (it is spread
/// over this, so the yielded ones do not come back all at once).
pub const YIELD: Duration = Duration::from_secs(2);

impl Turns {
    /// Turns for `concurrency` passes at once: half of them, at least one.
    pub fn new(concurrency: u16) -> Turns {
        Turns(Arc::new(Semaphore::new(
            usize::from(concurrency / 2).max(1),
        )))
    }

    /// A turn if one is free now.
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FINALIZER, MappedDomainSpec};

    fn md(name: &str) -> MappedDomain {
        let mut md = MappedDomain::new(name, MappedDomainSpec::default());
        md.metadata.namespace = Some("tenant".into());
        md
    }

    fn held(name: &str) -> MappedDomain {
        let mut md = md(name);
        md.metadata.finalizers = Some(vec![FINALIZER.into()]);
        md
    }

    #[test]
    fn new_objects_are_kept_whole_changed_ones_marked_each_once() {
        let fresh = FreshObjects::default();
        fresh.offer(&md("new"), true);
        fresh.offer(&held("changed"), true);
        fresh.offer(&held("status-only"), false);
        assert_eq!(fresh.len(), 2);
        assert!(matches!(fresh.take("tenant", "new"), Freshness::New(_)));
        assert_eq!(fresh.take("tenant", "new"), Freshness::Periodic, "once");
        assert_eq!(fresh.take("tenant", "changed"), Freshness::Changed);
        assert_eq!(fresh.take("tenant", "status-only"), Freshness::Periodic);

        // a later event that is not news keeps the mark, drops the copy
        fresh.offer(&md("later"), true);
        fresh.offer(&held("later"), false);
        assert_eq!(fresh.take("tenant", "later"), Freshness::Changed);
        fresh.offer(&md("gone"), true);
        fresh.forget(&md("gone"));
        assert_eq!(fresh.len(), 0);
    }

    #[test]
    fn a_served_burst_gives_its_room_back() {
        let fresh = FreshObjects::default();
        for i in 0..2000 {
            fresh.offer(&md(&format!("m{i}")), true);
        }
        assert!(fresh.0.lock().unwrap().capacity() >= 2000);
        let kept = (0..2000)
            .filter(|i| matches!(fresh.take("tenant", &format!("m{i}")), Freshness::New(_)))
            .count();
        assert_eq!(kept, KEPT_COPIES, "the rest marked, without a copy");
        assert!(fresh.0.lock().unwrap().capacity() <= 64);
    }

    #[test]
    fn periodic_passes_get_half_the_turns() {
        let turns = Turns::new(4);
        let held: Vec<_> = std::iter::from_fn(|| turns.try_take()).take(10).collect();
        assert_eq!(held.len(), 2);
        drop(held);
        assert!(turns.try_take().is_some());
        assert!(Turns::new(1).try_take().is_some(), "at least one");
    }
}
