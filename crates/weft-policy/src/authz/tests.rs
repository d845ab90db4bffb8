//! Istio's authorization semantics, case by case, on policies loaded from YAML the way a
//! proxy gets them (validated and compiled for the workload `shop/reviews-0`).

use std::net::IpAddr;
use std::path::Path;

use http::HeaderMap;

use super::*;

const MESH: &str = r#"apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-0, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: reviews}, serviceAccount: reviews}
"#;

/// The authorizer of `shop/reviews-0` under `policies` (YAML documents).
fn authorizer(policies: &str) -> Authorizer {
    let text = format!("{MESH}---\n{policies}");
    let (model, diags) =
        weft_api::validate::build_loaded(weft_api::load::load_str(Path::new("p.yaml"), &text));
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let who = weft_api::compile::ProxyIdentity {
        namespace: "shop".into(),
        workload: Some("reviews-0".into()),
    };
    let view = weft_api::compile::compile(&model, &who).expect("compile");
    Authorizer::new(view.inbound.authz)
}

fn policy(name: &str, spec: &str) -> String {
    format!("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n{spec}---\n")
}

fn mtls(principal: &str) -> ConnectionAttrs {
    conn(PeerAttrs::from_spiffe(&format!("spiffe://{principal}")))
}

fn plaintext() -> ConnectionAttrs {
    conn(PeerAttrs::default())
}

fn conn(peer: PeerAttrs) -> ConnectionAttrs {
    ConnectionAttrs {
        peer,
        source_ip: "10.0.0.3".parse::<IpAddr>().expect("ip"),
        destination_ip: "10.0.0.2".parse::<IpAddr>().expect("ip"),
        destination_port: 8080,
        sni: None,
    }
}

const FRONTEND: &str = "cluster.local/ns/shop/sa/frontend";
const OTHER: &str = "cluster.local/ns/other/sa/intruder";

/// Decides an HTTP request; `headers` as name/value pairs.
fn http(
    a: &Authorizer,
    c: &ConnectionAttrs,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Decision {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v).expect("value"),
        );
    }
    let req = RequestAttrs {
        method,
        host: "reviews.shop:9080",
        path,
        headers: &map,
        auth: None,
    };
    a.decide(c, Some(&req))
}

fn explain(a: &Authorizer, d: &Decision) -> String {
    format!(
        "{} {}",
        if d.allowed() { "allow" } else { "deny" },
        a.explain(d)
    )
}

#[test]
fn deny_first_then_allow_then_default() {
    let a = authorizer(&format!(
        "{}{}",
        policy(
            "allow-frontend",
            &format!("  rules: [{{from: [{{source: {{principals: [\"{FRONTEND}\"]}}}}]}}]\n")
        ),
        policy(
            "deny-write",
            "  action: DENY\n  rules: [{to: [{operation: {paths: [/write]}}]}]\n"
        ),
    ));
    let f = mtls(FRONTEND);
    assert_eq!(
        explain(&a, &http(&a, &f, "GET", "/read", &[])),
        "allow ALLOW shop/allow-frontend rule 0"
    );
    assert_eq!(
        explain(&a, &http(&a, &f, "POST", "/write", &[])),
        "deny DENY shop/deny-write rule 0"
    );
    assert_eq!(
        explain(&a, &http(&a, &mtls(OTHER), "GET", "/read", &[])),
        "deny no ALLOW policy matched (shop/allow-frontend)"
    );
    // Plaintext has no principal: it never matches `principals`.
    assert!(!http(&a, &plaintext(), "GET", "/read", &[]).allowed());
    // Without an ALLOW policy, what is not denied is allowed.
    let only_deny = authorizer(&policy(
        "deny-write",
        "  action: DENY\n  rules: [{to: [{operation: {paths: [/write]}}]}]\n",
    ));
    assert_eq!(
        explain(
            &only_deny,
            &http(&only_deny, &plaintext(), "GET", "/x", &[])
        ),
        "allow no ALLOW policy applies"
    );
}

#[test]
fn absent_rules_allow_nothing_and_an_empty_rule_allows_everything() {
    let nothing = authorizer(&policy("allow-nothing", "  {}\n"));
    assert!(!http(&nothing, &mtls(FRONTEND), "GET", "/", &[]).allowed());
    let everything = authorizer(&policy("allow-all", "  rules: [{}]\n"));
    assert!(http(&everything, &plaintext(), "DELETE", "/x", &[]).allowed());
}

