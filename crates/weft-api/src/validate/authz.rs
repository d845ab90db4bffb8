//! `AuthorizationPolicy`: checks a policy as Istio's validation does and translates it into
//! an [`AuthzPolicyModel`] whose rules are already in the form proxies evaluate
//! ([`super::authz_rules`]).
//!
//! Beyond Istio's own checks, anything Weft would otherwise have to ignore is an error: a
//! CUSTOM action (no external authorizer yet), `targetRefs` to anything but a Service, an
//! unknown `when` key. An ignored DENY rule is a security hole.

use crate::model::{AuthzPolicyModel, Model, PolicyScope};
use crate::resources::istio::{AuthorizationPolicySpec, PolicyTargetReference, WorkloadSelector};
use crate::resources::{Object, Spanned};
use crate::view::authz::{AuthzAction, AuthzPolicyView};
use crate::view::MtlsMode;

use super::{authz_rules, HintExt, Reporter};

pub(super) fn build(
    ap: &Object<AuthorizationPolicySpec>,
    mut rep: Reporter<'_>,
    model: &Model,
) -> Option<AuthzPolicyModel> {
    let spec = &ap.spec;
    let namespace = ap.namespace();
    let action = action(spec, &mut rep)?;
    let scope = scope(
        spec.selector.as_ref(),
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
        namespace,
        model,
        &mut rep,
    )?;
    let rules = match &spec.rules {
        Some(rules) if !rules.is_empty() => {
            let mut out = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                out.push(authz_rules::rule(
                    rule,
                    &format!("spec.rules[{i}]"),
                    namespace,
                    &mut rep,
                )?);
            }
            Some(out)
        }
        _ if action == AuthzAction::Deny => {
            rep.error(
                "spec.rules",
                "a DENY policy without rules matches nothing, so it would deny nothing",
            )
            .with_hint("to deny every request write `rules: [{}]`; to deny some, say which");
            return None;
        }
        _ => None,
    };
    let name = ap.meta.name.value.clone();
    let source = format!("{}:{}", rep.source.file.display(), rep.source.line);
    let view = AuthzPolicyView {
        namespace: namespace.to_string(),
        name,
        action,
        source,
        ports: None,
        rules,
    };
    warn_plaintext_bypass(&view, &scope, model, &mut rep);
    Some(AuthzPolicyModel { scope, view })
}

fn action(spec: &AuthorizationPolicySpec, rep: &mut Reporter<'_>) -> Option<AuthzAction> {
    if let Some(provider) = &spec.provider {
        rep.error_span(
            provider,
            "spec.provider",
            "external authorization providers (action CUSTOM) are not implemented by Weft",
        )
        .with_hint("remove the policy, or express it with ALLOW and DENY rules");
        return None;
    }
    let Some(action) = &spec.action else {
        return Some(AuthzAction::Allow);
    };
    match action.value.as_str() {
        "ALLOW" => Some(AuthzAction::Allow),
        "DENY" => Some(AuthzAction::Deny),
        "AUDIT" => Some(AuthzAction::Audit),
        "CUSTOM" => {
            rep.error_span(
                action,
                "spec.action",
                "CUSTOM (an external authorizer) is not implemented by Weft",
            )
            .with_hint("express the policy with ALLOW and DENY rules");
            None
        }
        other => {
            rep.error_span(action, "spec.action", format!("`{other}` is not an action"))
                .with_hint("ALLOW (the default), DENY or AUDIT");
            None
        }
    }
}

