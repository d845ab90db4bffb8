//! The decision `weft audit` reaches, following `shared/AUDIT-FRAMEWORK.md`: the five reasons
//! that justify a mesh, the signs that it costs more than it gives, and what cannot be
//! observed, asked as questions. The inputs are what the traffic showed ([`Observed`]); the
//! rules are here, in one place, so they can be read and tested apart from the counting.

use serde::Serialize;

/// Services below this number are "few" (the framework's threshold).
pub const FEW_SERVICES: usize = 10;
/// Services at or above this number make uniform observability a reason of its own.
pub const MANY_SERVICES: usize = 50;
/// An edge failing more than this share of its calls hints at an architecture problem.
pub const FAILING_EDGE: f64 = 0.05;

/// What the window's traffic showed, as the framework asks it.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Services that took requests in the window.
    pub services_with_traffic: usize,
    /// Namespaces whose workloads sent or took requests (owners, roughly).
    pub namespaces_with_traffic: usize,
    /// Hosts (networks) whose workloads took part, and calls that crossed between them.
    pub hosts_with_traffic: usize,
    pub cross_host_calls: f64,
    /// Inbound requests, and those over mutual TLS.
    pub requests_in: f64,
    pub requests_in_mtls: f64,
    /// Workloads whose peer authentication is STRICT.
    pub strict_workloads: usize,
    /// Routes whose split or header matches moved traffic to more than one backend.
    pub routes_that_moved_traffic: usize,
    /// Routes that declare a split or header matches but sent everything one way.
    pub routing_configured_unused: usize,
    /// Authorization decisions by a policy (not the default allow): denies and audits too.
    pub authz_decisions: f64,
    pub authz_denied: f64,
    /// AuthorizationPolicies that decided nothing in the window.
    pub authz_policies_idle: usize,
    /// The busiest failing edge: its name and its failure share.
    pub worst_edge: Option<(String, f64)>,
    pub retries: f64,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// The traffic shows reasons that justify the mesh.
    MeshJustified,
    /// Some reason shows, but not enough to be sure: the questions decide.
    Unclear,
    /// Nothing the mesh does here could not be done more simply.
    MeshNotNeeded,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub answer: Answer,
    /// The reasons for a mesh the traffic showed.
    pub reasons: Vec<String>,
    /// The reasons it did not show.
    pub reasons_not_seen: Vec<String>,
    /// Signs that the mesh costs more than it gives.
    pub signs_against: Vec<String>,
    /// What traffic cannot tell: for the reader to answer.
    pub questions: Vec<String>,
}