#[test]
fn audit_never_decides_but_is_reported() {
    let a = authorizer(&policy(
        "audit-writes",
        "  action: AUDIT\n  rules: [{to: [{operation: {methods: [POST]}}]}]\n",
    ));
    let d = http(&a, &plaintext(), "POST", "/x", &[]);
    assert!(d.allowed());
    assert_eq!(d.audits, vec![(0, 0)]);
    assert!(http(&a, &plaintext(), "GET", "/x", &[]).audits.is_empty());
}

#[test]
fn sources_operations_and_their_negations() {
    let a = authorizer(&policy(
        "mixed",
        "  rules:\n  - from: [{source: {namespaces: [shop]}}]\n    to: [{operation: {methods: [GET, HEAD], paths: [\"/api/{*}/read\", \"/static/*\"], notPaths: [/static/secret]}}]\n  - from: [{source: {notNamespaces: [shop]}}]\n    to: [{operation: {hosts: [REVIEWS.shop:9080]}}]\n",
    ));
    let f = mtls(FRONTEND);
    let o = mtls(OTHER);
    assert!(http(&a, &f, "GET", "/api/v1/read", &[]).allowed());
    assert!(
        !http(&a, &f, "GET", "/api/v1/x/read", &[]).allowed(),
        "{{*}} is one segment"
    );
    assert!(!http(&a, &f, "POST", "/api/v1/read", &[]).allowed());
    assert!(http(&a, &f, "HEAD", "/static/app.js", &[]).allowed());
    assert!(!http(&a, &f, "GET", "/static/secret", &[]).allowed());
    // The second rule: another namespace, hosts case-insensitive.
    assert_eq!(
        explain(&a, &http(&a, &o, "POST", "/any", &[])),
        "allow ALLOW shop/mixed rule 1"
    );
    // notNamespaces alone matches plaintext too (it has no namespace): Istio's advisory.
    assert!(http(&a, &plaintext(), "POST", "/any", &[]).allowed());
}

#[test]
fn service_accounts_ip_blocks_and_conditions() {
    let a = authorizer(&policy(
        "conditions",
        "  rules:\n  - from: [{source: {serviceAccounts: [frontend], ipBlocks: [10.0.0.0/24]}}]\n    when:\n    - {key: \"request.headers[x-tenant]\", values: [\"acme*\"]}\n    - {key: destination.port, values: [\"8080\"]}\n    - {key: source.namespace, notValues: [blocked]}\n",
    ));
    let f = mtls(FRONTEND);
    assert!(http(&a, &f, "GET", "/", &[("x-tenant", "acme-1")]).allowed());
    assert!(!http(&a, &f, "GET", "/", &[("x-tenant", "other")]).allowed());
    assert!(
        !http(&a, &f, "GET", "/", &[]).allowed(),
        "an absent header matches no values"
    );
    let mut far = mtls(FRONTEND);
    far.source_ip = "192.0.2.1".parse().expect("ip");
    assert!(!http(&a, &far, "GET", "/", &[("x-tenant", "acme")]).allowed());
    let mut port = mtls(FRONTEND);
    port.destination_port = 9090;
    assert!(!http(&a, &port, "GET", "/", &[("x-tenant", "acme")]).allowed());
    assert!(!http(&a, &mtls(OTHER), "GET", "/", &[("x-tenant", "acme")]).allowed());
    // Repeated headers are joined with `,` before matching.
    let exact = authorizer(&policy(
        "joined",
        "  rules: [{when: [{key: \"request.headers[x-a]\", values: [\"1,2\"]}]}]\n",
    ));
    assert!(http(&exact, &f, "GET", "/", &[("x-a", "1"), ("x-a", "2")]).allowed());
}

#[test]
fn http_rules_on_plain_tcp_are_istios() {
    // An ALLOW rule with an HTTP field never matches TCP: the connection is not allowed.
    let allow = authorizer(&policy(
        "allow-get",
        "  rules: [{to: [{operation: {methods: [GET]}}]}]\n",
    ));
    assert_eq!(
        allow.decide(&mtls(FRONTEND), None).verdict,
        Verdict::NoAllowMatched
    );
    // ...but its TCP-only rules do.
    let allow_port = authorizer(&policy(
        "allow-port",
        "  rules: [{to: [{operation: {ports: [\"8080\"]}}]}]\n",
    ));
    assert!(allow_port.decide(&mtls(FRONTEND), None).allowed());
    // A DENY rule with HTTP fields denies the port's TCP traffic.
    let deny = authorizer(&policy(
        "deny-admin",
        "  action: DENY\n  rules: [{to: [{operation: {paths: [/admin]}}]}]\n",
    ));
    assert_eq!(
        deny.decide(&plaintext(), None).verdict,
        Verdict::Denied { policy: 0, rule: 0 }
    );
    assert!(http(&deny, &plaintext(), "GET", "/public", &[]).allowed());
}

