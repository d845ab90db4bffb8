//! The policy as Weft itself reads and decides it: the YAML passes Weft's validator, has the
//! rule counts the docs promise, and the benchmark's request is allowed by the last ALLOW
//! rule only (so evaluation walks all of them); the token verifies with Weft's JWT code.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use weft_api::view::authz::AuthzAction;
use weft_policy::authz::RequestAuth;
use weft_policy::jwt::{self, Expect, Jwks};
use weft_policy::{Authorizer, ConnectionAttrs, PeerAttrs, RequestAttrs, Verdict};

use super::*;
use crate::peers::weft;

/// How many rules each policy has, as the module's docs and the README say.
const DENY_RULES: usize = 2;
const ALLOW_RULES: usize = 18;

/// Writes the bench mesh with the policy into a fresh directory and returns the Authorizer
/// proxy B would hold.
fn backend_authorizer(yaml: &str) -> Authorizer {
    let dir = std::env::temp_dir().join(format!("weft-bench-authz-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = weft::write_config(&dir, true, true).expect("mesh config");
    std::fs::write(config.join("policy.yaml"), yaml).expect("policy file");
    let (model, diags) = weft_api::validate::load_and_build(&config);
    let _ = std::fs::remove_dir_all(&dir);
    let model = model.unwrap_or_else(|| panic!("Weft refuses the policy:\n{diags}"));
    let scope = weft_api::compile::authz::scope(&model, "bench", "backend", None).expect("scope");
    assert_eq!(scope.targets.len(), 1, "one backend workload");
    Authorizer::new(scope.targets[0].policies.clone())
}

fn verified_auth(signer: &Signer, token: &str) -> RequestAuth {
    let jwks = Jwks::parse(&signer.jwks()).expect("the key set parses");
    let expect = Expect {
        issuer: ISSUER,
        audiences: &[AUDIENCE.to_string()],
        now_unix: now_unix(),
        leeway_secs: jwt::DEFAULT_LEEWAY_SECS,
    };
    let verified = jwt::verify(token, &jwks, &expect).expect("Weft accepts the token");
    RequestAuth {
        principal: format!("{ISSUER}/{SUBJECT}"),
        audiences: vec![AUDIENCE.to_string()],
        presenter: None,
        claims: verified.claims,
        space_delimited: Vec::new(),
    }
}

#[test]
fn the_request_walks_every_rule_and_only_the_last_allows_it() {
    let signer = Signer::generate("k").expect("key");
    let authorizer = backend_authorizer(&policy_yaml(&signer.jwks()));
    let rules = |action: AuthzAction| -> Vec<usize> {
        let policies = authorizer.policies().iter();
        let of = policies.filter(|p| p.action == action);
        of.map(|p| p.rules.as_ref().map_or(0, Vec::len)).collect()
    };
    assert_eq!(rules(AuthzAction::Deny), vec![DENY_RULES]);
    assert_eq!(rules(AuthzAction::Allow), vec![ALLOW_RULES]);
    assert_eq!(DENY_RULES + ALLOW_RULES, 20);

    let token = signer.token(&claims(now_unix(), Duration::from_secs(60)));
    let auth = verified_auth(&signer, &token);
    let conn = ConnectionAttrs {
        peer: PeerAttrs::from_spiffe(&format!("spiffe://{CLIENT}")),
        source_ip: IpAddr::from([127, 0, 20, 2]),
        destination_ip: IpAddr::from([127, 0, 20, 1]),
        destination_port: 8080,
        sni: None,
    };
    let decide = |tenant: &str, auth: Option<&RequestAuth>| {
        let mut headers = HeaderMap::new();
        headers.insert(TENANT_HEADER, HeaderValue::from_str(tenant).expect("value"));
        let req = RequestAttrs {
            method: "GET",
            host: weft::HOST,
            path: PATH,
            headers: &headers,
            auth,
        };
        authorizer.decide(&conn, Some(&req)).verdict
    };
    let allow = authorizer
        .policies()
        .iter()
        .position(|p| p.action == AuthzAction::Allow)
        .expect("an ALLOW policy");
    assert_eq!(
        decide(TENANT, Some(&auth)),
        Verdict::Allowed {
            policy: allow,
            rule: ALLOW_RULES - 1
        }
    );
    // Without the token's principal nothing allows it: the proxy must answer 403.
    assert_eq!(decide(TENANT, None), Verdict::NoAllowMatched);
    // The header condition is what tells rule 11 from rule 17.
    assert_eq!(
        decide("globex", Some(&auth)),
        Verdict::Allowed {
            policy: allow,
            rule: 11
        }
    );
}

#[test]
fn the_request_carries_a_token_that_lasts_the_run() {
    let lifetime = token_lifetime(2, Duration::from_secs(2), Duration::from_secs(10));
    assert_eq!(lifetime, Duration::from_secs(2 * (2 + 10 + 2 + 5) + 3600));
    let authz = make(weft::HOST, lifetime).expect("policy");
    let bearer = &authz.request.headers[0];
    assert_eq!(bearer.0, "authorization");
    let token = bearer.1.strip_prefix("Bearer ").expect("a bearer token");
    let payload = token.split('.').nth(1).expect("a payload");
    let payload = weft_api::jwks::b64::decode(payload).expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp >= now_unix() + lifetime.as_secs() - 5, "{claims}");
    assert_eq!(authz.request.path, PATH);
    assert!(authz.yaml.contains("kind: RequestAuthentication"));
    // A token from another key is refused by Weft (what `check_enforced` relies on).
    let signer = Signer::generate("bench-1").expect("key");
    let jwks = Jwks::parse(&signer.jwks()).expect("key set");
    let expect = Expect {
        issuer: ISSUER,
        audiences: &[],
        now_unix: now_unix(),
        leeway_secs: 0,
    };
    assert!(jwt::verify(token, &jwks, &expect).is_err());
}
