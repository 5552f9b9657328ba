//! What the controller keeps of every MappedDomain between passes: a compact
//! [`Claim`] per object, and lookups by domain (who claims it, who wins), by
//! Secret (who uses it) and by account (who waits out its outage). Kept in
//! step by the watch, which applies every event and resets the whole set on a
//! re-list; passes add the account they found. No IO, no kube client.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use crate::api::conditions::ConditionType;
use crate::api::{MappedDomain, RECONCILE_REQUESTED_AT, Stage};
use crate::closte::AccountId;
use crate::domain::claimed_domain;
use crate::plan;

/// A namespaced object's name. Shared strings: the index holds each key in
/// several maps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What decisions and metrics read of one MappedDomain; everything else of
/// the object (its status messages, records and certificate) is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: ObjectKey,
    pub uid: Box<str>,
    /// `spec.domain` normalised (as written when it breaks the rules).
    pub domain: Box<str>,
    pub created: Option<Timestamp>,
    /// The Secret named by `spec.credentialsRef`.
    pub credentials_secret: Option<Box<str>>,
    pub ready: bool,
    pub stage: Option<Stage>,
    /// When the recorded certificate expires (Unix seconds).
    pub cert_not_after: Option<i64>,
    /// When the object last failed on Closte's trouble, while it waits on
    /// that failure (from status).
    pub closte_failure: Option<Timestamp>,
    /// The account of its key, as the last pass found it: the watch cannot
    /// tell (the key is in a Secret), so it is kept while the object names the
    /// same Secret.
    pub account: Option<AccountId>,
    /// A hash of what a pass must react to: the generation (spec), deletion
    /// and the reconcile request. Not status, which only this controller
    /// writes, nor finalizers: the pass that puts its own on goes on in
    /// the same pass (a finalizer taken away by someone else is put back at
    /// the next pass).
    pub trigger: u64,
}

impl Claim {
    pub fn from_resource(md: &MappedDomain) -> Claim {
        let status = md.status.as_ref();
        Claim {
            key: ObjectKey {
                namespace: md.metadata.namespace.as_deref().unwrap_or_default().into(),
                name: md.metadata.name.as_deref().unwrap_or_default().into(),
            },
            uid: md.metadata.uid.as_deref().unwrap_or_default().into(),
            domain: claimed_domain(&md.spec.domain).into(),
            created: md.metadata.creation_timestamp.as_ref().map(|t| t.0),
            credentials_secret: md
                .spec
                .credentials_ref
                .as_ref()
                .map(|r| r.name.as_str().into()),
            ready: status.is_some_and(|s| s.is_true(ConditionType::Ready)),
            stage: status.and_then(|s| s.stage),
            cert_not_after: status
                .and_then(|s| s.certificate.as_ref())
                .map(|c| c.not_after.0.as_second()),
            closte_failure: status.and_then(plan::waiting_on_closte),
            account: None,
            trigger: trigger(md),
        }
    }

    /// The order of claims on one domain: the oldest wins
    /// (creationTimestamp, then uid).
    fn seniority(&self) -> (Option<Timestamp>, &str) {
        (self.created, &self.uid)
    }
}

fn trigger(md: &MappedDomain) -> u64 {
    let mut hasher = DefaultHasher::new();
    md.metadata.generation.hash(&mut hasher);
    md.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .hash(&mut hasher);
    md.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .hash(&mut hasher);
    hasher.finish()
}

/// Every claim, by object, by domain, by Secret and by account.
#[derive(Debug, Default)]
pub struct Index {
    claims: HashMap<ObjectKey, Claim>,
    /// Claimants per domain, oldest first (a sorted Vec: nearly always one).
    by_domain: HashMap<Box<str>, Vec<ObjectKey>>,
    by_secret: HashMap<ObjectKey, HashSet<ObjectKey>>,
    /// Per account, the objects that wait on a failure of Closte's (a known
    /// account and a `closte_failure`); no empty sets.
    waiting: HashMap<AccountId, HashSet<ObjectKey>>,
    /// The keys seen since a re-list began.
    relisted: Option<HashSet<ObjectKey>>,
}

