//! Whether one rule matches: every `from` ORed, every `to` ORed, every `when` ANDed, the
//! three ANDed; within a source or operation every set field ANDed. A field matches when its
//! value matches one of `values` (if any) and none of `notValues`; an absent value (no peer
//! identity, no JWT, no header) matches no `values` and no `notValues`.
//!
//! Plain TCP has no HTTP attributes. As in Istio, an ALLOW rule that needs any never matches
//! TCP (less is allowed); a DENY or AUDIT rule ignores them and matches on the rest (more is
//! denied: a DENY rule with only HTTP fields denies every TCP connection).

use weft_api::view::authz::{
    AuthzAction, AuthzRuleView, ConditionKey, ConditionView, Field, OperationView, SourceView,
};

use super::attrs::{ConnectionAttrs, RequestAttrs};

pub fn matches(
    rule: &AuthzRuleView,
    action: AuthzAction,
    conn: &ConnectionAttrs,
    http: Option<&RequestAttrs<'_>>,
) -> bool {
    if http.is_none() && action == AuthzAction::Allow && needs_http(rule) {
        return false;
    }
    (rule.from.is_empty() || rule.from.iter().any(|s| source(s, conn, http)))
        && (rule.to.is_empty() || rule.to.iter().any(|o| operation(o, conn, http)))
        && rule.when.iter().all(|c| condition(c, conn, http))
}

/// True when a rule names an attribute only HTTP requests have.
pub fn needs_http(rule: &AuthzRuleView) -> bool {
    rule.from.iter().any(|s| !s.request_principals.is_unset())
        || rule
            .to
            .iter()
            .any(|o| !(o.hosts.is_unset() && o.methods.is_unset() && o.paths.is_unset()))
        || rule.when.iter().any(|c| c.key.is_http())
}

/// Matches `value` against a field; `matches(pattern, value)` compares one pattern.
fn field<T, V: Copy>(f: &Field<T>, value: Option<V>, matches: impl Fn(&T, V) -> bool) -> bool {
    let positive =
        f.values.is_empty() || value.is_some_and(|v| f.values.iter().any(|p| matches(p, v)));
    positive && !value.is_some_and(|v| f.not_values.iter().any(|p| matches(p, v)))
}

/// A list-valued attribute (audiences, list claims): `values` match when any element does,
/// `notValues` fail when any element matches; an empty list is an absent value.
fn list_field(f: &Field<weft_api::view::authz::StringMatch>, items: &[&str]) -> bool {
    let positive =
        f.values.is_empty() || items.iter().any(|i| f.values.iter().any(|p| p.matches(i)));
    positive
        && !items
            .iter()
            .any(|i| f.not_values.iter().any(|p| p.matches(i)))
}

fn source(s: &SourceView, conn: &ConnectionAttrs, http: Option<&RequestAttrs<'_>>) -> bool {
    let peer = &conn.peer;
    let request_principal = match http {
        // Not an HTTP request: only a DENY or AUDIT rule gets here, which ignores the field.
        None => true,
        Some(req) => field(
            &s.request_principals,
            req.auth.map(|a| a.principal.as_str()),
            |p, v| p.matches(v),
        ),
    };
    request_principal
        && field(&s.principals, peer.principal.as_deref(), |p, v| {
            p.matches(v)
        })
        && field(&s.namespaces, peer.namespace.as_deref(), |p, v| {
            p.matches(v)
        })
        && field(
            &s.service_accounts,
            peer.service_account.as_deref(),
            |p, v| p == v,
        )
        && field(&s.ip_blocks, Some(conn.source_ip), |b, ip| b.contains(ip))
        && field(&s.remote_ip_blocks, Some(conn.source_ip), |b, ip| {
            b.contains(ip)
        })
}

fn operation(o: &OperationView, conn: &ConnectionAttrs, http: Option<&RequestAttrs<'_>>) -> bool {
    let ports = field(&o.ports, Some(conn.destination_port), |p, v| *p == v);
    let Some(req) = http else {
        return ports;
    };
    ports
        && field(&o.hosts, Some(req.host), |p, v| p.matches_ignore_case(v))
        && field(&o.methods, Some(req.method), |p, v| p.matches(v))
        && field(&o.paths, Some(req.path), |p, v| p.matches(v))
}

fn condition(c: &ConditionView, conn: &ConnectionAttrs, http: Option<&RequestAttrs<'_>>) -> bool {
    let strings = |value: Option<&str>| field(&c.strings, value, |p, v| p.matches(v));
    let peer = &conn.peer;
    match &c.key {
        ConditionKey::SourceIp | ConditionKey::RemoteIp => {
            field(&c.ips, Some(conn.source_ip), |b, ip| b.contains(ip))
        }
        ConditionKey::DestinationIp => {
            field(&c.ips, Some(conn.destination_ip), |b, ip| b.contains(ip))
        }
        ConditionKey::DestinationPort => {
            field(&c.ports, Some(conn.destination_port), |p, v| *p == v)
        }
        ConditionKey::SourceNamespace => strings(peer.namespace.as_deref()),
        ConditionKey::SourcePrincipal => strings(peer.principal.as_deref()),
        ConditionKey::SourceServiceAccount => strings(peer.service_account.as_deref()),
        ConditionKey::ConnectionSni => strings(conn.sni.as_deref()),
        // HTTP keys on plain TCP: only DENY and AUDIT rules get here, and they ignore them.
        _ if http.is_none() => true,
        ConditionKey::RequestHeader(name) => {
            let value = http.and_then(|r| r.header(name));
            strings(value.as_deref())
        }
        ConditionKey::RequestAuthPrincipal => {
            strings(http.and_then(|r| r.auth).map(|a| a.principal.as_str()))
        }
        ConditionKey::RequestAuthPresenter => strings(
            http.and_then(|r| r.auth)
                .and_then(|a| a.presenter.as_deref()),
        ),
        ConditionKey::RequestAuthAudiences => {
            let auth = http.and_then(|r| r.auth);
            let items: Vec<&str> = auth.map_or_else(Vec::new, |a| {
                a.audiences.iter().map(String::as_str).collect()
            });
            list_field(&c.strings, &items)
        }
        ConditionKey::RequestAuthClaim(path) => {
            let items = http
                .and_then(|r| r.auth)
                .map_or_else(Vec::new, |a| a.claim(path));
            list_field(&c.strings, &items)
        }
    }
}
