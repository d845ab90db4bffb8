//! weft-2-authz's policy: what the callee's proxy (B) enforces on top of weft-2-mtls's hop.
//!
//! * A RequestAuthentication with the key set inline (an Ed25519 key made for the run, see
//!   [`super::jwt`]): every request carries `Authorization: Bearer <token>`. Proxy B
//!   checks it on every request: the signature once, then (for a token it has verified)
//!   its cache of verified tokens, with the expiry and claims checked each time, as a real
//!   proxy sees the same caller's token again and again.
//! * Two AuthorizationPolicies with 20 rules between them, written as a service owner would:
//!   a DENY policy of 2 rules (callers from outside the mesh's namespaces, admin and debug
//!   paths) and an ALLOW policy of 18 rules by principal, service account, namespace,
//!   request principal, method, path prefix and template, host, port, IP block, header and
//!   JWT claim. The benchmark's request matches none of the DENY rules and only the *last*
//!   ALLOW rule, so each request walks all 20: the earlier ALLOW rules fail at different
//!   fields (the caller, the method, the path, a header, a claim), as they would in a real
//!   policy, rather than all at the first field.
//!
//! A rule that no request depends on proves nothing if the policy is not applied at all, so
//! once the setup answers, [`check_enforced`] checks that the proxy refuses the same request
//! without its token (403) and with a token from another key (401).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use super::jwt::{now_unix, Signer};
use crate::request::RequestShape;

/// The token's issuer, as the RequestAuthentication names it.
pub const ISSUER: &str = "https://login.bench.example";
/// The token's subject: the request principal is `ISSUER/SUBJECT`.
pub const SUBJECT: &str = "bench-client";
/// The audience the RequestAuthentication requires.
pub const AUDIENCE: &str = "backend.bench";
/// What the benchmark requests: an order, by id (rule 17's path template).
pub const PATH: &str = "/api/v1/orders/42";
/// The header rule 17's condition checks.
pub const TENANT_HEADER: &str = "x-tenant";
pub const TENANT: &str = "acme";
/// The caller's SPIFFE id as AuthorizationPolicy writes it (proxy A's workload `client`).
pub const CLIENT: &str = "cluster.local/ns/bench/sa/client";

/// The setup's policy file and the request that passes it.
pub struct Authz {
    /// RequestAuthentication and AuthorizationPolicies, for the control plane's config dir.
    pub yaml: String,
    /// `GET PATH` with the token and the tenant header.
    pub request: RequestShape,
}

/// Makes a key, the policies that trust it and a token valid for `valid_for` from now.
pub fn make(host: &str, valid_for: Duration) -> Result<Authz> {
    let signer = Signer::generate("bench-1")?;
    let token = signer.token(&claims(now_unix(), valid_for));
    Ok(Authz {
        yaml: policy_yaml(&signer.jwks()),
        request: RequestShape {
            host: host.to_string(),
            path: PATH.to_string(),
            headers: vec![
                ("authorization".to_string(), format!("Bearer {token}")),
                (TENANT_HEADER.to_string(), TENANT.to_string()),
            ],
        },
    })
}

/// How long the token must stay valid: one setup is started, measured at every rate (a
/// warm-up, the measured window and the load generator's deadline each) and stopped before
/// the next round makes a new token; an hour on top covers slow starts. Nothing depends on
/// the token expiring, so the margin is generous.
pub fn token_lifetime(rates: usize, warmup: Duration, duration: Duration) -> Duration {
    let per_rate = warmup + duration + crate::loadgen::REQUEST_TIMEOUT + Duration::from_secs(5);
    per_rate * u32::try_from(rates).unwrap_or(u32::MAX) + Duration::from_secs(3600)
}

/// The token's claims: issuer, subject, audience, lifetime, and the OAuth scopes rule 17
/// and rule 7 and 16 look at.
fn claims(now: u64, valid_for: Duration) -> serde_json::Value {
    json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": [AUDIENCE],
        "iat": now,
        "nbf": now,
        "exp": now + valid_for.as_secs(),
        "scope": "orders:read orders:list profile",
    })
}

