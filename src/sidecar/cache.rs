//! The sidecar's copy of the namespace's MappedDomains, kept by its watch
//! and indexed by name and by the domain each claims: finding a domain's
//! object is a map read, not a scan that normalises every cached object.
//! Both maps change under one lock, so a reader never sees one without the
//! other. The event handling is pure ([`Contents::apply_event`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::api::MappedDomain;

/// One cached object and the normalised domain it claims (as written when
/// it breaks the rules), computed once when it arrives.
#[derive(Debug, Clone)]
struct Entry {
    object: Arc<MappedDomain>,
    claimed: String,
}

/// What the cache holds: a consistent view, replaced as a whole after a re-list.
#[derive(Debug, Default)]
struct Contents {
    by_name: HashMap<String, Entry>,
    /// The names of the objects claiming each domain (nearly always one).
    by_domain: HashMap<String, BTreeSet<String>>,
    /// A re-list in progress: what it has listed so far. Reads keep using
    /// the maps above until it is done.
    relisting: Option<Vec<MappedDomain>>,
    /// Whether a list has completed once.
    synced: bool,
}

impl Contents {
    fn insert(&mut self, object: MappedDomain) {
        let name = object.name_any();
        self.remove(&name);
        let claimed = crate::domain::claimed_domain(&object.spec.domain);
        self.by_domain
            .entry(claimed.clone())
            .or_default()
            .insert(name.clone());
        let object = Arc::new(object);
        self.by_name.insert(name, Entry { object, claimed });
    }

    fn remove(&mut self, name: &str) {
        let Some(old) = self.by_name.remove(name) else {
            return;
        };
        if let Some(names) = self.by_domain.get_mut(&old.claimed) {
            names.remove(name);
            if names.is_empty() {
                self.by_domain.remove(&old.claimed);
            }
        }
    }

    /// Takes one watch event in, as kube's reflector store does: a re-list
    /// replaces everything at once when it completes.
    fn apply_event(&mut self, event: Event<MappedDomain>) {
        match event {
            Event::Apply(object) => self.insert(object),
            Event::Delete(object) => self.remove(&object.name_any()),
            Event::Init => self.relisting = Some(Vec::new()),
            Event::InitApply(object) => self.relisting.get_or_insert_default().push(object),
            Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                self.by_name.clear();
                self.by_domain.clear();
                for object in listed {
                    self.insert(object);
                }
                self.synced = true;
            }
        }
    }
}

/// The watch cache the doors read from.
#[derive(Debug, Default)]
pub struct Cache {
    contents: RwLock<Contents>,
}

impl Cache {
    /// Takes one watch event in (see [`Contents::apply_event`]).
    pub fn apply_event(&self, event: Event<MappedDomain>) {
        self.contents
            .write()
            .expect("cache lock poisoned")
            .apply_event(event);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Contents> {
        self.contents.read().expect("cache lock poisoned")
    }

    /// Whether a list has completed once.
    pub fn synced(&self) -> bool {
        self.read().synced
    }

    /// The object of this name.
    pub fn get(&self, name: &str) -> Option<Arc<MappedDomain>> {
        self.read().by_name.get(name).map(|e| e.object.clone())
    }

    /// The object claiming `domain` (normalised): the one at `preferred`
    /// (the name the sidecar gives it) when that one claims it, else the
    /// first by name, so that the answer does not depend on arrival order.
    pub fn claiming(&self, domain: &str, preferred: &str) -> Option<Arc<MappedDomain>> {
        let contents = self.read();
        let names = contents.by_domain.get(domain)?;
        let name = if names.contains(preferred) {
            preferred
        } else {
            names.first()?
        };
        contents.by_name.get(name).map(|e| e.object.clone())
    }

    /// Every object with the domain it claims, in no particular order.
    pub fn entries(&self) -> Vec<(Arc<MappedDomain>, String)> {
        self.read()
            .by_name
            .values()
            .map(|e| (e.object.clone(), e.claimed.clone()))
            .collect()
    }

    /// Every object, in no particular order.
    pub fn objects(&self) -> Vec<Arc<MappedDomain>> {
        self.read()
            .by_name
            .values()
            .map(|e| e.object.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MappedDomainSpec;

    fn md(name: &str, domain: &str) -> MappedDomain {
        MappedDomain::new(
            name,
            MappedDomainSpec {
                domain: domain.into(),
                ..Default::default()
            },
        )
    }

    fn claimant(cache: &Cache, domain: &str, preferred: &str) -> Option<String> {
        cache.claiming(domain, preferred).map(|md| md.name_any())
    }

    #[test]
    fn an_object_is_found_by_the_normalised_domain_it_claims() {
        let cache = Cache::default();
        cache.apply_event(Event::Apply(md("by-hand", "Shop.Example.com.")));
        assert_eq!(
            claimant(&cache, "shop.example.com", "shop-example-com").as_deref(),
            Some("by-hand")
        );
        assert_eq!(claimant(&cache, "other.example.com", "x"), None);
        // a change of domain moves it in the index
        cache.apply_event(Event::Apply(md("by-hand", "other.example.com")));
        assert_eq!(claimant(&cache, "shop.example.com", "x"), None);
        assert_eq!(
            claimant(&cache, "other.example.com", "x").as_deref(),
            Some("by-hand")
        );
        cache.apply_event(Event::Delete(md("by-hand", "other.example.com")));
        assert_eq!(claimant(&cache, "other.example.com", "x"), None);
        assert!(cache.get("by-hand").is_none());
        assert!(cache.read().by_domain.is_empty(), "no empty sets left");
    }

    #[test]
    fn of_two_claimants_the_sidecars_name_wins_else_the_first() {
        let cache = Cache::default();
        cache.apply_event(Event::Apply(md("zz", "a.example")));
        cache.apply_event(Event::Apply(md("b", "a.example")));
        assert_eq!(
            claimant(&cache, "a.example", "a-example").as_deref(),
            Some("b")
        );
        cache.apply_event(Event::Apply(md("a-example", "a.example")));
        assert_eq!(
            claimant(&cache, "a.example", "a-example").as_deref(),
            Some("a-example")
        );
        // a domain that breaks the rules is kept as written
        cache.apply_event(Event::Apply(md("bad", "a..b")));
        assert_eq!(claimant(&cache, "a..b", "x").as_deref(), Some("bad"));
    }

    #[test]
    fn a_relist_replaces_everything_once_done() {
        let cache = Cache::default();
        assert!(!cache.synced());
        cache.apply_event(Event::Apply(md("old", "old.example")));
        cache.apply_event(Event::Init);
        cache.apply_event(Event::InitApply(md("new", "new.example")));
        // reads keep the last complete view meanwhile
        assert!(cache.get("old").is_some() && cache.get("new").is_none());
        cache.apply_event(Event::InitDone);
        assert!(cache.synced());
        assert!(cache.get("old").is_none());
        assert_eq!(claimant(&cache, "old.example", "old"), None);
        assert_eq!(claimant(&cache, "new.example", "x").as_deref(), Some("new"));
        assert_eq!(cache.objects().len(), 1);
        assert_eq!(cache.entries()[0].1, "new.example");
    }
}
