//! The request authentication stage (RequestAuthentication): a JWT found where one of the
//! workload's rules looks for it (a header with its prefix, a query parameter, a cookie) is
//! verified against that rule's key set, issuer and audiences. A valid token gives the
//! request its principal (`iss/sub`) and claims for authorization; an invalid one is
//! answered 401 (gRPC: UNAUTHENTICATED) with `weft-error`; a request without a token passes
//! with no principal, as Istio has it (an AuthorizationPolicy requires one).
//!
//! After a token is accepted it is removed from its header unless `forwardOriginalToken`,
//! and the payload and claims the rule names are copied into headers for the application.
//! A token already verified in this configuration is taken from the rule's cache
//! ([`crate::state::token_cache`]) instead of checking its signature again.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request};
use weft_policy::authz::RequestAuth;
use weft_policy::jwt::{self, Expect};

use crate::error::{ProxyError, Reason};
use crate::http::Body;
use crate::state::authn::{AuthnState, RuleState};
use crate::state::token_cache::Verified;

/// Envoy's default clock skew allowance for `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// Where a token was found.
enum Location {
    Header(HeaderName),
    Elsewhere,
}

/// Authenticates `req` for the application's `port`; `Ok(None)` when it carries no token
/// (or no rule applies).
pub fn authenticate(
    state: &AuthnState,
    port: u16,
    req: &mut Request<Body>,
) -> Result<Option<Arc<RequestAuth>>, ProxyError> {
    if state.is_empty() {
        return Ok(None);
    }
    let found = find_tokens(state, port, req.headers(), req.uri().query());
    if found.is_empty() {
        return Ok(None);
    }
    let (verified, rule) = verify_all(&found)?;
    apply_outputs(&found, &rule, &verified, req.headers_mut());
    Ok(Some(verified.auth.clone()))
}

/// Authenticates an HTTP request read from an opaque stream (no header rewriting there).
pub fn authenticate_head(
    state: &AuthnState,
    port: u16,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Arc<RequestAuth>>, ProxyError> {
    if state.is_empty() {
        return Ok(None);
    }
    let found = find_tokens(state, port, headers, query);
    if found.is_empty() {
        return Ok(None);
    }
    verify_all(&found).map(|(verified, _)| Some(verified.auth.clone()))
}

type Found<'s> = Vec<(&'s Arc<RuleState>, String, Location)>;

/// Every (rule, token, where) the applicable rules find.
fn find_tokens<'s>(
    state: &'s AuthnState,
    port: u16,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Found<'s> {
    let mut found = Vec::new();
    for rule in state.rules_for(port) {
        let v = &rule.view;
        for h in &v.from_headers {
            for value in headers.get_all(h.name.as_str()) {
                let Ok(value) = value.to_str() else { continue };
                let prefix = h.prefix.as_str();
                if value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
                {
                    let token = value[prefix.len()..].trim();
                    if let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) {
                        found.push((rule, token.to_string(), Location::Header(name)));
                    }
                }
            }
        }
        for p in &v.from_params {
            if let Some(token) = query.and_then(|q| crate::balance::query_param(q, p)) {
                found.push((rule, token.to_string(), Location::Elsewhere));
            }
        }
        for c in &v.from_cookies {
            if let Some(token) = crate::balance::cookie(headers, c) {
                found.push((rule, token.to_string(), Location::Elsewhere));
            }
        }
    }
    found
}

/// Verifies every token found with the rules that found it and name its issuer: all must
/// pass (Istio leaves several tokens undefined; refusing is the safe reading).
/// A verified token (the identity it proves, its payload) and the rule that verified it.
type Accepted = (Arc<Verified>, Arc<RuleState>);

fn verify_all(found: &Found<'_>) -> Result<Accepted, ProxyError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut first = None;
    let mut checked: Vec<&str> = Vec::new();
    for (_, token, _) in found {
        if checked.contains(&token.as_str()) {
            continue;
        }
        checked.push(token);
        // A token one of its rules verified before needs no parsing: the cache only holds
        // tokens that rule accepted, and checks their expiry itself.
        let cached = found
            .iter()
            .filter(|(_, t, _)| t == token)
            .find_map(|(rule, _, _)| Some((rule.cache.get(token, now, LEEWAY_SECS)?, rule)));
        if let Some((hit, rule)) = cached {
            if first.is_none() {
                first = Some((hit, (*rule).clone()));
            }
            continue;
        }
        let issuer = jwt::unverified_issuer(token)
            .ok_or_else(|| unauthenticated("the token is malformed", None))?;
        let mut last_error = None;
        let mut ok = None;
        for (rule, _, _) in found
            .iter()
            .filter(|(r, t, _)| t == token && r.view.issuer == issuer)
        {
            let keys = match &rule.keys {
                Ok(k) => k,
                Err(e) => {
                    last_error = Some(unauthenticated(
                        &format!("no key set for issuer {issuer}: {e}"),
                        Some(rule),
                    ));
                    continue;
                }
            };
            let expect = Expect {
                issuer: &rule.view.issuer,
                audiences: &rule.view.audiences,
                now_unix: now,
                leeway_secs: LEEWAY_SECS,
            };
            match jwt::verify(token, keys, &expect) {
                Ok(verified) => {
                    let payload = verified.payload_b64.clone();
                    let v = Arc::new(Verified::new(auth_of(verified, rule), payload));
                    rule.cache.insert(token, v.clone());
                    ok = Some((v, (*rule).clone()));
                    break;
                }
                Err(e) => last_error = Some(unauthenticated(&e.to_string(), Some(rule))),
            }
        }
        match (ok, last_error) {
            (Some(done), _) => {
                if first.is_none() {
                    first = Some(done);
                }
            }
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(unauthenticated(
                    "the token's issuer is not one this workload accepts",
                    None,
                ))
            }
        }
    }
    first.ok_or_else(|| unauthenticated("no token could be verified", None))
}

fn unauthenticated(why: &str, rule: Option<&Arc<RuleState>>) -> ProxyError {
    let detail = match rule {
        Some(r) => format!("{why} ({})", r.policy),
        None => why.to_string(),
    };
    ProxyError::new(Reason::Unauthenticated, detail)
}

fn auth_of(verified: jwt::Verified, rule: &RuleState) -> RequestAuth {
    let claims = verified.claims;
    let str_of = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let audiences = match claims.get("aud") {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    RequestAuth {
        principal: format!("{}/{}", str_of("iss"), str_of("sub")),
        audiences,
        presenter: claims
            .get("azp")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        space_delimited: rule.view.space_delimited_claims.clone(),
        claims,
    }
}

/// After a token is accepted: it leaves its header unless the rule forwards it, and the
/// payload and claims the rule names go into headers.
fn apply_outputs(
    found: &Found<'_>,
    rule: &RuleState,
    verified: &Verified,
    headers: &mut HeaderMap,
) {
    let (auth, payload) = (&verified.auth, verified.payload.as_str());
    for (r, _, location) in found {
        if let Location::Header(name) = location {
            if !r.view.forward_original_token {
                headers.remove(name);
            }
        }
    }
    if let Some(h) = &rule.view.output_payload_to_header {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.as_bytes()),
            HeaderValue::from_str(payload),
        ) {
            headers.insert(name, value);
        }
    }
    for c in &rule.view.output_claim_to_headers {
        let mut v = &auth.claims;
        for key in &c.claim {
            match v.get(key) {
                Some(next) => v = next,
                None => {
                    v = &serde_json::Value::Null;
                    break;
                }
            }
        }
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(c.header.as_bytes()),
            HeaderValue::from_str(&text),
        ) {
            headers.insert(name, value);
        }
    }
}