/// The verdict on `o`.
pub fn decide(o: &Observed) -> Verdict {
    let mut reasons = Vec::new();
    let mut not_seen = Vec::new();
    let mtls_share = share(o.requests_in_mtls, o.requests_in);
    if o.strict_workloads > 0 && o.requests_in_mtls > 0.0 {
        reasons.push(format!(
            "mTLS between services is required and used: {} workload(s) STRICT, {:.1}% of requests in over mutual TLS",
            o.strict_workloads,
            mtls_share * 100.0
        ));
    } else {
        not_seen.push(format!(
            "mTLS as a requirement: no workload is STRICT ({:.1}% of requests in were mutual TLS by default)",
            mtls_share * 100.0
        ));
    }
    if o.routes_that_moved_traffic > 0 {
        reasons.push(format!(
            "traffic routing without code changes: {} route(s) split or matched traffic to more than one backend",
            o.routes_that_moved_traffic
        ));
    } else {
        not_seen.push("complex routing: no split or header match moved traffic".into());
    }
    if o.services_with_traffic >= MANY_SERVICES {
        reasons.push(format!(
            "uniform observability: {} services in {} namespace(s) produced traffic",
            o.services_with_traffic, o.namespaces_with_traffic
        ));
    } else {
        not_seen.push(format!(
            "observability at scale: {} services produced traffic (the framework's mark is {MANY_SERVICES}+ owned by different teams)",
            o.services_with_traffic
        ));
    }
    if o.authz_decisions > 0.0 {
        reasons.push(format!(
            "fine-grained authorization: policies decided {} request(s), {} denied",
            o.authz_decisions, o.authz_denied
        ));
    } else {
        not_seen
            .push("fine-grained authorization: no AuthorizationPolicy decided a request".into());
    }
    if o.hosts_with_traffic > 1 && o.cross_host_calls > 0.0 {
        reasons.push(format!(
            "one traffic layer across machines: {} hosts, {} call(s) crossed between them",
            o.hosts_with_traffic, o.cross_host_calls
        ));
    } else {
        not_seen.push("multi-host or multi-cluster scale: traffic stayed on one host".into());
    }

    let mut signs = Vec::new();
    if o.services_with_traffic < FEW_SERVICES {
        signs.push(format!(
            "few services: {} produced traffic (fewer than {FEW_SERVICES})",
            o.services_with_traffic
        ));
    }
    let mut unused = Vec::new();
    if o.routing_configured_unused > 0 {
        unused.push(format!(
            "{} route(s) with a split or header match sent all their traffic one way",
            o.routing_configured_unused
        ));
    }
    if o.authz_policies_idle > 0 {
        unused.push(format!(
            "{} AuthorizationPolicy(ies) matched no request",
            o.authz_policies_idle
        ));
    }
    if !unused.is_empty() {
        signs.push(format!(
            "solving a future problem? configured but not exercised: {}",
            unused.join("; ")
        ));
    }
    if let Some((edge, failed)) = o.worst_edge.as_ref().filter(|(_, f)| *f > FAILING_EDGE) {
        signs.push(format!(
            "the architecture may be the problem: {edge} failed {:.1}% of its calls (a mesh masks this, it does not fix it)",
            failed * 100.0
        ));
    }

    let questions = vec![
        "How many engineers will operate the mesh? Teams that adopted one well had a median of 30+; fewer than 5 is a sign against.".to_string(),
        "Is encrypted, authenticated service-to-service traffic a compliance or security requirement (PCI DSS, HIPAA, zero trust)?".to_string(),
        "Do these services run on Kubernetes, or will they? Meshes are built for it (Weft's hosts mode weakens this sign).".to_string(),
        "Do the services already have retries, timeouts and tracing in their HTTP clients (Resilience4j, Polly, OpenTelemetry SDKs)?".to_string(),
    ];
    let answer =
        if reasons.len() >= 2 || (!reasons.is_empty() && o.services_with_traffic >= FEW_SERVICES) {
            Answer::MeshJustified
        } else if reasons.is_empty() && o.services_with_traffic < FEW_SERVICES {
            Answer::MeshNotNeeded
        } else {
            Answer::Unclear
        };
    Verdict {
        answer,
        reasons,
        reasons_not_seen: not_seen,
        signs_against: signs,
        questions,
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// The library-level alternative to one capability, and what switching to it would take.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    pub alternative: &'static str,
    pub complexity: &'static str,
    pub switching: &'static str,
}

/// The alternative to capability `id` (as the report names capabilities).
pub fn alternative(id: &str) -> Option<Alternative> {
    let (alternative, complexity, switching) = match id {
        "mtls" => (
            "cert-manager issuing certificates, mounted as Secrets, and TLS in each service",
            "medium",
            "every service loads and reloads its certificate and verifies its peers; rotation becomes each service's job",
        ),
        "routing" => (
            "Argo Rollouts or Flagger for canaries; an API gateway (Kong, Traefik, Envoy Gateway) for header routes at the edge",
            "low–medium",
            "canaries move to the deploy pipeline; header routing between internal services needs code or a gateway in the path",
        ),
        "retries" | "timeouts" | "ejections" | "limits" => (
            "library-level resilience: Resilience4j (JVM), Polly (.NET), retry interceptors in the HTTP client",
            "low",
            "each service configures retries with a budget, timeouts and circuit breaking in its client, in each language",
        ),
        "authorization" => (
            "OPA (Open Policy Agent) as a sidecar or library, called by each service",
            "medium",
            "each service asks OPA before serving; caller identity must come from somewhere (mTLS or tokens) first",
        ),
        "rate-limits" => (
            "a rate-limit middleware in each service, or at an API gateway",
            "low",
            "limits per caller need the caller's identity, which a gateway or tokens must provide",
        ),
        "observability" => (
            "the OpenTelemetry SDK in each service, exporting to a collector",
            "medium",
            "every service is instrumented and kept up to date; metrics stay uniform only by convention",
        ),
        "faults" => (
            "chaos tooling (Chaos Mesh, Litmus) or fault flags in the code",
            "low–medium",
            "faults are injected per test rather than by a rule on the route",
        ),
        _ => return None,
    };
    Some(Alternative {
        alternative,
        complexity,
        switching,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_app_with_no_policies_needs_no_mesh() {
        let v = decide(&Observed {
            services_with_traffic: 2,
            namespaces_with_traffic: 1,
            hosts_with_traffic: 1,
            requests_in: 1000.0,
            requests_in_mtls: 1000.0,
            ..Observed::default()
        });
        assert_eq!(v.answer, Answer::MeshNotNeeded);
        assert!(v.reasons.is_empty());
        assert!(v.signs_against[0].starts_with("few services: 2"));
        assert_eq!(v.reasons_not_seen.len(), 5);
    }

    #[test]
    fn strict_mtls_splits_and_authorization_justify_it_even_when_small() {
        let v = decide(&Observed {
            services_with_traffic: 3,
            namespaces_with_traffic: 1,
            hosts_with_traffic: 1,
            requests_in: 1000.0,
            requests_in_mtls: 1000.0,
            strict_workloads: 4,
            routes_that_moved_traffic: 1,
            authz_decisions: 500.0,
            authz_denied: 20.0,
            ..Observed::default()
        });
        assert_eq!(v.answer, Answer::MeshJustified);
        assert_eq!(v.reasons.len(), 3, "{:?}", v.reasons);
        // Still small: the sign stays, stated, beside the reasons.
        assert!(v
            .signs_against
            .iter()
            .any(|s| s.starts_with("few services")));
    }

    #[test]
    fn one_reason_in_a_small_app_is_unclear_and_a_failing_edge_is_a_sign() {
        let v = decide(&Observed {
            services_with_traffic: 4,
            authz_decisions: 10.0,
            worst_edge: Some(("shop/a → shop/b".into(), 0.2)),
            ..Observed::default()
        });
        assert_eq!(v.answer, Answer::Unclear);
        assert!(v
            .signs_against
            .iter()
            .any(|s| s.contains("shop/a → shop/b failed 20.0%")));
        assert!(alternative("mtls").is_some() && alternative("nonsense").is_none());
    }
}
