//! What the watch brought, kept for the passes: new and changed objects are
//! served before periodic work, and objects still on their way to Ready are
//! re-checked from the copy their last event brought, without a read.
//!
//! A created or changed object (spec, deletion, a reconcile request) is
//! marked *fresh*: its pass runs at once, while passes that only re-check
//! (a due DNS/TLS check, the resync, a wake-up) take one of a few turns or
//! yield ([`Turns`]). A storm of due checks cannot delay an add.
//!
//! Copies are kept of new objects and of objects not Ready yet (those are
//! the ones re-checked every few seconds), as serialized JSON within
//! [`KEPT_BYTES`]; a Ready object's periodic pass (once a resync) reads.
//! Acting on a copy is safe because every write from one is guarded by the
//! copy's resourceVersion, so a copy a later change made stale ends its
//! pass in a conflict and the retry reads afresh:
//! - a new object's (no finalizer of this controller's) first pass writes
//!   the finalizer first;
//! - a periodic pass from a copy only checks: its status write carries the
//!   copy's resourceVersion, and a plan that wants a Closte call or a
//!   finalizer change reads the object first.
//!
//! A copy may lag behind this controller's own last write until its watch
//! event comes; such a pass ends in that conflict, and the copy is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;

use crate::api::MappedDomain;
use crate::api::conditions::ConditionType;
use crate::plan::Finalizer;

/// The copies kept, at most this many bytes of JSON: a burst of thousands
/// of creates, or thousands of domains waiting on DNS, costs the rest a
/// read each, not the memory of their copies. A copy of an object waiting
/// on DNS is about 1.5 KB: 2 MiB is some 1,400, and at 8 MiB the
/// fragments they left kept a settled controller at 10,000 objects 4 MiB
/// above its target.
const KEPT_BYTES: usize = 2 << 20;

/// An object's namespace and name.
type Key = (String, String);

/// Why an object's next pass is due before its time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    /// New to this controller, its copy taken as it came.
    New,
    /// Changed since its last pass: read.
    Changed,
}

#[derive(Debug, Default)]
struct Kept {
    mark: Option<Mark>,
    /// The object as its last event brought it, without managed fields.
    copy: Option<Box<[u8]>>,
}

#[derive(Debug, Default)]
struct Objects {
    kept: HashMap<Key, Kept>,
    /// The copies' bytes.
    bytes: usize,
    /// The objects marked, whose passes have not taken their marks.
    marked: usize,
}

impl Objects {
    /// Removes an object's entry, its copy and mark uncounted.
    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.kept.remove(key) {
            self.bytes -= entry.copy.map_or(0, |c| c.len());
            self.marked -= usize::from(entry.mark.is_some());
        }
        shrink(&mut self.kept);
    }
}

/// New and changed objects, and copies, by namespace and name.
#[derive(Debug, Default)]
pub struct FreshObjects(Mutex<Objects>);

/// What a pass finds for its object.
#[derive(Debug, PartialEq)]
pub enum Freshness {
    /// New: the copy its watch event brought.
    New(Box<MappedDomain>),
    /// Changed since its last pass: read it.
    Changed,
    /// Nothing new: a periodic pass, from the copy when one is kept.
    Periodic(Option<Box<MappedDomain>>),
}

impl FreshObjects {
    /// Notes a watch event's object: a new one is marked new, a changed
    /// one (`news`: something a pass reacts to) marked changed; the copy
    /// is replaced by this one while the object is new or not Ready.
    pub fn offer(&self, md: &MappedDomain, news: bool) {
        let new =
            md.metadata.deletion_timestamp.is_none() && Finalizer::of(md.finalizers()).is_none();
        let unsettled = new
            || !md
                .status
                .as_ref()
                .is_some_and(|s| s.is_true(ConditionType::Ready));
        let copy = unsettled.then(|| copy_of(md)).flatten();
        let mut objects = self.0.lock().unwrap();
        let Objects {
            kept,
            bytes,
            marked,
        } = &mut *objects;
        let key = key_of(md);
        let entry = kept.entry(key.clone()).or_default();
        *marked -= usize::from(entry.mark.is_some());
        *bytes -= entry.copy.as_ref().map_or(0, |c| c.len());
        entry.copy = copy.filter(|c| *bytes + c.len() <= KEPT_BYTES);
        *bytes += entry.copy.as_ref().map_or(0, |c| c.len());
        entry.mark = match (new, entry.copy.is_some()) {
            (true, true) => Some(Mark::New),
            // past the bound: read by its pass
            (true, false) => Some(Mark::Changed),
            // a new copy made stale by a later event: read
            _ if news || entry.mark.is_some() => Some(Mark::Changed),
            _ => None,
        };
        *marked += usize::from(entry.mark.is_some());
        if entry.mark.is_none() && entry.copy.is_none() {
            objects.remove(&key);
        }
    }

