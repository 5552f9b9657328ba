//! `closte-operator status NAME` (also `kubectl closte status NAME`): one
//! screen about one domain — its conditions and stage, whether the alias is
//! on Closte, what DNS answers now, which certificate the domain serves — and
//! what to do next. Built on the controller's [`gather`]: the same facts a
//! pass reads, plus a live DNS/TLS check. The diagnosis itself is pure.

use std::sync::{Arc, RwLock};

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;

use crate::api::conditions::{ConditionType, Reason};
use crate::api::{MappedDomain, Stage};
use crate::closte::{Accounts, ClosteArgs, ClosteClient, FlowSettings, KeyArgs};
use crate::controller::gate::ApiGate;
use crate::controller::gather::{self, Observe, Sources};
use crate::index::{Claim, Index};
use crate::plan::proof::{ProofCheck, ProofOutcome};
use crate::plan::{Check, Credentials, DefaultKeyScope, Facts, Observation, Settings};
use crate::probe::{ProbeArgs, Prober};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Name of the MappedDomain.
    pub name: String,
    /// Namespace of the MappedDomain; default: the kubeconfig context's.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output for people (text) or scripts (json).
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub closte: ClosteArgs,
    /// The controller's key, for objects without spec.credentialsRef.
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("MappedDomain {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error(transparent)]
    Client(#[from] crate::closte::client::BuildError),
    #[error(transparent)]
    Gather(#[from] crate::controller::Error),
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub namespace: String,
    pub name: String,
    pub domain: String,
    pub ready: bool,
    pub stage: Option<Stage>,
    pub conditions: Vec<ConditionLine>,
    /// On Closte now: `present`, `absent` or `unknown`, and why unknown.
    pub closte: String,
    pub closte_detail: Option<String>,
    pub dns: Option<DnsLine>,
    /// The proof request, when the verification mode asked for one.
    pub proof: Option<ProofLine>,
    pub certificate: Option<CertificateLine>,
    /// What to do next, most pressing first; empty when nothing is wrong.
    pub next: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionLine {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsLine {
    pub verdict: String,
    pub records: Vec<String>,
    pub expected: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofLine {
    pub result: String,
    pub url: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateLine {
    pub verdict: String,
    pub issuer: Option<String>,
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    pub message: String,
}

/// Reads the object and the world, and diagnoses.
pub async fn run(args: &StatusArgs) -> Result<Report, StatusError> {
    crate::tls::install_crypto_provider();
    let client = Client::try_default().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<MappedDomain> = Api::namespaced(client.clone(), &namespace);
    let md = api
        .get_opt(&args.name)
        .await?
        .ok_or(StatusError::NotFound {
            namespace: namespace.clone(),
            name: args.name.clone(),
        })?;
    let closte = ClosteClient::new(&args.closte.client_config())?;
    let prober = Arc::new(Prober::from_args(&args.probe)?);
    let sources = Sources {
        client: client.clone(),
        // one object's few reads
        gate: ApiGate::new(4),
        accounts: Arc::new(Accounts::new(
            closte,
            FlowSettings::default(),
            Settings::RESYNC,
        )),
        default_key: args.key.load().ok(),
        default_key_scope: default_key_scope(&md),
        namespaces: None,
        prober: prober.clone(),
        settings: Settings::default(),
        index: Arc::new(RwLock::new(claims(&client, &namespace).await?)),
    };
    let gathered = gather::gather(&md, &sources, None, Observe::Always).await?;
    let check = match &gathered.domain {
        Some(domain) if gathered.facts.conflict.is_none() => {
            let ns = md.namespace().unwrap_or_default();
            let token = gather::proof_token(&sources, prober.proof_secret.as_deref(), &ns).await;
            Some(gather::check(&prober, domain, &md.spec, token.as_deref()).await)
        }
        _ => None,
    };
    Ok(diagnose(&md, &gathered.facts, check.as_ref()))
}

/// Where the default key may be used, as far as `status` knows: it cannot see
/// the controller's flags, so it takes the controller's word when that found
/// the key not allowed for this object (and so does not spend it either).
fn default_key_scope(md: &MappedDomain) -> DefaultKeyScope {
    let refused = md
        .status
        .as_ref()
        .and_then(|s| s.reason(ConditionType::Registered))
        == Some(Reason::DefaultKeyNotAllowed);
    if refused && md.spec.credentials_ref.is_none() {
        DefaultKeyScope::from_flags(Some(&[]), None)
    } else {
        DefaultKeyScope::Everywhere
    }
}

/// Every claim the caller may read: all namespaces if allowed, else this one.
async fn claims(client: &Client, namespace: &str) -> Result<Index, StatusError> {
    let all: Api<MappedDomain> = Api::all(client.clone());
    let list = match all.list(&ListParams::default()).await {
        Ok(list) => list,
        Err(kube::Error::Api(e)) if e.code == 403 => {
            Api::<MappedDomain>::namespaced(client.clone(), namespace)
                .list(&ListParams::default())
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut index = Index::default();
    for md in &list.items {
        index.apply(Claim::from_resource(md));
    }
    Ok(index)
}

/// The report on `md` from the facts a pass would gather and a live check.
pub fn diagnose(md: &MappedDomain, facts: &Facts<'_>, check: Option<&Check>) -> Report {
    let status = md.status.as_ref();
    let conditions = status
        .map(|s| {
            s.conditions
                .iter()
                .map(|c| ConditionLine {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let (closte, closte_detail) = match &facts.observation {
        Observation::Present => ("present", None),
        Observation::Absent => ("absent", None),
        Observation::Failed(f) => ("unknown", Some(f.message.clone())),
        Observation::NotObserved => ("unknown", Some(not_observed_why(facts))),
    };
    let dns = check.map(|c| DnsLine {
        verdict: c.dns.reason.as_str().into(),
        records: c.dns.records.clone(),
        expected: c.expected.clone(),
        message: c.dns.message.clone(),
    });
    let proof = check.and_then(|c| c.proof.as_ref()).map(|p| ProofLine {
        result: p.reason().as_str().into(),
        url: p.url.clone(),
        message: p.message.clone(),
    });
    let certificate = check.and_then(|c| c.tls.as_ref()).map(|tls| {
        let cert = tls.certificate.as_ref();
        CertificateLine {
            verdict: tls.reason.as_str().into(),
            issuer: cert.map(|c| c.issuer.clone()),
            not_after: cert.map(|c| c.not_after.0.to_string()),
            days_left: cert.map(|c| c.not_after.0.duration_since(facts.now).as_secs() / 86_400),
            message: tls.message.clone(),
        }
    });
    let ready = status.is_some_and(|s| s.is_true(ConditionType::Ready));
    Report {
        namespace: md.namespace().unwrap_or_default(),
        name: md.name_any(),
        domain: md.spec.domain.clone(),
        ready,
        stage: status.and_then(|s| s.stage),
        conditions,
        closte: closte.into(),
        closte_detail,
        dns,
        proof,
        certificate,
        next: advice(md, facts, check),
    }
}

fn not_observed_why(facts: &Facts<'_>) -> String {
    if let Some(winner) = &facts.conflict {
        return format!(
            "not asked: {}/{} claims the domain first",
            winner.namespace, winner.name
        );
    }
    if let Some((_, problem)) = facts.credentials.problem() {
        return format!("not asked: {problem}");
    }
    match &facts.invalid_domain {
        Some(problem) => format!("not asked: {problem}"),
        None => "not asked".into(),
    }
}

/// What to do, from what is wrong: Closte first, then DNS, then the certificate.
fn advice(md: &MappedDomain, facts: &Facts<'_>, check: Option<&Check>) -> Vec<String> {
    let domain = &md.spec.domain;
    let mut next = Vec::new();
    if let Some(winner) = &facts.conflict {
        next.push(format!(
            "MappedDomain {}/{} claimed {domain} first; delete one of the two (this one will not touch Closte)",
            winner.namespace, winner.name
        ));
        return next;
    }
    if md.spec.suspend == Some(true) {
        next.push(
            "spec.suspend is true: set it to false to let the controller write to Closte".into(),
        );
    }
    next.extend(credentials_advice(md, facts));
    match &facts.observation {
        Observation::Absent if facts.credentials.label().is_some() => next.push(format!(
            "{domain} is not on Closte yet: the controller adds it on its next pass; if it does not, read its log and events (kubectl describe md {})",
            md.name_any()
        )),
        Observation::Failed(f) => match f.reason {
            Reason::CredentialsRejected => {} // said above
            Reason::DomainRejected => next.push(format!(
                "Closte refused {domain}: check its spelling; spec.domain is immutable, so create a MappedDomain with the right name and delete this one"
            )),
            _ => next.push(format!(
                "Closte did not answer ({}); the controller retries with backoff; `closte-operator check` tests the connection",
                f.message
            )),
        },
        _ => {}
    }
    if let Some(check) = check {
        next.extend(dns_advice(domain, check));
        next.extend(certificate_advice(md, facts, check));
    }
    next
}

fn credentials_advice(md: &MappedDomain, facts: &Facts<'_>) -> Option<String> {
    let rejected = matches!(&facts.observation, Observation::Failed(f) if f.reason == Reason::CredentialsRejected)
        || md
            .status
            .as_ref()
            .and_then(|s| s.reason(ConditionType::Registered))
            == Some(Reason::CredentialsRejected);
    let source = match &md.spec.credentials_ref {
        Some(r) => format!("key {:?} of Secret {:?} in this namespace", r.key, r.name),
        None => "the controller's own key (CLOSTE_CLIENT_API_KEY or --api-key-file)".into(),
    };
    match &facts.credentials {
        Credentials::DefaultKeyNotAllowed { namespace } => Some(format!(
            "the controller's own key is not allowed in namespace {namespace}: name a Secret holding the site's API key in spec.credentialsRef, or ask the platform's admins to allow the namespace (--default-key-namespaces, or a namespace label matching --default-key-namespace-selector)"
        )),
        Credentials::SecretNotFound { .. }
        | Credentials::KeyNotInSecret { .. }
        | Credentials::NoDefaultKey => Some(format!(
            "no Closte API key could be read: create {source} with the site's API key"
        )),
        _ if rejected => Some(format!(
            "Closte refused the API key ({source}): copy the site's key from the Closte dashboard; `closte-operator check --api-key-file FILE` must say accepted"
        )),
        _ => None,
    }
}

fn dns_advice(domain: &str, check: &Check) -> Option<String> {
    let expected = if check.expected.is_empty() {
        "the Closte site's address".to_owned()
    } else {
        check.expected.join(" or ")
    };
    let records = check.dns.records.join(", ");
    if let Some(proof) = &check.proof {
        return proof_advice(domain, &records, proof);
    }
    Some(match check.dns.reason {
        Reason::Matched => return None,
        Reason::NxDomain => format!(
            "{domain} does not exist in DNS: at its DNS provider, add an A record pointing at {expected} (or a CNAME to the site's hostname)"
        ),
        Reason::NoAnswer => format!("{domain} has no A or AAAA record: point it at {expected}"),
        Reason::TargetMismatch => format!(
            "DNS for {domain} answers {records}, not {expected}: change the A (or CNAME) record; the old answer may linger for the record's TTL"
        ),
        _ => format!(
            "DNS could not be asked ({}); try again, or check the resolver",
            check.dns.message
        ),
    })
}

/// The next step when the domain was asked for its proof.
fn proof_advice(domain: &str, records: &str, proof: &ProofCheck) -> Option<String> {
    Some(match proof.outcome {
        ProofOutcome::Proven => return None,
        ProofOutcome::OtherNetwork => format!(
            "{domain} ({records}) answers another WordPress network's proof: its DNS or its proxy's origin points at another site; point it at this network"
        ),
        ProofOutcome::NotFound => format!(
            "{domain} ({records}) answers 404 to the proof: no site of this network has this domain, or the proxy in front sends it elsewhere"
        ),
        ProofOutcome::Unexpected => format!(
            "{domain} ({records}) answers something that is no proof ({}): a parked page, an error, or a redirect to another host",
            proof.message
        ),
        ProofOutcome::Unreachable => format!(
            "{domain} could not be asked for its proof ({}): check DNS, the proxy and that HTTPS answers",
            proof.message
        ),
        ProofOutcome::NoToken => format!(
            "{domain} needs its proof (verification HTTP), and the controller has no WordPress token for this namespace: give the controller --proof-secret (the chart does when sidecar.namespaces lists this namespace) and create that Secret here, or use verification Auto or DNS"
        ),
    })
}

fn certificate_advice(md: &MappedDomain, facts: &Facts<'_>, check: &Check) -> Option<String> {
    let domain = &md.spec.domain;
    let tls = check.tls.as_ref()?;
    let registered = md.status.as_ref().and_then(|s| s.registered_at.as_ref());
    let waited = registered.map(|t| facts.now.duration_since(t.0).as_secs() / 60);
    Some(match tls.reason {
        Reason::Valid => {
            let not_after = tls.certificate.as_ref()?.not_after.0;
            let left = not_after.duration_since(facts.now);
            if left.as_secs() > facts.settings.probe.renew_warning.as_secs() as i64 {
                return None;
            }
            format!(
                "the certificate expires at {not_after} and no renewed one has appeared: Closte renews it by itself; if it does not within days, ask Closte support"
            )
        }
        Reason::HostnameMismatch | Reason::Untrusted | Reason::HandshakeFailed => match waited {
            Some(minutes) if minutes < 60 => format!(
                "no valid certificate for {domain} yet: Closte issues it once DNS points at the site, usually 5 to 10 minutes after; registered {minutes} min ago, so wait"
            ),
            _ => format!(
                "no valid certificate for {domain} after an hour ({}): check that DNS points only at the site (no other A/AAAA records), then ask Closte support",
                tls.message
            ),
        },
        Reason::Expired => {
            format!("the certificate {domain} serves has expired: ask Closte support to renew it")
        }
        Reason::NotYetValid => "the certificate is not valid yet: check the clocks, or wait".into(),
        _ => format!(
            "nothing answers HTTPS for {domain} ({}): check that DNS points at the site",
            tls.message
        ),
    })
}

/// The report as people read it.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let stage = report.stage.map_or("-", Stage::as_str);
    let ready = if report.ready { "Ready" } else { "not Ready" };
    let _ = writeln!(
        out,
        "{}/{}  {}  stage {stage}, {ready}",
        report.namespace, report.name, report.domain
    );
    let _ = writeln!(out, "\nConditions");
    for c in &report.conditions {
        let _ = writeln!(
            out,
            "  {:<17} {:<8} {:<24} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    let detail = report
        .closte_detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let _ = writeln!(out, "\nOn Closte      {}{detail}", report.closte);
    match &report.dns {
        Some(dns) => {
            let _ = writeln!(out, "DNS            {}: {}", dns.verdict, dns.message);
        }
        None => {
            let _ = writeln!(out, "DNS            not checked");
        }
    }
    if let Some(proof) = &report.proof {
        let _ = writeln!(out, "Proof          {}: {}", proof.result, proof.message);
    }
    match &report.certificate {
        Some(cert) => {
            let until = cert.not_after.as_deref().unwrap_or("-");
            let left = cert
                .days_left
                .map(|d| format!(", {d} days left"))
                .unwrap_or_default();
            let issuer = cert.issuer.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "Certificate    {}: issued by {issuer}, valid until {until}{left}",
                cert.verdict
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Certificate    not checked (checked once DNS is right)"
            );
        }
    }
    let _ = writeln!(out, "\nNext");
    if report.next.is_empty() {
        let _ = writeln!(out, "  nothing to do");
    }
    for step in &report.next {
        let _ = writeln!(out, "  - {step}");
    }
    out
}

#[cfg(test)]
mod tests {

    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::api::MappedDomainSpec;
    use crate::plan::{Acted, Action, Finalizer, Outcome, Plan};

    #[test]
    fn a_default_key_not_allowed_says_what_to_do() {
        let spec = MappedDomainSpec {
            domain: "shop.example.com".into(),
            ..MappedDomainSpec::default()
        };
        let mut md = MappedDomain::new("shop", spec.clone());
        md.metadata.namespace = Some("tenant".into());
        let mut facts = Facts {
            now: Timestamp::from_second(1_800_000_000).unwrap(),
            generation: Some(1),
            spec: &spec,
            previous: None,
            deleting: false,
            finalizer: Some(Finalizer::Plain),
            reconcile_request: None,
            conflict: None,
            credentials: Credentials::DefaultKeyNotAllowed {
                namespace: "tenant".into(),
            },
            rejected_key: None,
            invalid_domain: None,
            observation: Observation::NotObserved,
            account_recovered: None,
            written_check_time: None,
            settings: Settings::default(),
        };
        // the status the controller wrote
        let Plan::Act { action, .. } = crate::plan::decide(&facts) else {
            panic!("acts")
        };
        assert_eq!(action, Action::Nothing);
        let acted = Acted::new(&facts, action, Outcome::Idle);
        let written = crate::plan::conclude(&facts, &acted, None, 0.5).status;
        md.status = Some(written.clone());
        assert_eq!(
            default_key_scope(&md),
            DefaultKeyScope::from_flags(Some(&[]), None),
            "status takes the controller's word and spends no key"
        );
        facts.previous = Some(&written);
        let text = render(&diagnose(&md, &facts, None));
        println!("{text}");
        assert!(
            text.contains("Stalled           True     DefaultKeyNotAllowed"),
            "{text}"
        );
        assert!(
            text.contains("On Closte      unknown (not asked: no spec.credentialsRef"),
            "{text}"
        );
        assert!(
            text.contains(
                "- the controller's own key is not allowed in namespace tenant: name a Secret"
            ),
            "{text}"
        );
        assert!(!text.contains("adds it on its next pass"), "{text}");
    }

    #[test]
    fn each_failed_proof_says_what_to_check() {
        let proof = |outcome| ProofCheck {
            outcome,
            url: "https://shop.example.com/.well-known/closte-operator/n".into(),
            message: "seen".into(),
            latency: std::time::Duration::ZERO,
        };
        let advice = |outcome| proof_advice("shop.example.com", "198.51.100.7", &proof(outcome));
        assert_eq!(advice(ProofOutcome::Proven), None);
        for (outcome, words) in [
            (ProofOutcome::OtherNetwork, "another WordPress network"),
            (ProofOutcome::NotFound, "404"),
            (ProofOutcome::Unexpected, "parked page"),
            (ProofOutcome::Unreachable, "could not be asked"),
            (ProofOutcome::NoToken, "--proof-secret"),
        ] {
            let text = advice(outcome.clone()).unwrap_or_default();
            assert!(text.contains(words), "{outcome:?}: {text}");
            assert!(text.contains("shop.example.com"), "{text}");
        }
    }
}
