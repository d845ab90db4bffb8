//! Which RequestAuthentications apply to a proxy's workload (scoped exactly as
//! AuthorizationPolicies are), with the key sets fetched from `jwksUri`s put in place.

use crate::model::{AuthzPolicyModel, Model};
use crate::view::authn::JwtPolicyView;
use crate::view::WorkloadView;

/// The JWT policies for a proxy beside `workload` (or, without one, in `namespace`).
pub fn policies_for(
    model: &Model,
    workload: Option<&WorkloadView>,
    namespace: &str,
) -> Vec<JwtPolicyView> {
    let mut out: Vec<JwtPolicyView> = model
        .jwt_policies
        .iter()
        .filter_map(|p| {
            // The same scoping as AuthorizationPolicy: borrow its resolution through a shell.
            let shell = AuthzPolicyModel {
                scope: p.scope.clone(),
                view: crate::view::authz::AuthzPolicyView {
                    namespace: p.view.namespace.clone(),
                    name: p.view.name.clone(),
                    action: crate::view::authz::AuthzAction::Allow,
                    source: String::new(),
                    ports: None,
                    rules: None,
                },
            };
            let applied = super::authz::applies(model, &shell, workload, namespace)?;
            let mut view = p.view.clone();
            view.ports = applied.ports;
            for rule in &mut view.rules {
                if rule.jwks.is_some() {
                    continue;
                }
                let uri = rule.jwks_uri.clone().unwrap_or_else(|| discovery_uri(&rule.issuer));
                match model.fetched_jwks.get(&uri) {
                    Some(Ok(jwks)) => rule.jwks = Some(jwks.clone()),
                    Some(Err(e)) => rule.jwks_error = Some(e.clone()),
                    None => rule.jwks_error = Some(format!("the key set at {uri} has not been fetched (a proxy without a control plane cannot fetch it: give `jwks` inline)")),
                }
            }
            Some(view)
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// Where OpenID Connect discovery looks for an issuer's configuration, when a rule names no
/// key set: the fetcher reads `jwks_uri` from there.
pub fn discovery_uri(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Every key set URI the model's rules need fetched: their `jwksUri`, or the issuer's OpenID
/// Connect discovery document when they name neither.
pub fn uris_to_fetch(model: &Model) -> Vec<(String, std::time::Duration)> {
    let mut out: Vec<(String, std::time::Duration)> = Vec::new();
    for p in &model.jwt_policies {
        for (i, r) in p.view.rules.iter().enumerate() {
            if r.jwks.is_some() {
                continue;
            }
            let uri = r
                .jwks_uri
                .clone()
                .unwrap_or_else(|| discovery_uri(&r.issuer));
            let timeout = p
                .fetch_timeouts
                .get(i)
                .copied()
                .unwrap_or(std::time::Duration::from_secs(5));
            if !out.iter().any(|(u, _)| *u == uri) {
                out.push((uri, timeout));
            }
        }
    }
    out
}
