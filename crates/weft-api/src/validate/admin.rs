//! MeshConfig `admin`: who may use a proxy's protected admin routes (`/config`, `/tap`) with a
//! SPIFFE identity instead of the admin token. Its `rules` are AuthorizationPolicy rules,
//! checked as AuthorizationPolicy's are, and held as an ALLOW policy.

use crate::resources::mesh_config::AdminSpec;
use crate::view::authz::{AuthzAction, AuthzPolicyView};

use super::{HintExt, Reporter};

pub(super) fn check(
    spec: &AdminSpec,
    namespace: &str,
    rep: &mut Reporter<'_>,
) -> Option<AuthzPolicyView> {
    let rules = match &spec.rules {
        Some(rules) if !rules.is_empty() => rules,
        _ => {
            rep.error("spec.admin.rules", "no rule: no identity would be allowed")
                .with_hint("e.g. `rules: [{from: [{source: {principals: [cluster.local/ns/ops/sa/oncall]}}]}]`, or leave `admin` out");
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        out.push(super::authz_rules::rule(
            rule,
            &format!("spec.admin.rules[{i}]"),
            namespace,
            rep,
        )?);
    }
    Some(AuthzPolicyView {
        namespace: namespace.to_string(),
        name: "mesh-admin".to_string(),
        action: AuthzAction::Allow,
        source: format!("{}:{}", rep.source.file.display(), rep.source.line),
        ports: None,
        rules: Some(out),
    })
}
