//! Which namespaces the controller's own API key serves. The key pays for
//! the platform's Closte account: an object without `spec.credentialsRef`
//! spends it only where the platform allows (`--default-key-namespaces`,
//! `--default-key-namespace-selector`); elsewhere it is stalled with
//! `DefaultKeyNotAllowed` and never reaches Closte.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Selector, SelectorExt};

/// The namespaces where objects without `spec.credentialsRef` may use the
/// controller's own key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DefaultKeyScope {
    /// Neither flag given: every namespace.
    #[default]
    Everywhere,
    /// The named namespaces, and those whose labels match the selector.
    Only {
        namespaces: BTreeSet<String>,
        selector: Option<Selector>,
    },
}

impl DefaultKeyScope {
    /// The scope of the flags: `namespaces` is `None` when the list flag was
    /// not given (given empty, it names no namespace).
    pub fn from_flags(namespaces: Option<&[String]>, selector: Option<Selector>) -> Self {
        if namespaces.is_none() && selector.is_none() {
            return DefaultKeyScope::Everywhere;
        }
        let namespaces = namespaces
            .unwrap_or_default()
            .iter()
            .map(|ns| ns.trim())
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned)
            .collect();
        DefaultKeyScope::Only {
            namespaces,
            selector,
        }
    }

    /// The selector namespaces' labels are matched against, if any: the
    /// controller must then watch Namespaces.
    pub fn selector(&self) -> Option<&Selector> {
        match self {
            DefaultKeyScope::Everywhere => None,
            DefaultKeyScope::Only { selector, .. } => selector.as_ref(),
        }
    }

    /// Whether deciding for `namespace` needs its labels.
    pub fn needs_labels(&self, namespace: &str) -> bool {
        match self {
            DefaultKeyScope::Everywhere => false,
            DefaultKeyScope::Only {
                namespaces,
                selector,
            } => selector.is_some() && !namespaces.contains(namespace),
        }
    }

    /// Whether objects in `namespace` may use the controller's own key.
    /// `labels` are the namespace's, `None` when unknown (not needed, or the
    /// namespace is not seen): an unknown namespace matches no selector.
    pub fn allows(&self, namespace: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        match self {
            DefaultKeyScope::Everywhere => true,
            DefaultKeyScope::Only {
                namespaces,
                selector,
            } => {
                namespaces.contains(namespace)
                    || matches!((selector, labels), (Some(s), Some(l)) if s.matches(l))
            }
        }
    }
}
