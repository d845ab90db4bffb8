//! A snapshot's authorization: the workload's AuthorizationPolicies ready to decide, and the
//! counters of their decisions resolved once per snapshot (`weft_authz_decisions_total`), so
//! that counting a decision is an atomic increment, never a map lookup under a lock.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use weft_api::view::authz::{AuthzAction, AuthzPolicyView};
use weft_policy::{Authorizer, Decision, Verdict};

use crate::metrics::Metrics;

pub struct AuthzState {
    pub authorizer: Authorizer,
    /// Per policy: (allowed, denied, audited) by it.
    per_policy: Vec<[Counter; 3]>,
    /// Denied because ALLOW policies apply and none matched.
    no_allow_matched: Counter,
}

impl AuthzState {
    pub fn build(policies: &[AuthzPolicyView], metrics: &Arc<Metrics>) -> AuthzState {
        // Each policy counts only what its action can do (an ALLOW policy allows, a DENY one
        // denies, an AUDIT one audits); the other two slots are counters nobody exports.
        let per_policy = policies
            .iter()
            .map(|p| {
                let label = p.label();
                let action = p.action.name();
                let mut slots: [Counter; 3] = Default::default();
                let (slot, result) = match p.action {
                    AuthzAction::Allow => (0, "allowed"),
                    AuthzAction::Deny => (1, "denied"),
                    AuthzAction::Audit => (2, "audited"),
                };
                slots[slot] = metrics.authz_decision(&label, action, result);
                slots
            })
            .collect();
        let has_allow = policies.iter().any(|p| p.action == AuthzAction::Allow);
        let no_allow_matched = if has_allow {
            metrics.authz_decision("none", "ALLOW", "denied")
        } else {
            Counter::default()
        };
        AuthzState {
            authorizer: Authorizer::new(policies.to_vec()),
            per_policy,
            no_allow_matched,
        }
    }

    /// No policies: every request allowed, nothing counted.
    pub fn none() -> AuthzState {
        AuthzState {
            authorizer: Authorizer::default(),
            per_policy: Vec::new(),
            no_allow_matched: Counter::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.authorizer.is_empty()
    }

    /// Counts a decision: the deciding policy's verdict, and every AUDIT match.
    pub fn count(&self, d: &Decision) {
        match d.verdict {
            Verdict::Allowed { policy, .. } => self.inc(policy, 0),
            Verdict::Denied { policy, .. } => self.inc(policy, 1),
            Verdict::NoAllowMatched => {
                self.no_allow_matched.inc();
            }
            Verdict::NoAllowPolicy => {}
        }
        for (policy, _) in &d.audits {
            self.inc(*policy, 2);
        }
    }

    fn inc(&self, policy: usize, which: usize) {
        if let Some(c) = self.per_policy.get(policy) {
            c[which].inc();
        }
    }
}