    /// Forgets the object (it was deleted).
    pub fn forget(&self, md: &MappedDomain) {
        self.drop_entry(&key_of(md));
    }

    /// Drops what is kept of an object whose copy proved stale: its next
    /// pass reads.
    pub fn stale(&self, namespace: &str, name: &str) {
        self.drop_entry(&(namespace.to_owned(), name.to_owned()));
    }

    fn drop_entry(&self, key: &Key) {
        self.0.lock().unwrap().remove(key);
    }

    /// What is fresh about an object, the mark taken (its next pass serves
    /// it), the copy left for the passes after it.
    pub fn take(&self, namespace: &str, name: &str) -> Freshness {
        let key = (namespace.to_owned(), name.to_owned());
        let mut objects = self.0.lock().unwrap();
        let Some(entry) = objects.kept.get_mut(&key) else {
            return Freshness::Periodic(None);
        };
        let mark = entry.mark.take();
        // parsed only for the passes that start from it
        let copy = match mark {
            Some(Mark::Changed) => None,
            _ => entry.copy.as_deref().and_then(parse),
        };
        let copyless = entry.copy.is_none();
        objects.marked -= usize::from(mark.is_some());
        if copyless {
            objects.remove(&key);
        }
        match (mark, copy) {
            (Some(Mark::New), Some(md)) => Freshness::New(md),
            (Some(_), _) => Freshness::Changed,
            (None, copy) => Freshness::Periodic(copy),
        }
    }

    /// Whether fresh passes are due and not started yet.
    pub fn waiting(&self) -> bool {
        self.0.lock().unwrap().marked > 0
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().kept.len()
    }
}

/// The object as JSON, what a pass reads of it (managed fields are the
/// bulk of an object and no pass reads them).
fn copy_of(md: &MappedDomain) -> Option<Box<[u8]>> {
    let mut md = md.clone();
    md.metadata.managed_fields = None;
    serde_json::to_vec(&md).ok().map(Vec::into_boxed_slice)
}

