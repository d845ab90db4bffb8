//! `RequestAuthentication`: JWT rules checked as Istio's validation does, into a
//! [`JwtPolicyModel`]. An inline `jwks` is parsed here already (a key set with no usable key
//! is an error at load, not a 401 at run time); a `jwksUri` is the control plane's to fetch.

use std::collections::BTreeSet;

use crate::model::{JwtPolicyModel, Model};
use crate::resources::istio::{JwtRule, RequestAuthenticationSpec};
use crate::resources::{Object, Spanned};
use crate::view::authn::{ClaimToHeaderView, JwtHeaderView, JwtPolicyView, JwtRuleView};

use super::{authz, HintExt, Reporter};

/// How long fetching a key set may take when the rule says nothing (Istio's default).
const DEFAULT_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest `jwksUri` Istio accepts.
const MAX_URI: usize = 2048;

pub(super) fn build(
    ra: &Object<RequestAuthenticationSpec>,
    mut rep: Reporter<'_>,
    model: &Model,
) -> Option<JwtPolicyModel> {
    let spec = &ra.spec;
    let namespace = ra.namespace();
    let scope = authz::scope(
        spec.selector.as_ref(),
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
        namespace,
        model,
        &mut rep,
    )?;
    let mut rules = Vec::new();
    let mut fetch_timeouts = Vec::new();
    let mut ok = true;
    for (i, rule) in spec.jwt_rules.iter().enumerate() {
        match jwt_rule(rule, &format!("spec.jwtRules[{i}]"), &mut rep) {
            Some(r) => rules.push(r),
            None => ok = false,
        }
        let timeout = rule
            .value
            .timeout
            .as_deref()
            .and_then(|t| crate::duration::parse(t).ok());
        fetch_timeouts.push(timeout.unwrap_or(DEFAULT_FETCH_TIMEOUT));
    }
    if !ok {
        return None;
    }
    Some(JwtPolicyModel {
        scope,
        fetch_timeouts,
        view: JwtPolicyView {
            namespace: namespace.to_string(),
            name: ra.meta.name.value.clone(),
            source: format!("{}:{}", rep.source.file.display(), rep.source.line),
            ports: None,
            rules,
        },
    })
}

fn jwt_rule(rule: &Spanned<JwtRule>, field: &str, rep: &mut Reporter<'_>) -> Option<JwtRuleView> {
    let line = rep.source.line_of(rule);
    let r = &rule.value;
    let mut ok = true;
    let mut error = |f: String, message: String, hint: &str| {
        ok = false;
        let d = rep.error_at(line, f, message);
        if !hint.is_empty() {
            d.with_hint(hint);
        }
    };
    if r.issuer.is_empty() {
        error(
            format!("{field}.issuer"),
            "a JWT rule needs an `issuer`".into(),
            "the `iss` its tokens carry, e.g. https://accounts.example.com",
        );
    }
    match (&r.jwks, &r.jwks_uri) {
        (Some(_), Some(_)) => error(
            field.to_string(),
            "set `jwks` or `jwksUri`, not both".into(),
            "",
        ),
        (Some(jwks), None) => {
            if let Err(e) = crate::jwks::check(jwks) {
                error(
                    format!("{field}.jwks"),
                    e,
                    "a JSON Web Key Set: {\"keys\": [{\"kty\": \"RSA\", \"n\": …, \"e\": …}]}",
                );
            }
        }
        (None, Some(uri)) => {
            let scheme_ok = uri.starts_with("http://") || uri.starts_with("https://");
            if !scheme_ok || uri.len() > MAX_URI || uri.contains(char::is_whitespace) {
                error(
                    format!("{field}.jwksUri"),
                    format!("`{uri}` is not an http(s) URL of at most {MAX_URI} characters"),
                    "",
                );
            }
        }
        // Neither: the control plane discovers the key set from the issuer (OpenID Connect).
        (None, None) => {}
    }
    for (i, a) in r.audiences.iter().enumerate() {
        if a.is_empty() {
            error(
                format!("{field}.audiences[{i}]"),
                "empty audience".into(),
                "",
            );
        }
    }
    let mut from_headers = Vec::new();
    for (i, h) in r.from_headers.iter().enumerate() {
        if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
            error(
                format!("{field}.fromHeaders[{i}].name"),
                format!("`{}` is not a header name", h.name),
                "",
            );
        }
        from_headers.push(JwtHeaderView {
            name: h.name.to_ascii_lowercase(),
            prefix: h.prefix.clone().unwrap_or_default(),
        });
    }
    for (list, name) in [
        (&r.from_params, "fromParams"),
        (&r.from_cookies, "fromCookies"),
    ] {
        for (i, p) in list.iter().enumerate() {
            if p.is_empty() || p.contains(['=', ';', '&', ' ']) {
                error(
                    format!("{field}.{name}[{i}]"),
                    format!("`{p}` is not a name"),
                    "",
                );
            }
        }
    }
    if let Some(h) = &r.output_payload_to_header {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            error(
                format!("{field}.outputPayloadToHeader"),
                format!("`{h}` is not a header name"),
                "",
            );
        }
    }
    let mut seen = BTreeSet::new();
    let mut claims = Vec::new();
    for (i, c) in r.output_claim_to_headers.iter().enumerate() {
        let valid = !c.header.is_empty()
            && c.header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            error(
                format!("{field}.outputClaimToHeaders[{i}].header"),
                format!(
                    "`{}` is not a header name (letters, digits, - and _)",
                    c.header
                ),
                "",
            );
        } else if !seen.insert(c.header.to_ascii_lowercase()) {
            error(
                format!("{field}.outputClaimToHeaders[{i}].header"),
                format!("`{}` is written twice", c.header),
                "each header once",
            );
        }
        if c.claim.is_empty() || c.claim.split('.').any(str::is_empty) {
            error(
                format!("{field}.outputClaimToHeaders[{i}].claim"),
                format!("`{}` is not a claim name", c.claim),
                "",
            );
        }
        claims.push(ClaimToHeaderView {
            header: c.header.to_ascii_lowercase(),
            claim: c.claim.split('.').map(str::to_string).collect(),
        });
    }
    if let Some(t) = &r.timeout {
        match crate::duration::parse(t) {
            Ok(d) if d.as_millis() >= 1 => {}
            Ok(_) => error(format!("{field}.timeout"), "at least 1ms".into(), ""),
            Err(e) => error(format!("{field}.timeout"), e, ""),
        }
    }
    // No location named: the defaults, written out so a proxy never guesses.
    if from_headers.is_empty() && r.from_params.is_empty() && r.from_cookies.is_empty() {
        from_headers.push(JwtHeaderView {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        });
    }
    let from_params =
        if r.from_headers.is_empty() && r.from_params.is_empty() && r.from_cookies.is_empty() {
            vec!["access_token".to_string()]
        } else {
            r.from_params.clone()
        };
    ok.then(|| JwtRuleView {
        issuer: r.issuer.clone(),
        audiences: r.audiences.clone(),
        jwks: r.jwks.clone(),
        jwks_uri: r.jwks_uri.clone(),
        jwks_error: None,
        from_headers,
        from_params,
        from_cookies: r.from_cookies.clone(),
        output_payload_to_header: r
            .output_payload_to_header
            .as_ref()
            .map(|h| h.to_ascii_lowercase()),
        forward_original_token: r.forward_original_token,
        output_claim_to_headers: claims,
        space_delimited_claims: r.space_delimited_claims.clone(),
        source: format!("{}:{line}", rep.source.file.display()),
    })
}
