//! A snapshot's request authentication: the workload's RequestAuthentication rules with their
//! key sets parsed once (off the request path), ready for the authn stage.

use std::sync::Arc;

use weft_api::view::authn::{JwtPolicyView, JwtRuleView};
use weft_policy::jwt::Jwks;

pub struct AuthnState {
    policies: Vec<PolicyState>,
}

struct PolicyState {
    ports: Option<Vec<u16>>,
    rules: Vec<Arc<RuleState>>,
}

/// One `jwtRules` entry, compiled.
pub struct RuleState {
    pub view: JwtRuleView,
    /// The parsed key set, or why there is none (a failed fetch, a set with no usable key):
    /// tokens for this rule are then refused.
    pub keys: Result<Jwks, String>,
    /// `namespace/name` of its policy.
    pub policy: String,
    /// Tokens this rule has verified (in this snapshot).
    pub cache: super::token_cache::TokenCache,
}

impl AuthnState {
    pub fn none() -> AuthnState {
        AuthnState {
            policies: Vec::new(),
        }
    }

    pub fn build(views: &[JwtPolicyView]) -> AuthnState {
        let policies = views
            .iter()
            .map(|p| PolicyState {
                ports: p.ports.clone(),
                rules: p
                    .rules
                    .iter()
                    .map(|r| {
                        let keys = match (&r.jwks, &r.jwks_error) {
                            (Some(json), _) => Jwks::parse(json).map_err(|e| e.to_string()),
                            (None, Some(e)) => Err(e.clone()),
                            (None, None) => Err("no key set".to_string()),
                        };
                        if let Err(e) = &keys {
                            tracing::warn!(policy = %p.label(), issuer = %r.issuer, error = %e, "no key set for a JWT rule: its tokens are refused");
                        }
                        Arc::new(RuleState {
                            view: r.clone(),
                            keys,
                            policy: p.label(),
                            cache: Default::default(),
                        })
                    })
                    .collect(),
            })
            .collect();
        AuthnState { policies }
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The rules that apply to requests for the application's `port`.
    pub fn rules_for(&self, port: u16) -> impl Iterator<Item = &Arc<RuleState>> {
        self.policies
            .iter()
            .filter(move |p| p.ports.as_ref().is_none_or(|ports| ports.contains(&port)))
            .flat_map(|p| p.rules.iter())
    }
}
