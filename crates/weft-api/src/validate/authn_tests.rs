//! RequestAuthentication validation: Istio's rules (and an inline key set that has a usable
//! key) at load, the default token locations written out, and the same scoping as
//! AuthorizationPolicy.

use std::path::Path;

use crate::compile::{compile, ProxyIdentity};
use crate::load::load_str;

const MESH: &str = r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-0, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: reviews}, serviceAccount: reviews}
"#;

const ED25519: &str =
    r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

fn check(spec: &str) -> (Option<crate::model::Model>, crate::Diagnostics) {
    let text = format!("{MESH}---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: jwt, namespace: shop}}\nspec:\n{spec}");
    super::build_loaded(load_str(Path::new("ra.yaml"), &text))
}

fn error(spec: &str) -> String {
    let (model, diags) = check(spec);
    assert!(model.is_none(), "expected an error for:\n{spec}");
    let e = diags.errors().next().cloned().expect("an error");
    format!("{}: {}", e.field.unwrap_or_default(), e.message)
}

#[test]
fn bad_rules_are_load_errors() {
    let jwks = ED25519.replace('"', "\\\"");
    for (spec, want) in [
        ("  jwtRules: [{jwksUri: \"https://k.example/jwks\"}]\n".to_string(), "spec.jwtRules[0].issuer: a JWT rule needs an `issuer`"),
        (format!("  jwtRules: [{{issuer: i, jwks: \"{jwks}\", jwksUri: \"https://k.example\"}}]\n"), "spec.jwtRules[0]: set `jwks` or `jwksUri`"),
        ("  jwtRules: [{issuer: i, jwks: \"{\\\"keys\\\": []}\"}]\n".to_string(), "spec.jwtRules[0].jwks: no usable key: the key set is empty"),
        ("  jwtRules: [{issuer: i, jwks: \"{\\\"keys\\\": [{\\\"kty\\\": \\\"oct\\\", \\\"k\\\": \\\"c2VjcmV0\\\"}]}\"}]\n".to_string(), "spec.jwtRules[0].jwks: no usable key: 1 oct key (symmetric keys are not supported)"),
        ("  jwtRules: [{issuer: i, jwksUri: \"ftp://k.example/jwks\"}]\n".to_string(), "spec.jwtRules[0].jwksUri: `ftp://k.example/jwks` is not an http(s) URL"),
        ("  jwtRules: [{issuer: i, jwksUri: \"https://k\", outputClaimToHeaders: [{header: x-a, claim: a}, {header: X-A, claim: b}]}]\n".to_string(), "spec.jwtRules[0].outputClaimToHeaders[1].header: `X-A` is written twice"),
        ("  jwtRules: [{issuer: i, jwksUri: \"https://k\", outputClaimToHeaders: [{header: \"x a\", claim: a}]}]\n".to_string(), "spec.jwtRules[0].outputClaimToHeaders[0].header"),
        ("  jwtRules: [{issuer: i, jwksUri: \"https://k\", timeout: 0s}]\n".to_string(), "spec.jwtRules[0].timeout: at least 1ms"),
        ("  jwtRules: [{issuer: i, jwksUri: \"https://k\", fromHeaders: [{name: \"bad name\"}]}]\n".to_string(), "spec.jwtRules[0].fromHeaders[0].name"),
        ("  jwtRules: [{issuer: i, failureMode: STRICT}]\n".to_string(), "spec.jwtRules[0]"),
    ] {
        let got = error(&spec);
        assert!(got.starts_with(want), "for\n{spec}\nexpected `{want}…`, got `{got}`");
    }
}

#[test]
fn rules_reach_their_workloads_with_defaults_and_keys() {
    let jwks = ED25519.replace('"', "\\\"");
    let spec = format!("  selector: {{matchLabels: {{app: reviews}}}}\n  jwtRules:\n  - {{issuer: \"https://inline.example\", jwks: \"{jwks}\"}}\n  - {{issuer: \"https://remote.example\", jwksUri: \"http://127.0.0.1:1/jwks\", fromHeaders: [{{name: X-Token}}], forwardOriginalToken: true}}\n  - {{issuer: \"https://discovered.example\"}}\n");
    let (model, diags) = check(&spec);
    let mut model = model.unwrap_or_else(|| panic!("{diags}"));
    model.fetched_jwks.insert(
        "http://127.0.0.1:1/jwks".into(),
        Err("connection refused".into()),
    );
    let who = ProxyIdentity {
        namespace: "shop".into(),
        workload: Some("reviews-0".into()),
    };
    let view = compile(&model, &who).expect("compile");
    let p = &view.inbound.jwt[0];
    assert_eq!(p.label(), "shop/jwt");
    let [inline, remote, discovered] = &p.rules[..] else {
        panic!("three rules: {p:?}")
    };
    // Inline keys travel as they are; the default locations are written out.
    assert!(inline.jwks.is_some() && inline.jwks_error.is_none());
    assert_eq!(inline.from_headers[0].name, "authorization");
    assert_eq!(inline.from_headers[0].prefix, "Bearer ");
    assert_eq!(inline.from_params, vec!["access_token".to_string()]);
    // A named location replaces the defaults; a failed fetch is carried, not fatal.
    assert_eq!(remote.from_headers[0].name, "x-token");
    assert!(remote.from_params.is_empty() && remote.forward_original_token);
    assert_eq!(remote.jwks_error.as_deref(), Some("connection refused"));
    assert!(discovered
        .jwks_error
        .as_deref()
        .unwrap_or("")
        .contains("has not been fetched"));
    let uris: Vec<String> = crate::compile::authn::uris_to_fetch(&model)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(
        uris,
        [
            "http://127.0.0.1:1/jwks",
            "https://discovered.example/.well-known/openid-configuration"
        ]
    );
}
