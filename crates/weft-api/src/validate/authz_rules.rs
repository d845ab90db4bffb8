//! The rules of an AuthorizationPolicy: `from` sources, `to` operations and `when`
//! conditions, each value parsed into its match form with an error (field path and line)
//! for anything Istio would refuse or Weft could not evaluate.

use crate::resources::istio::{AuthzCondition, AuthzOperation, AuthzRule, AuthzSource};
use crate::resources::Spanned;
use crate::view::authz::{
    AuthzRuleView, ConditionKey, ConditionView, Field, IpBlock, OperationView, PathMatch,
    SourceView, StringMatch,
};

use super::{HintExt, Reporter};

/// One rule; `None` after reporting its errors.
pub(super) fn rule(
    rule: &Spanned<AuthzRule>,
    field: &str,
    namespace: &str,
    rep: &mut Reporter<'_>,
) -> Option<AuthzRuleView> {
    let line = rep.source.line_of(rule);
    let mut at = At {
        rep,
        line,
        ok: true,
    };
    let r = &rule.value;
    let mut view = AuthzRuleView {
        source: format!("{}:{line}", at.rep.source.file.display()),
        ..AuthzRuleView::default()
    };
    if let Some(from) = &r.from {
        if from.is_empty() {
            at.error(
                format!("{field}.from"),
                "`from` is empty; leave it out to match any source",
            );
        }
        for (i, f) in from.iter().enumerate() {
            let field = format!("{field}.from[{i}].source");
            match &f.source {
                Some(s) => view.from.push(source(s, &field, namespace, &mut at)),
                None => at.error(field, "each `from` entry needs a `source`"),
            }
        }
    }
    if let Some(to) = &r.to {
        if to.is_empty() {
            at.error(
                format!("{field}.to"),
                "`to` is empty; leave it out to match any operation",
            );
        }
        for (i, t) in to.iter().enumerate() {
            let field = format!("{field}.to[{i}].operation");
            match &t.operation {
                Some(o) => view.to.push(operation(o, &field, &mut at)),
                None => at.error(field, "each `to` entry needs an `operation`"),
            }
        }
    }
    for (i, c) in r.when.iter().flatten().enumerate() {
        if let Some(c) = condition(c, &format!("{field}.when[{i}]"), &mut at) {
            view.when.push(c);
        }
    }
    at.ok.then_some(view)
}

/// Reports at one line and remembers whether anything was wrong.
struct At<'r, 'a> {
    rep: &'r mut Reporter<'a>,
    line: u64,
    ok: bool,
}

impl At<'_, '_> {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.ok = false;
        self.rep.error_at(self.line, field, message);
    }

    fn error_hint(&mut self, field: impl Into<String>, message: impl Into<String>, hint: &str) {
        self.ok = false;
        self.rep.error_at(self.line, field, message).with_hint(hint);
    }

    /// Parses a pair of lists (`<parent>.<name>` and `<parent>.not<Name>`) with `parse`.
    fn field<T>(
        &mut self,
        parent: &str,
        name: &str,
        (values, not_values): (&[String], &[String]),
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Field<T> {
        let mut chars = name.chars();
        let not_name = match chars.next() {
            Some(first) => format!("not{}{}", first.to_ascii_uppercase(), chars.as_str()),
            None => "not".to_string(),
        };
        let mut out = Field {
            values: Vec::new(),
            not_values: Vec::new(),
        };
        for (list, name, into) in [
            (values, name, &mut out.values),
            (not_values, not_name.as_str(), &mut out.not_values),
        ] {
            for (i, v) in list.iter().enumerate() {
                match parse(v) {
                    Ok(parsed) => into.push(parsed),
                    Err(e) => self.error(format!("{parent}.{name}[{i}]"), e),
                }
            }
        }
        out
    }
}

fn source(s: &AuthzSource, field: &str, namespace: &str, at: &mut At<'_, '_>) -> SourceView {
    let f = |name: &str| format!("{field}.{name}");
    let view = SourceView {
        principals: at.field(
            field,
            "principals",
            (&s.principals, &s.not_principals),
            principal,
        ),
        request_principals: at.field(
            field,
            "requestPrincipals",
            (&s.request_principals, &s.not_request_principals),
            request_principal,
        ),
        namespaces: at.field(
            field,
            "namespaces",
            (&s.namespaces, &s.not_namespaces),
            |v| {
                if v.len() > 1 && v[1..v.len() - 1].contains('*') {
                    return Err(format!(
                        "`{v}`: `*` may only start or end a namespace pattern"
                    ));
                }
                StringMatch::parse(v)
            },
        ),
        service_accounts: at.field(
            field,
            "serviceAccounts",
            (&s.service_accounts, &s.not_service_accounts),
            |v| service_account(v, namespace),
        ),
        ip_blocks: at.field(
            field,
            "ipBlocks",
            (&s.ip_blocks, &s.not_ip_blocks),
            IpBlock::parse,
        ),
        remote_ip_blocks: at.field(
            field,
            "remoteIpBlocks",
            (&s.remote_ip_blocks, &s.not_remote_ip_blocks),
            IpBlock::parse,
        ),
    };
    if *s == AuthzSource::default() {
        at.error(
            field,
            "a `source` with no fields: say who, or leave the `from` out",
        );
    }
    let by_identity = !(view.principals.is_unset() && view.namespaces.is_unset());
    if !view.service_accounts.is_unset() && by_identity {
        at.error_hint(
            f("serviceAccounts"),
            "`serviceAccounts` cannot be combined with `principals` or `namespaces` in one source",
            "use separate `from` entries",
        );
    }
    view
}