#[test]
fn policies_attached_to_a_service_cover_its_ports_only() {
    let a = authorizer(&policy(
        "by-service",
        "  targetRefs: [{kind: Service, group: \"\", name: reviews}]\n  rules: [{from: [{source: {principals: [\"cluster.local/ns/shop/sa/frontend\"]}}]}]\n",
    ));
    assert_eq!(a.policies()[0].ports, Some(vec![8080]));
    assert!(!http(&a, &mtls(OTHER), "GET", "/", &[]).allowed());
    let mut admin = mtls(OTHER);
    admin.destination_port = 9901;
    assert_eq!(
        http(&a, &admin, "GET", "/", &[]).verdict,
        Verdict::NoAllowPolicy
    );
}

#[test]
fn jwt_attributes() {
    let a = authorizer(&policy(
        "jwt",
        "  rules:\n  - from: [{source: {requestPrincipals: [\"https://issuer.example/*\"]}}]\n    when:\n    - {key: \"request.auth.claims[groups]\", values: [admins]}\n    - {key: \"request.auth.claims[org][team]\", values: [core]}\n    - {key: \"request.auth.claims[scope]\", values: [write]}\n    - {key: request.auth.audiences, values: [reviews]}\n",
    ));
    let auth = RequestAuth {
        principal: "https://issuer.example/alice".into(),
        audiences: vec!["reviews".into(), "ratings".into()],
        presenter: None,
        claims: serde_json::json!({"groups": ["users", "admins"], "org": {"team": "core"}, "scope": "read write"}),
        space_delimited: Vec::new(),
    };
    let map = HeaderMap::new();
    let mut req = RequestAttrs {
        method: "GET",
        host: "h",
        path: "/",
        headers: &map,
        auth: Some(&auth),
    };
    let c = plaintext();
    assert!(a.decide(&c, Some(&req)).allowed());
    let other_issuer = RequestAuth {
        principal: "https://evil.example/alice".into(),
        ..auth.clone()
    };
    req.auth = Some(&other_issuer);
    assert!(!a.decide(&c, Some(&req)).allowed());
    let no_admin = RequestAuth {
        claims: serde_json::json!({"groups": ["users"], "org": {"team": "core"}, "scope": "read write"}),
        ..auth.clone()
    };
    req.auth = Some(&no_admin);
    assert!(!a.decide(&c, Some(&req)).allowed());
    req.auth = None;
    assert!(
        !a.decide(&c, Some(&req)).allowed(),
        "no JWT: no request principal"
    );
}

#[test]
fn connections_every_request_of_which_is_refused() {
    let a = authorizer(&format!(
        "{}{}",
        policy("allow-frontend", &format!("  rules: [{{from: [{{source: {{principals: [\"{FRONTEND}\"]}}}}], to: [{{operation: {{paths: [/read]}}}}]}}]\n")),
        policy("deny-other-ns", "  action: DENY\n  rules: [{from: [{source: {namespaces: [other]}}]}]\n"),
    ));
    // The frontend may send some requests: its connection stays.
    assert_eq!(a.refuses_connection(&mtls(FRONTEND)), None);
    // A peer in `other` is denied outright; a plaintext one can match no ALLOW rule.
    assert_eq!(
        a.refuses_connection(&mtls(OTHER)),
        Some(Verdict::Denied { policy: 1, rule: 0 })
    );
    assert_eq!(
        a.refuses_connection(&plaintext()),
        Some(Verdict::NoAllowMatched)
    );
    // A DENY rule on paths refuses some requests, not the connection.
    let paths = authorizer(&policy(
        "deny-admin",
        "  action: DENY\n  rules: [{to: [{operation: {paths: [/admin]}}]}]\n",
    ));
    assert_eq!(paths.refuses_connection(&plaintext()), None);
    assert_eq!(Authorizer::default().refuses_connection(&plaintext()), None);
}