/// Which workloads a policy (AuthorizationPolicy or RequestAuthentication) applies to:
/// `selector`, or `targetRef(s)` to Services of its namespace, or all of them.
pub(super) fn scope(
    selector: Option<&WorkloadSelector>,
    target_ref: Option<&Spanned<PolicyTargetReference>>,
    target_refs: Option<&[Spanned<PolicyTargetReference>]>,
    namespace: &str,
    model: &Model,
    rep: &mut Reporter<'_>,
) -> Option<PolicyScope> {
    let selector = selector.map(|s| s.match_labels.clone());
    let refs: Vec<(&Spanned<PolicyTargetReference>, String)> = match (target_ref, target_refs) {
        (Some(_), Some(_)) => {
            rep.error(
                "spec.targetRef",
                "set `targetRefs` or `targetRef`, not both",
            );
            return None;
        }
        (Some(one), None) => vec![(one, "spec.targetRef".to_string())],
        (None, Some(list)) => list
            .iter()
            .enumerate()
            .map(|(i, r)| (r, format!("spec.targetRefs[{i}]")))
            .collect(),
        (None, None) => Vec::new(),
    };
    if selector.is_some() && !refs.is_empty() {
        rep.error("spec.selector", "set `selector` or `targetRefs`, not both")
            .with_hint("`selector` picks workloads by label; `targetRefs` names Services");
        return None;
    }
    if let Some(labels) = selector {
        return Some(if labels.is_empty() {
            PolicyScope::Namespace
        } else {
            PolicyScope::Selector(labels)
        });
    }
    if refs.is_empty() {
        return Some(PolicyScope::Namespace);
    }
    let mut services = Vec::new();
    for (r, field) in refs {
        services.push(target_service(r, &field, namespace, model, rep)?);
    }
    Some(PolicyScope::Services(services))
}

/// A `targetRefs` entry: a Service of the policy's namespace.
fn target_service(
    r: &Spanned<PolicyTargetReference>,
    field: &str,
    namespace: &str,
    model: &Model,
    rep: &mut Reporter<'_>,
) -> Option<String> {
    let t = &r.value;
    let group = t.group.as_deref().unwrap_or("");
    if t.kind != "Service" || !matches!(group, "" | "core") {
        rep.error_span(
            r,
            format!("{field}.kind"),
            format!(
                "Weft attaches policies to Services only, not to {}{}",
                if group.is_empty() {
                    String::new()
                } else {
                    format!("{group}/")
                },
                t.kind
            ),
        )
        .with_hint("kind: Service, group: \"\" (or use `selector`)");
        return None;
    }
    if t.namespace.as_deref().is_some_and(|ns| ns != namespace) {
        rep.error_span(
            r,
            format!("{field}.namespace"),
            "a policy attaches only to Services of its own namespace",
        );
        return None;
    }
    if !model
        .services
        .contains_key(&(namespace.to_string(), t.name.clone()))
    {
        rep.error_span(
            r,
            format!("{field}.name"),
            format!("Service {namespace}/{} does not exist", t.name),
        );
        return None;
    }
    Some(t.name.clone())
}

/// Istio's advisory: an ALLOW rule written with `notNamespaces` or `notPrincipals` also
/// matches plaintext requests (they have no namespace or principal), so under PERMISSIVE mTLS
/// it lets in callers from outside the mesh.
fn warn_plaintext_bypass(
    view: &AuthzPolicyView,
    scope: &PolicyScope,
    model: &Model,
    rep: &mut Reporter<'_>,
) {
    if view.action != AuthzAction::Allow {
        return;
    }
    let negative_only = view.rules.iter().flatten().enumerate().find(|(_, rule)| {
        rule.from.iter().any(|s| {
            (s.namespaces.values.is_empty() && !s.namespaces.not_values.is_empty())
                || (s.principals.values.is_empty() && !s.principals.not_values.is_empty())
        })
    });
    let Some((i, _)) = negative_only else { return };
    let policy = AuthzPolicyModel {
        scope: scope.clone(),
        view: view.clone(),
    };
    let permissive = model
        .workloads
        .iter()
        .map(|w| &w.view)
        .filter(|w| crate::compile::authz::applies(model, &policy, Some(w), &w.namespace).is_some())
        .any(|w| crate::compile::inbound_policy(model, w).mode != MtlsMode::Strict);
    if permissive {
        let line = rep.source.line;
        rep.warning_at(
            line,
            format!("spec.rules[{i}].from"),
            "this ALLOW rule matches by `notNamespaces`/`notPrincipals` while mTLS is not STRICT for the workloads it selects: plaintext requests have no namespace or principal, so they match it and are allowed",
        )
        .with_hint("make mTLS STRICT (PeerAuthentication) or match with positive `namespaces`/`principals`");
    }
}