/// The RequestAuthentication and the two AuthorizationPolicies, for workload `backend`.
fn policy_yaml(jwks: &str) -> String {
    let jwt_callers = format!("requestPrincipals: [\"{ISSUER}/*\"]");
    format!(
        r#"# written by weft-bench: weft-2-authz's policies (see bench/src/peers/authz.rs)
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: backend-jwt, namespace: bench}}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  jwtRules:
  - issuer: "{ISSUER}"
    audiences: [{AUDIENCE}]
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: backend-deny, namespace: bench}}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  action: DENY
  rules:
  # 0: nobody from outside the application namespaces
  - from: [{{source: {{notNamespaces: [bench, monitoring]}}}}]
  # 1: admin and debug endpoints, whoever asks
  - to: [{{operation: {{paths: ["/admin/*", "/debug/{{**}}"]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: backend-api, namespace: bench}}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  action: ALLOW
  rules:
  # 0: the frontend serves static assets
  - from: [{{source: {{principals: ["cluster.local/ns/bench/sa/frontend"]}}}}]
    to: [{{operation: {{methods: [GET, HEAD], paths: ["/static/*", "/favicon.ico"]}}}}]
  # 1: Prometheus scrapes
  - from: [{{source: {{principals: ["cluster.local/ns/monitoring/sa/prometheus"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/metrics", "/stats/*"]}}}}]
  # 2: probes from the monitoring namespace
  - from: [{{source: {{namespaces: [monitoring]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/healthz", "/readyz"]}}}}]
  # 3: checkout takes payments
  - from: [{{source: {{serviceAccounts: [bench/checkout]}}}}]
    to: [{{operation: {{methods: [POST], paths: ["/api/v1/payments", "/api/v1/payments/{{*}}/capture"]}}}}]
  # 4: the client's own health checks
  - from: [{{source: {{principals: ["{CLIENT}"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/healthz"]}}}}]
  # 5: the client creates orders for a signed-in user
  - from: [{{source: {{principals: ["{CLIENT}"], {jwt_callers}}}}}]
    to: [{{operation: {{methods: [POST], paths: ["/api/v1/orders"]}}}}]
  # 6: ... and changes them
  - from: [{{source: {{principals: ["{CLIENT}"], {jwt_callers}}}}}]
    to: [{{operation: {{methods: [PUT, PATCH], paths: ["/api/v1/orders/{{*}}"]}}}}]
  # 7: deleting one needs the admin scope
  - from: [{{source: {{principals: ["{CLIENT}"], {jwt_callers}}}}}]
    to: [{{operation: {{methods: [DELETE], paths: ["/api/v1/orders/{{*}}"]}}}}]
    when: [{{key: "request.auth.claims[scope]", values: ["orders:admin"]}}]
  # 8: the v2 API is for the new client only
  - from: [{{source: {{principals: ["cluster.local/ns/bench/sa/client-v2"]}}}}]
    to: [{{operation: {{paths: ["/api/v2/{{**}}"]}}}}]
  # 9: user profiles, for any signed-in caller in the namespace
  - from: [{{source: {{namespaces: [bench], {jwt_callers}}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/api/v1/users/{{*}}/profile"]}}}}]
  # 10: the partner's tokens read orders
  - from: [{{source: {{requestPrincipals: ["https://partner.example/*"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/api/v1/orders/*"]}}}}]
  # 11: the other tenant's orders
  - from: [{{source: {{principals: ["{CLIENT}"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/api/v1/orders/{{*}}"]}}}}]
    when: [{{key: "request.headers[{TENANT_HEADER}]", values: [globex]}}]
  # 12: the catalog, for the client in any trust domain
  - from: [{{source: {{principals: ["*/ns/bench/sa/client"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/api/v1/catalog/*"]}}}}]
  # 13: the admin host name
  - from: [{{source: {{namespaces: [bench]}}}}]
    to: [{{operation: {{hosts: ["admin.bench", "admin.bench:*"]}}}}]
  # 14: batch jobs from the office network
  - from: [{{source: {{ipBlocks: ["10.0.0.0/8"]}}}}]
    to: [{{operation: {{methods: [POST], paths: ["/api/v1/batch/*"]}}}}]
  # 15: the gRPC port
  - from: [{{source: {{namespaces: [bench]}}}}]
    to: [{{operation: {{ports: ["9090"]}}}}]
  # 16: order reads for tokens with the write scope
  - from: [{{source: {{principals: ["{CLIENT}"], {jwt_callers}}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/api/v1/orders/{{*}}"]}}}}]
    when: [{{key: "request.auth.claims[scope]", values: ["orders:write"]}}]
  # 17: what the benchmark sends: the client reads its tenant's orders for a user
  - from: [{{source: {{principals: ["{CLIENT}"], requestPrincipals: ["{ISSUER}/{SUBJECT}"]}}}}]
    to: [{{operation: {{methods: [GET, HEAD], paths: ["/api/v1/orders/{{*}}"]}}}}]
    when:
    - {{key: "request.headers[{TENANT_HEADER}]", values: [{TENANT}]}}
    - {{key: "request.auth.claims[scope]", values: ["orders:read"]}}
"#
    )
}

/// Checks that proxy B enforces the policy: the benchmark's request without its token is
/// refused (403: only rule 17 could allow it, and it needs the request principal), and with
/// a token signed by a key the RequestAuthentication does not trust it is refused (401).
pub fn check_enforced(entry: SocketAddr, request: &RequestShape) -> Result<()> {
    let timeout = Duration::from_secs(2);
    let no_token = request.without("authorization");
    let stranger = Signer::generate("bench-1")?;
    let forged = stranger.token(&claims(now_unix(), Duration::from_secs(600)));
    let forged = request.with("authorization", &format!("Bearer {forged}"));
    for (what, req, want) in [
        ("without its token", &no_token, 403),
        ("with a token from an untrusted key", &forged, 401),
    ] {
        let got = super::send(entry, req, timeout)?;
        if got != want {
            bail!(
                "the policy is not enforced: GET {} {what} returned {got}, not {want}",
                req.path
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
