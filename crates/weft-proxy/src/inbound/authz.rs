//! The authorization stage: the workload's AuthorizationPolicies decide about each request
//! (and each opaque connection) on the policy current when it arrives. A denial is 403
//! (gRPC: PERMISSION_DENIED) with `weft-error: denied; <policy and rule>`; AUDIT matches are
//! logged and counted without changing anything. With no policy the stage costs one check.

use std::net::SocketAddr;

use http::Request;
use weft_policy::authz::RequestAuth;
use weft_policy::{ConnectionAttrs, Decision, PeerAttrs, RequestAttrs};

use super::Peer;
use crate::error::{ProxyError, Reason};
use crate::http::Body;
use crate::state::authz::AuthzState;

/// A connection's attributes, gathered once when it is accepted.
pub fn connection(
    peer: &Peer,
    client: SocketAddr,
    local: SocketAddr,
    port: u16,
    sni: Option<String>,
) -> ConnectionAttrs {
    ConnectionAttrs {
        peer: PeerAttrs::from_spiffe(&peer.principal),
        source_ip: client.ip(),
        destination_ip: local.ip(),
        destination_port: port,
        sni,
    }
}

/// Decides about an HTTP request; `Ok(None)` when no policy applies at all.
pub fn check_request(
    authz: &AuthzState,
    conn: &ConnectionAttrs,
    req: &Request<Body>,
    auth: Option<&RequestAuth>,
) -> Result<Option<Decision>, ProxyError> {
    if authz.is_empty() {
        return Ok(None);
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("");
    let attrs = RequestAttrs {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        headers: req.headers(),
        auth,
    };
    check_attrs(authz, conn, &attrs)
}

/// Decides about a request given by its attributes (an HTTP/1 head read from an opaque
/// stream, say).
pub fn check_attrs(
    authz: &AuthzState,
    conn: &ConnectionAttrs,
    attrs: &RequestAttrs<'_>,
) -> Result<Option<Decision>, ProxyError> {
    if authz.is_empty() {
        return Ok(None);
    }
    let d = authz.authorizer.decide(conn, Some(attrs));
    finish(authz, conn, d, Some(attrs))
}

/// Decides about an opaque connection (TCP semantics for HTTP-only rules).
pub fn check_connection(
    authz: &AuthzState,
    conn: &ConnectionAttrs,
) -> Result<Option<Decision>, ProxyError> {
    if authz.is_empty() {
        return Ok(None);
    }
    let d = authz.authorizer.decide(conn, None);
    finish(authz, conn, d, None)
}

fn finish(
    authz: &AuthzState,
    conn: &ConnectionAttrs,
    d: Decision,
    req: Option<&RequestAttrs<'_>>,
) -> Result<Option<Decision>, ProxyError> {
    authz.count(&d);
    let a = &authz.authorizer;
    for (policy, rule) in &d.audits {
        // The AUDIT log line: who, what, which rule, and what was decided.
        tracing::info!(
            target: "weft::audit",
            audit = %a.rule_label(*policy, *rule),
            source = a.rule_source(*policy, *rule).unwrap_or(""),
            peer = conn.peer.principal.as_deref().unwrap_or("none"),
            method = req.map_or("", |r| r.method),
            path = req.map_or("", |r| r.path),
            port = conn.destination_port,
            decision = if d.allowed() { "allowed" } else { "denied" },
            "AUDIT policy matched"
        );
    }
    if d.allowed() {
        Ok(Some(d))
    } else {
        Err(ProxyError::new(Reason::Denied, a.explain(&d)))
    }
}
