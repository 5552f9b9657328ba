//! New objects as their watch event brought them, kept until their first
//! pass takes them: that pass starts without a read of its own.
//!
//! Only objects without this controller's finalizer are kept, and that is
//! what makes a kept copy safe to act on: the first write of a pass on such
//! an object is its finalizer, guarded by the copy's resourceVersion, so a
//! copy a later change made stale ends the pass in a conflict before it
//! acts, and the retry reads afresh. Every other pass reads its object
//! fresh (the watch may lag behind this controller's own writes).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::ResourceExt;

use crate::api::MappedDomain;
use crate::plan::Finalizer;

/// The kept copies, by namespace and name.
#[derive(Debug, Default)]
pub struct FreshObjects(Mutex<HashMap<(String, String), MappedDomain>>);

impl FreshObjects {
    /// Keeps the copy a watch event brought when the object is new to this
    /// controller (no finalizer of its, not being deleted); otherwise
    /// forgets any older copy.
    pub fn offer(&self, md: &MappedDomain) {
        let key = key_of(md);
        let mut kept = self.0.lock().unwrap();
        let new =
            md.metadata.deletion_timestamp.is_none() && Finalizer::of(md.finalizers()).is_none();
        if new {
            kept.insert(key, md.clone());
        } else {
            kept.remove(&key);
        }
    }

    /// Forgets the object (it was deleted).
    pub fn forget(&self, md: &MappedDomain) {
        self.0.lock().unwrap().remove(&key_of(md));
    }

    /// The kept copy of an object, taken: one pass uses it.
    pub fn take(&self, namespace: &str, name: &str) -> Option<MappedDomain> {
        let key = (namespace.to_owned(), name.to_owned());
        self.0.lock().unwrap().remove(&key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn key_of(md: &MappedDomain) -> (String, String) {
    (md.namespace().unwrap_or_default(), md.name_any())
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

    #[test]
    fn only_objects_new_to_the_controller_are_kept_and_once() {
        let fresh = FreshObjects::default();
        fresh.offer(&md("new"));
        let mut held = md("held");
        held.metadata.finalizers = Some(vec![FINALIZER.into()]);
        fresh.offer(&held);
        assert_eq!(fresh.len(), 1);
        assert!(fresh.take("tenant", "held").is_none());
        assert!(fresh.take("tenant", "new").is_some());
        assert!(fresh.take("tenant", "new").is_none(), "taken once");

        // a later event replaces the copy, or forgets it
        fresh.offer(&md("later"));
        let mut later = md("later");
        later.metadata.finalizers = Some(vec![FINALIZER.into()]);
        fresh.offer(&later);
        assert!(fresh.take("tenant", "later").is_none());
        fresh.offer(&md("gone"));
        fresh.forget(&md("gone"));
        assert_eq!(fresh.len(), 0);
    }
}
