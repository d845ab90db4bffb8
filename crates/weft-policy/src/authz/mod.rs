//! AuthorizationPolicy decisions, as Istio makes them: any matching DENY policy denies; with
//! no ALLOW policy for the workload the request is allowed; otherwise an ALLOW policy must
//! match. AUDIT policies never change the decision: the ones that match are reported beside
//! it, to be logged and counted.
//!
//! [`Authorizer`] holds a workload's policies (from its view) and answers with a [`Decision`]
//! that says which policy and rule decided, so a denial can name them and `weft authz check`
//! can explain them.

pub mod attrs;
mod rules;

use weft_api::view::authz::{AuthzAction, AuthzPolicyView};

pub use attrs::{ConnectionAttrs, PeerAttrs, RequestAttrs, RequestAuth};

/// A workload's AuthorizationPolicies, ready to decide.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    policies: Vec<AuthzPolicyView>,
}

/// What decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A DENY policy's rule matched.
    Denied { policy: usize, rule: usize },
    /// An ALLOW policy's rule matched.
    Allowed { policy: usize, rule: usize },
    /// No ALLOW policy applies to the workload (and port), so everything not denied is
    /// allowed.
    NoAllowPolicy,
    /// ALLOW policies apply and none matched.
    NoAllowMatched,
}

/// A decision and the AUDIT rules that matched the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// (policy, rule) of every matching AUDIT policy.
    pub audits: Vec<(usize, usize)>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::Allowed { .. } | Verdict::NoAllowPolicy
        )
    }
}

impl Authorizer {
    pub fn new(policies: Vec<AuthzPolicyView>) -> Self {
        Self { policies }
    }

    /// True when no policy applies: nothing to evaluate, everything allowed.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    pub fn policies(&self) -> &[AuthzPolicyView] {
        &self.policies
    }

    /// Decides about a connection (`http: None`, plain TCP) or an HTTP request on it.
    pub fn decide(&self, conn: &ConnectionAttrs, http: Option<&RequestAttrs<'_>>) -> Decision {
        let port = conn.destination_port;
        let applicable = self
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ports.as_ref().is_none_or(|ports| ports.contains(&port)));
        let mut audits = Vec::new();
        let mut allow_policies = false;
        let mut allowed = None;
        let mut denied = None;
        for (i, p) in applicable {
            let matched = || {
                p.rules
                    .iter()
                    .flatten()
                    .position(|r| rules::matches(r, p.action, conn, http))
            };
            match p.action {
                AuthzAction::Deny => {
                    if denied.is_none() {
                        denied = matched().map(|rule| Verdict::Denied { policy: i, rule });
                    }
                }
                AuthzAction::Allow => {
                    allow_policies = true;
                    if allowed.is_none() {
                        allowed = matched().map(|rule| Verdict::Allowed { policy: i, rule });
                    }
                }
                AuthzAction::Audit => {
                    if let Some(rule) = matched() {
                        audits.push((i, rule));
                    }
                }
            }
        }
        let verdict = denied.or(allowed).unwrap_or(if allow_policies {
            Verdict::NoAllowMatched
        } else {
            Verdict::NoAllowPolicy
        });
        Decision { verdict, audits }
    }

    /// Whether the policies refuse every request a connection could carry: a DENY rule that
    /// needs no request attribute matches it, or ALLOW policies apply and none of their rules
    /// can match its connection attributes (whatever the requests). Open connections are
    /// closed when a new configuration says so.
    pub fn refuses_connection(&self, conn: &ConnectionAttrs) -> Option<Verdict> {
        let port = conn.destination_port;
        let mut allow_policies = false;
        let mut could_allow = false;
        for (i, p) in self.policies.iter().enumerate() {
            if p.ports.as_ref().is_some_and(|ports| !ports.contains(&port)) {
                continue;
            }
            let rules = p.rules.iter().flatten();
            match p.action {
                AuthzAction::Deny => {
                    let outright = rules.enumerate().find(|(_, r)| {
                        !rules::needs_http(r) && rules::matches(r, p.action, conn, None)
                    });
                    if let Some((rule, _)) = outright {
                        return Some(Verdict::Denied { policy: i, rule });
                    }
                }
                AuthzAction::Allow => {
                    allow_policies = true;
                    // Judged as DENY and AUDIT rules are on TCP: request attributes ignored,
                    // so a rule matches when some request on this connection could.
                    could_allow |= rules
                        .into_iter()
                        .any(|r| rules::matches(r, AuthzAction::Audit, conn, None));
                }
                AuthzAction::Audit => {}
            }
        }
        (allow_policies && !could_allow).then_some(Verdict::NoAllowMatched)
    }

    /// `namespace/name rule N`, for logs and `weft-error`.
    pub fn rule_label(&self, policy: usize, rule: usize) -> String {
        match self.policies.get(policy) {
            Some(p) => format!("{} {} rule {rule}", p.action.name(), p.label()),
            None => format!("policy {policy} rule {rule}"),
        }
    }

    /// Where a rule was written (`file:line`), when known.
    pub fn rule_source(&self, policy: usize, rule: usize) -> Option<&str> {
        let p = self.policies.get(policy)?;
        let r = p.rules.as_ref()?.get(rule)?;
        (!r.source.is_empty()).then_some(r.source.as_str())
    }

    /// What decided, in words: the `weft-error` detail of a denial and the log's reason.
    pub fn explain(&self, d: &Decision) -> String {
        match d.verdict {
            Verdict::Denied { policy, rule } | Verdict::Allowed { policy, rule } => {
                self.rule_label(policy, rule)
            }
            Verdict::NoAllowPolicy => "no ALLOW policy applies".to_string(),
            Verdict::NoAllowMatched => {
                let names: Vec<String> = self
                    .policies
                    .iter()
                    .filter(|p| p.action == AuthzAction::Allow)
                    .map(AuthzPolicyView::label)
                    .collect();
                format!("no ALLOW policy matched ({})", names.join(", "))
            }
        }
    }

    /// The policy behind a verdict, for metric labels (`namespace/name`), or `none`.
    pub fn policy_label(&self, v: Verdict) -> String {
        match v {
            Verdict::Denied { policy, .. } | Verdict::Allowed { policy, .. } => self
                .policies
                .get(policy)
                .map(AuthzPolicyView::label)
                .unwrap_or_default(),
            Verdict::NoAllowPolicy | Verdict::NoAllowMatched => "none".to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