impl Index {
    /// Adds or updates a claim. Returns whether a pass must react: the claim
    /// is new, or its trigger changed (a write of status alone is not news).
    pub fn apply(&mut self, mut claim: Claim) -> bool {
        if let Some(relisted) = &mut self.relisted {
            relisted.insert(claim.key.clone());
        }
        if let Some(old) = self.claims.get(&claim.key)
            && old.credentials_secret == claim.credentials_secret
        {
            claim.account = claim.account.or(old.account);
        }
        let news = self
            .claims
            .get(&claim.key)
            .is_none_or(|old| old.trigger != claim.trigger);
        if let Some(old) = self.claims.get(&claim.key)
            && (old.domain != claim.domain
                || old.seniority() != claim.seniority()
                || old.credentials_secret != claim.credentials_secret)
        {
            let key = claim.key.clone();
            self.unlink(&key);
        }
        if let Some(old) = self.claims.get(&claim.key) {
            unwait(&mut self.waiting, old);
        }
        await_recovery(&mut self.waiting, &claim);
        let key = claim.key.clone();
        let claimants = self
            .by_domain
            .entry(claim.domain.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        if !claimants.contains(&key) {
            let claims = &self.claims;
            let at = claimants.partition_point(|k| {
                claims
                    .get(k)
                    .is_some_and(|c| c.seniority() < claim.seniority())
            });
            claimants.insert(at, key.clone());
        }
        if let Some(secret) = &claim.credentials_secret {
            self.by_secret
                .entry(secret_key(&key.namespace, secret))
                .or_default()
                .insert(key.clone());
        }
        self.claims.insert(key, claim);
        news
    }

    /// Removes a claim; returns the other claimants of its domain, which may
    /// now win it.
    pub fn delete(&mut self, key: &ObjectKey) -> Vec<ObjectKey> {
        let Some(claim) = self.unlink(key) else {
            return Vec::new();
        };
        self.claimants(&claim.domain).cloned().collect()
    }

    /// A re-list begins: claims not applied again before [`Index::reset_done`]
    /// are gone.
    pub fn reset_begin(&mut self) {
        self.relisted = Some(HashSet::new());
    }

    /// The re-list is complete: drops the claims it did not list and returns
    /// the other claimants of their domains.
    pub fn reset_done(&mut self) -> Vec<ObjectKey> {
        let Some(seen) = self.relisted.take() else {
            return Vec::new();
        };
        let gone: Vec<ObjectKey> = self
            .claims
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        let mut rivals: Vec<ObjectKey> = gone.iter().flat_map(|k| self.delete(k)).collect();
        rivals.sort();
        rivals.dedup();
        rivals
    }

    fn unlink(&mut self, key: &ObjectKey) -> Option<Claim> {
        let claim = self.claims.remove(key)?;
        unwait(&mut self.waiting, &claim);
        if let Some(claimants) = self.by_domain.get_mut(&claim.domain) {
            claimants.retain(|k| k != key);
            if claimants.is_empty() {
                self.by_domain.remove(&claim.domain);
            }
        }
        if let Some(secret) = &claim.credentials_secret {
            let secret = secret_key(&key.namespace, secret);
            if let Some(users) = self.by_secret.get_mut(&secret) {
                users.remove(key);
                if users.is_empty() {
                    self.by_secret.remove(&secret);
                }
            }
        }
        Some(claim)
    }

    /// Everyone claiming `domain` (normalised), oldest first.
    pub fn claimants(&self, domain: &str) -> impl Iterator<Item = &ObjectKey> {
        self.by_domain
            .get(domain)
            .into_iter()
            .flat_map(|claimants| claimants.iter())
    }

    /// The oldest claim on `domain` when it is older than the claim
    /// `(created, uid)`: the one that keeps the domain.
    pub fn winner(
        &self,
        domain: &str,
        created: Option<Timestamp>,
        uid: &str,
    ) -> Option<&ObjectKey> {
        let oldest = self.by_domain.get(domain)?.first()?;
        let seniority = self.claims.get(oldest)?.seniority();
        (seniority < (created, uid)).then_some(oldest)
    }

    /// Records the account a pass found for the object's key.
    pub fn set_account(&mut self, key: &ObjectKey, account: AccountId) {
        if let Some(claim) = self.claims.get_mut(key) {
            unwait(&mut self.waiting, claim);
            claim.account = Some(account);
            await_recovery(&mut self.waiting, claim);
        }
    }

    /// The account recorded for the object, if any.
    pub fn account_of(&self, key: &ObjectKey) -> Option<AccountId> {
        self.claims.get(key)?.account
    }

    /// Whether any object of `account` waits on a failure that was Closte's.
    pub fn any_waiting_on(&self, account: AccountId) -> bool {
        self.waiting.contains_key(&account)
    }

    /// The objects of `account` that wait on a failure of Closte's from
    /// before `recovered`, when the account answered again: the ones its
    /// recovery wakes.
    pub fn woken_by(&self, account: AccountId, recovered: Timestamp) -> Vec<ObjectKey> {
        self.waiting
            .get(&account)
            .into_iter()
            .flatten()
            .filter(|key| {
                self.claims
                    .get(*key)
                    .and_then(|c| c.closte_failure)
                    .is_some_and(|failed| plan::answered_since(failed, recovered))
            })
            .cloned()
            .collect()
    }

    /// The objects whose `spec.credentialsRef` names Secret `namespace/name`.
    pub fn users_of_secret(&self, namespace: &str, name: &str) -> Vec<ObjectKey> {
        self.by_secret
            .get(&secret_key(namespace, name))
            .map(|users| users.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects in `namespace` without `spec.credentialsRef`: those the
    /// controller's own key would serve. A scan: namespaces' labels change rarely.
    pub fn default_key_users(&self, namespace: &str) -> Vec<ObjectKey> {
        self.claims
            .values()
            .filter(|c| c.credentials_secret.is_none() && &*c.key.namespace == namespace)
            .map(|c| c.key.clone())
            .collect()
    }

    pub fn claims(&self) -> impl Iterator<Item = &Claim> + Clone {
        self.claims.values()
    }

    pub fn len(&self) -> usize {
        self.claims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }
}

/// Adds the claim to its account's waiters, if it waits on Closte.
fn await_recovery(waiting: &mut HashMap<AccountId, HashSet<ObjectKey>>, claim: &Claim) {
    if let (Some(account), Some(_)) = (claim.account, claim.closte_failure) {
        waiting
            .entry(account)
            .or_default()
            .insert(claim.key.clone());
    }
}

/// Takes the claim out of its account's waiters.
fn unwait(waiting: &mut HashMap<AccountId, HashSet<ObjectKey>>, claim: &Claim) {
    let Some(account) = claim.account else {
        return;
    };
    if let Some(keys) = waiting.get_mut(&account) {
        keys.remove(&claim.key);
        if keys.is_empty() {
            waiting.remove(&account);
        }
    }
}

fn secret_key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, domain: &str, created: i64) -> Claim {
        Claim {
            key: ObjectKey {
                namespace: ns.into(),
                name: name.into(),
            },
            uid: format!("uid-{name}").into(),
            domain: claimed_domain(domain).into(),
            created: Some(Timestamp::from_second(1_800_000_000 + created).unwrap()),
            credentials_secret: None,
            ready: false,
            stage: None,
            cert_not_after: None,
            closte_failure: None,
            account: None,
            trigger: 0,
        }
    }

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn oldest_claim_wins_then_hands_over() {
        let mut index = Index::default();
        let old = claim("a", "first", "shop.example.com", 0);
        let young = claim("b", "second", "Shop.Example.com.", 10);
        index.apply(young.clone());
        index.apply(old.clone());
        let domain = claimed_domain("shop.example.com");
        assert_eq!(
            index.winner(&domain, young.created, &young.uid),
            Some(&old.key)
        );
        assert_eq!(
            index.winner(&domain, old.created, &old.uid),
            None,
            "the oldest has no winner over it"
        );
        assert_eq!(index.claimants(&domain).count(), 2);
        assert_eq!(index.delete(&old.key), vec![young.key.clone()]);
        assert_eq!(index.winner(&domain, young.created, &young.uid), None);
        assert_eq!(index.delete(&young.key), Vec::<ObjectKey>::new());
        assert!(index.by_domain.is_empty(), "no empty sets left behind");
    }

    #[test]
    fn same_second_falls_back_to_uid() {
        let mut index = Index::default();
        let a = claim("n", "a", "x.example.com", 0);
        let b = claim("n", "b", "x.example.com", 0);
        index.apply(a.clone());
        index.apply(b.clone());
        assert_eq!(
            index.winner(&a.domain, b.created, &b.uid),
            Some(&a.key),
            "uid-a < uid-b"
        );
    }

    #[test]
    fn secrets_map_to_their_users() {
        let mut index = Index::default();
        let mut a = claim("n", "a", "a.example.com", 0);
        a.credentials_secret = Some("closte".into());
        let mut b = claim("m", "b", "b.example.com", 0);
        b.credentials_secret = Some("closte".into());
        index.apply(a.clone());
        index.apply(b);
        assert_eq!(index.users_of_secret("n", "closte"), vec![key("n", "a")]);
        // the reference changes: the old Secret no longer maps to it
        a.credentials_secret = Some("other".into());
        index.apply(a);
        assert!(index.users_of_secret("n", "closte").is_empty());
        assert_eq!(index.users_of_secret("n", "other"), vec![key("n", "a")]);
        index.delete(&key("n", "a"));
        assert!(index.users_of_secret("n", "other").is_empty());
        assert!(!index.by_secret.contains_key(&key("n", "other")));
    }

    #[test]
    fn a_namespace_maps_to_its_objects_without_credentials_ref() {
        let mut index = Index::default();
        let mut with_secret = claim("tenant", "own", "own.example.com", 0);
        with_secret.credentials_secret = Some("closte".into());
        index.apply(with_secret);
        index.apply(claim("tenant", "default", "default.example.com", 0));
        index.apply(claim("other", "elsewhere", "elsewhere.example.com", 0));
        assert_eq!(
            index.default_key_users("tenant"),
            vec![key("tenant", "default")]
        );
        assert!(index.default_key_users("nobody").is_empty());
    }

    #[test]
    fn relist_drops_what_went_while_the_watch_was_down() {
        let mut index = Index::default();
        let winner = claim("a", "winner", "shop.example.com", 0);
        let loser = claim("b", "loser", "shop.example.com", 10);
        index.apply(winner.clone());
        index.apply(loser.clone());
        // the winner was deleted while the watch was down: the re-list lacks it
        index.reset_begin();
        index.apply(loser.clone());
        assert_eq!(
            index.len(),
            2,
            "nothing is dropped before the re-list is complete"
        );
        assert_eq!(index.reset_done(), vec![loser.key.clone()]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.winner(&loser.domain, loser.created, &loser.uid), None);
        assert_eq!(
            index.reset_done(),
            Vec::<ObjectKey>::new(),
            "no re-list in progress"
        );
    }

    #[test]
    fn only_changes_a_pass_reacts_to_are_news() {
        let mut index = Index::default();
        let mut c = claim("n", "a", "a.example.com", 0);
        assert!(index.apply(c.clone()), "a new claim is news");
        c.stage = Some(Stage::Done);
        c.ready = true;
        assert!(
            !index.apply(c.clone()),
            "a status (or finalizer) write is not"
        );
        assert_eq!(
            index.claims().next().unwrap().stage,
            Some(Stage::Done),
            "but it is kept"
        );
        c.trigger = 7;
        assert!(
            index.apply(c),
            "a spec change, deletion or reconcile request is"
        );
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn a_recovery_wakes_its_accounts_waiters_only() {
        let (one, two) = (AccountId(1), AccountId(2));
        let mut index = Index::default();
        let mut waiting = claim("n", "waiting", "a.example.com", 0);
        waiting.closte_failure = Some(at(10));
        let mut late = claim("n", "late", "b.example.com", 0);
        late.closte_failure = Some(at(30));
        let settled = claim("n", "settled", "c.example.com", 0);
        let mut other = claim("m", "other", "d.example.com", 0);
        other.closte_failure = Some(at(10));
        let unknown = {
            let mut c = claim("m", "unknown", "e.example.com", 0);
            c.closte_failure = Some(at(10));
            c
        };
        for c in [&waiting, &late, &settled, &other, &unknown] {
            index.apply(c.clone());
        }
        assert!(
            !index.any_waiting_on(one),
            "no pass has named an account yet"
        );
        for (c, account) in [
            (&waiting, one),
            (&late, one),
            (&settled, one),
            (&other, two),
        ] {
            index.set_account(&c.key, account);
        }
        assert!(index.any_waiting_on(one) && index.any_waiting_on(two));
        assert!(!index.any_waiting_on(AccountId(3)));
        assert_eq!(index.woken_by(one, at(20)), vec![waiting.key.clone()]);
        let mut both = index.woken_by(one, at(40));
        both.sort();
        assert_eq!(both, vec![late.key.clone(), waiting.key.clone()]);
        assert_eq!(index.woken_by(two, at(20)), vec![other.key.clone()]);
        assert!(
            index.woken_by(one, at(9)).is_empty(),
            "not after the failure"
        );
    }

    /// The by-account view after random changes is what a scan of every
    /// claim says.
    #[test]
    fn the_waiting_view_matches_a_full_scan() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut index = Index::default();
        for step in 0..5_000 {
            let name = format!("o{}", rng.u8(..24));
            match rng.u8(..10) {
                0..=4 => {
                    let mut c = claim("n", &name, &format!("{}.example.com", rng.u8(..8)), 0);
                    c.credentials_secret = rng.bool().then(|| format!("s{}", rng.u8(..2)).into());
                    c.closte_failure = rng.bool().then(|| at(rng.i64(0..20)));
                    index.apply(c);
                }
                5..=6 => index.set_account(&key("n", &name), AccountId(rng.u32(..3))),
                7 => {
                    index.delete(&key("n", &name));
                }
                8 => index.reset_begin(),
                _ => {
                    index.reset_done();
                }
            }
            let mut scanned: HashMap<AccountId, HashSet<ObjectKey>> = HashMap::new();
            for c in index.claims() {
                if let (Some(account), Some(_)) = (c.account, c.closte_failure) {
                    scanned.entry(account).or_default().insert(c.key.clone());
                }
            }
            assert_eq!(index.waiting, scanned, "step {step}");
            for account in (0..4).map(AccountId) {
                let recovered = at(rng.i64(0..20));
                let mut woken = index.woken_by(account, recovered);
                woken.sort();
                let mut expected: Vec<ObjectKey> = index
                    .claims()
                    .filter(|c| c.account == Some(account))
                    .filter(|c| {
                        c.closte_failure
                            .is_some_and(|f| plan::answered_since(f, recovered))
                    })
                    .map(|c| c.key.clone())
                    .collect();
                expected.sort();
                assert_eq!(woken, expected, "step {step}");
                assert_eq!(
                    index.any_waiting_on(account),
                    scanned.contains_key(&account)
                );
            }
        }
    }

    #[test]
    fn the_account_outlives_status_writes_but_not_a_new_secret() {
        let mut index = Index::default();
        let mut c = claim("n", "a", "a.example.com", 0);
        c.credentials_secret = Some("closte".into());
        index.apply(c.clone());
        index.set_account(&c.key, AccountId(4));
        // the watch brings the object again (a status write): no account in it
        c.closte_failure = Some(at(10));
        index.apply(c.clone());
        assert_eq!(index.account_of(&c.key), Some(AccountId(4)));
        assert!(index.any_waiting_on(AccountId(4)));
        // another Secret may hold another key: unknown until the next pass
        c.credentials_secret = Some("other".into());
        index.apply(c.clone());
        assert_eq!(index.account_of(&c.key), None);
    }

    #[test]
    fn a_claim_waits_on_closte_failures_only() {
        let failed = |reason: &str| -> MappedDomain {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "closte-operator.io/v1alpha1", "kind": "MappedDomain",
                "metadata": {"name": "a", "namespace": "n", "uid": "u1"},
                "spec": {"domain": "a.example.com"},
                "status": {"failedAttempts": 3, "lastFailureTime": "2026-11-24T10:00:00Z",
                    "conditions": [{"type": "Registered", "status": "False", "reason": reason,
                                    "message": "", "lastTransitionTime": "2026-11-24T10:00:00Z"}]}
            }))
            .unwrap()
        };
        let when = Some("2026-11-24T10:00:00Z".parse().unwrap());
        for reason in ["ClosteUnavailable", "RateLimited", "UnexpectedAnswer"] {
            let claim = Claim::from_resource(&failed(reason));
            assert_eq!(claim.closte_failure, when, "{reason}");
        }
        for reason in [
            "DomainRejected",
            "CredentialsRejected",
            "CredentialsNotFound",
            "Added",
        ] {
            let claim = Claim::from_resource(&failed(reason));
            assert_eq!(claim.closte_failure, None, "{reason}");
        }
    }

    #[test]
    fn claims_keep_what_metrics_read() {
        let md: MappedDomain = serde_json::from_value(serde_json::json!({
            "apiVersion": "closte-operator.io/v1alpha1", "kind": "MappedDomain",
            "metadata": {"name": "a", "namespace": "n", "uid": "u1",
                         "creationTimestamp": "2026-11-24T10:00:00Z"},
            "spec": {"domain": "a.example.com", "credentialsRef": {"name": "s", "key": "k"}},
            "status": {"stage": "done",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                                "lastTransitionTime": "2026-11-24T10:00:00Z"}],
                "certificate": {"issuer": "i", "subject": "s", "serialNumber": "01",
                    "notBefore": "2026-11-24T10:00:00Z", "notAfter": "2027-01-01T00:00:00Z",
                    "sha256Fingerprint": "AA"}}
        }))
        .unwrap();
        let claim = Claim::from_resource(&md);
        assert_eq!(claim.key, key("n", "a"));
        assert_eq!(claim.credentials_secret.as_deref(), Some("s"));
        assert!(claim.ready);
        assert_eq!(claim.stage, Some(Stage::Done));
        assert_eq!(claim.cert_not_after, Some(1_798_761_600));
        let mut deleting = md.clone();
        deleting.metadata.deletion_timestamp = deleting.metadata.creation_timestamp.clone();
        assert_ne!(Claim::from_resource(&deleting).trigger, claim.trigger);
        let mut status_only = md.clone();
        status_only.status.as_mut().unwrap().stage = Some(Stage::Failed);
        assert_eq!(Claim::from_resource(&status_only).trigger, claim.trigger);
        let mut finalized = md.clone();
        finalized.metadata.finalizers = Some(vec![crate::api::FINALIZER.into()]);
        assert_eq!(Claim::from_resource(&finalized).trigger, claim.trigger);
    }
}