fn parse(copy: &[u8]) -> Option<Box<MappedDomain>> {
    serde_json::from_slice(copy).ok()
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

/// The turns of passes. Fresh passes (new and changed objects) always
/// run; periodic ones take at most half the passes at once, and only a
/// sixteenth while fresh work waits or runs, so a storm of due checks
/// neither delays an add nor shares the machine with a burst of them (yet
/// a stream of new objects does not stop the checks altogether). A
/// periodic pass that finds no turn yields: it is tried again a moment
/// later, spread over [`YIELD`].
#[derive(Debug, Clone)]
pub struct Turns(Arc<Counts>);

#[derive(Debug)]
struct Counts {
    periodic: AtomicUsize,
    fresh: AtomicUsize,
    /// Periodic turns when no fresh work is about.
    most: usize,
    /// Periodic turns while fresh work waits or runs.
    few: usize,
}

/// A pass's turn, given back when dropped.
#[derive(Debug)]
pub struct Turn {
    counts: Arc<Counts>,
    fresh: bool,
}

/// How far a periodic pass that found no turn is put back (it is spread
/// over this, so the yielded ones do not come back all at once).
pub const YIELD: Duration = Duration::from_secs(2);

impl Turns {
    /// Turns for `concurrency` passes at once.
    pub fn new(concurrency: u16) -> Turns {
        Turns(Arc::new(Counts {
            periodic: AtomicUsize::new(0),
            fresh: AtomicUsize::new(0),
            most: usize::from(concurrency / 2).max(1),
            few: usize::from(concurrency / 16).max(1),
        }))
    }

    /// A fresh pass's turn: always given.
    pub fn fresh(&self) -> Turn {
        self.0.fresh.fetch_add(1, Ordering::SeqCst);
        Turn {
            counts: self.0.clone(),
            fresh: true,
        }
    }

    /// A periodic pass's turn if one is free now; `fresh_waiting`: fresh
    /// passes are due and not started yet.
    pub fn try_periodic(&self, fresh_waiting: bool) -> Option<Turn> {
        let counts = &self.0;
        let limit = if fresh_waiting || counts.fresh.load(Ordering::SeqCst) > 0 {
            counts.few
        } else {
            counts.most
        };
        counts
            .periodic
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Turn {
            counts: counts.clone(),
            fresh: false,
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let count = match self.fresh {
            true => &self.counts.fresh,
            false => &self.counts.periodic,
        };
        count.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FINALIZER, MappedDomainSpec, MappedDomainStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

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

    fn ready(name: &str) -> MappedDomain {
        let mut md = held(name);
        md.status = Some(MappedDomainStatus {
            conditions: vec![Condition {
                type_: ConditionType::Ready.as_str().into(),
                status: "True".into(),
                reason: "Ready".into(),
                message: String::new(),
                last_transition_time: Time(Default::default()),
                observed_generation: None,
            }],
            ..Default::default()
        });
        md
    }

    fn is_periodic_from_copy(freshness: Freshness) -> bool {
        matches!(freshness, Freshness::Periodic(Some(_)))
    }

    #[test]
    fn new_objects_come_as_they_came_changed_ones_are_read_each_once() {
        let fresh = FreshObjects::default();
        fresh.offer(&md("new"), true);
        fresh.offer(&held("changed"), true);
        assert!(matches!(fresh.take("tenant", "new"), Freshness::New(_)));
        assert!(is_periodic_from_copy(fresh.take("tenant", "new")), "once");
        assert_eq!(fresh.take("tenant", "changed"), Freshness::Changed);
        assert!(is_periodic_from_copy(fresh.take("tenant", "changed")));

        // a later event that is not news keeps the mark, but the new
        // object's copy is stale: read
        fresh.offer(&md("later"), true);
        fresh.offer(&held("later"), false);
        assert_eq!(fresh.take("tenant", "later"), Freshness::Changed);
        fresh.offer(&md("gone"), true);
        fresh.forget(&md("gone"));
        assert!(
            !fresh
                .0
                .lock()
                .unwrap()
                .kept
                .contains_key(&key_of(&md("gone")))
        );
    }

    #[test]
    fn only_objects_on_their_way_to_ready_are_kept() {
        let fresh = FreshObjects::default();
        fresh.offer(&held("checking"), false);
        fresh.offer(&ready("done"), false);
        match fresh.take("tenant", "checking") {
            Freshness::Periodic(Some(copy)) => {
                assert_eq!(
                    copy.metadata.finalizers,
                    held("checking").metadata.finalizers
                )
            }
            other => panic!("expected a copy, got {other:?}"),
        }
        assert_eq!(fresh.take("tenant", "done"), Freshness::Periodic(None));
        // it went Ready: its copy goes
        fresh.offer(&ready("checking"), false);
        assert_eq!(fresh.take("tenant", "checking"), Freshness::Periodic(None));
        assert_eq!(fresh.len(), 0);
        assert_eq!(fresh.0.lock().unwrap().bytes, 0);

        // a copy found stale is dropped
        fresh.offer(&held("stale"), false);
        fresh.stale("tenant", "stale");
        assert_eq!(fresh.take("tenant", "stale"), Freshness::Periodic(None));
    }

    #[test]
    fn copies_stay_within_their_bytes_and_a_served_burst_gives_its_room_back() {
        let fresh = FreshObjects::default();
        let each = copy_of(&md("m00000")).unwrap().len();
        let burst = KEPT_BYTES / each + 1000;
        for i in 0..burst {
            fresh.offer(&md(&format!("m{i:05}")), true);
        }
        assert!(fresh.0.lock().unwrap().bytes <= KEPT_BYTES);
        let kept = (0..burst)
            .filter(|i| matches!(fresh.take("tenant", &format!("m{i:05}")), Freshness::New(_)))
            .count();
        assert_eq!(kept, KEPT_BYTES / each, "the rest marked, without a copy");
        for i in 0..burst {
            fresh.forget(&md(&format!("m{i:05}")));
        }
        assert_eq!(fresh.0.lock().unwrap().bytes, 0);
        assert!(fresh.0.lock().unwrap().kept.capacity() <= 64);
    }

    #[test]
    fn periodic_passes_get_half_the_turns_and_few_beside_fresh_work() {
        let turns = Turns::new(32);
        // every turn held at once, then given back
        let periodic = || {
            let held: Vec<_> = std::iter::from_fn(|| turns.try_periodic(false))
                .take(100)
                .collect();
            held.len()
        };
        assert_eq!(periodic(), 16);

        let fresh = turns.fresh();
        assert_eq!(periodic(), 2, "beside a fresh pass");
        drop(fresh);
        assert!(
            turns.try_periodic(true).is_some(),
            "fresh work waiting: a few"
        );
        let held: Vec<_> = std::iter::from_fn(|| turns.try_periodic(true))
            .take(100)
            .collect();
        assert_eq!(held.len(), 2);
        drop(held);
        assert_eq!(periodic(), 16, "every turn given back");
        assert!(Turns::new(1).try_periodic(true).is_some(), "at least one");
    }

    #[test]
    fn marks_waiting_are_counted() {
        let fresh = FreshObjects::default();
        assert!(!fresh.waiting());
        fresh.offer(&md("new"), true);
        fresh.offer(&md("new"), true);
        fresh.offer(&held("changed"), true);
        assert!(fresh.waiting());
        fresh.take("tenant", "new");
        assert!(fresh.waiting());
        fresh.stale("tenant", "changed");
        assert!(!fresh.waiting(), "taken or dropped: none waits");
        fresh.offer(&held("again"), true);
        fresh.forget(&held("again"));
        assert!(!fresh.waiting());
    }
}