/// A peer principal: `<trust-domain>/ns/<namespace>/sa/<service-account>`, or a pattern.
fn principal(v: &str) -> Result<StringMatch, String> {
    if v.starts_with("spiffe://") {
        return Err(format!(
            "`{v}`: principals are written without `spiffe://` (e.g. `cluster.local/ns/shop/sa/frontend`)"
        ));
    }
    if v.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(format!("`{v}` contains whitespace"));
    }
    let m = StringMatch::parse(v)?;
    if let StringMatch::Exact(id) = &m {
        let parts: Vec<&str> = id.split('/').collect();
        let ok = matches!(parts.as_slice(), [td, "ns", ns, "sa", sa] if !td.is_empty() && !ns.is_empty() && !sa.is_empty());
        if !ok {
            return Err(format!(
                "`{v}` is not a principal: write `<trust-domain>/ns/<namespace>/sa/<service-account>`, or a pattern with `*` at the start or end"
            ));
        }
    }
    Ok(m)
}

/// A request principal: `<iss>/<sub>`, or a pattern.
fn request_principal(v: &str) -> Result<StringMatch, String> {
    let m = StringMatch::parse(v)?;
    if let StringMatch::Exact(p) = &m {
        if !p.contains('/') {
            return Err(format!(
                "`{v}` is not a request principal: write `<issuer>/<subject>`"
            ));
        }
    }
    Ok(m)
}

/// `namespace/name`, or `name` in the policy's namespace; no wildcards.
fn service_account(v: &str, namespace: &str) -> Result<String, String> {
    if v.contains('*') {
        return Err(format!("`{v}`: service accounts take no wildcards"));
    }
    let (ns, sa) = v.split_once('/').unwrap_or((namespace, v));
    if ns.is_empty() || sa.is_empty() || sa.contains('/') {
        return Err(format!(
            "`{v}` is not a service account: write `namespace/name` or `name`"
        ));
    }
    Ok(format!("{ns}/{sa}"))
}

fn operation(o: &AuthzOperation, field: &str, at: &mut At<'_, '_>) -> OperationView {
    let view = OperationView {
        hosts: at.field(field, "hosts", (&o.hosts, &o.not_hosts), StringMatch::parse),
        ports: at.field(field, "ports", (&o.ports, &o.not_ports), port),
        methods: at.field(
            field,
            "methods",
            (&o.methods, &o.not_methods),
            StringMatch::parse,
        ),
        paths: at.field(field, "paths", (&o.paths, &o.not_paths), path),
    };
    if *o == AuthzOperation::default() {
        at.error(
            field,
            "an `operation` with no fields: say what, or leave the `to` out",
        );
    }
    view
}

fn port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{v}` is not a port number (1-65535)"))
}

/// A path: a string form or a template; regular expressions are not Istio's and are refused
/// rather than compared literally (they would never match).
fn path(v: &str) -> Result<PathMatch, String> {
    let looks_like_regex = v.starts_with('^')
        || v.ends_with('$')
        || v.contains(".*")
        || v.contains(".+")
        || v.contains(['\\', '(', ')', '[', ']', '|']);
    if looks_like_regex {
        return Err(format!(
            "`{v}` looks like a regular expression; paths are exact, a prefix (`/api/*`), a suffix (`*.js`), `*`, or a template (`/api/{{*}}/read`, `/files/{{**}}`)"
        ));
    }
    if v.contains('?') {
        return Err(format!("`{v}`: paths are matched without the query string"));
    }
    if !v.starts_with('/') && !v.starts_with('*') {
        return Err(format!(
            "`{v}`: a path starts with `/` (or `*` for a suffix or any path)"
        ));
    }
    PathMatch::parse(v)
}

fn condition(c: &AuthzCondition, field: &str, at: &mut At<'_, '_>) -> Option<ConditionView> {
    let key = match ConditionKey::parse(&c.key) {
        Ok(k) => k,
        Err(e) => {
            at.error_hint(
                format!("{field}.key"),
                e,
                "Weft evaluates request.headers[…], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[…], destination.ip, destination.port and connection.sni",
            );
            return None;
        }
    };
    if c.values.is_empty() && c.not_values.is_empty() {
        at.error(field, "a condition needs `values` or `notValues`");
        return None;
    }
    let lists = (c.values.as_slice(), c.not_values.as_slice());
    let mut view = ConditionView {
        key: key.clone(),
        strings: Field::default(),
        ips: Field::default(),
        ports: Field::default(),
    };
    match key {
        k if k.is_ip() => view.ips = at.field(field, "values", lists, IpBlock::parse),
        ConditionKey::DestinationPort => view.ports = at.field(field, "values", lists, port),
        _ => view.strings = at.field(field, "values", lists, StringMatch::parse),
    }
    Some(view)
}
