//! AuthorizationPolicy validation and scoping: what Istio refuses (and what Weft cannot
//! evaluate) is a load error with file, line and field; valid policies reach the workloads
//! they select, and only those.

use std::path::Path;

use crate::compile::{compile, ProxyIdentity};
use crate::load::load_str;
use crate::view::authz::{AuthzAction, PathMatch, StringMatch};

/// Two workloads in `shop` (frontend, reviews) behind Services, one in `other`.
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
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: frontend-0, namespace: shop}
spec: {address: 10.0.0.3, labels: {app: frontend}, serviceAccount: frontend}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: elsewhere-0, namespace: other}
spec: {address: 10.0.0.4, labels: {app: reviews}, serviceAccount: elsewhere}
"#;

/// Lines in MESH plus the `---` before the policy.
fn policy_line() -> u64 {
    MESH.lines().count() as u64 + 2
}

fn check(policy: &str) -> (Option<crate::model::Model>, crate::Diagnostics) {
    let text = format!("{MESH}---\n{policy}");
    super::build_loaded(load_str(Path::new("p.yaml"), &text))
}

fn policy(namespace: &str, spec: &str) -> String {
    format!("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: {namespace}}}\nspec:\n{spec}")
}

/// The first error for `spec` (in namespace `shop`), as `field: message`.
fn error(spec: &str) -> String {
    let (model, diags) = check(&policy("shop", spec));
    assert!(model.is_none(), "expected an error for:\n{spec}");
    let e = diags.errors().next().cloned().expect("an error");
    assert_eq!(e.file, Path::new("p.yaml"), "{e}");
    assert!(
        e.line >= policy_line(),
        "{e} (policy starts at {})",
        policy_line()
    );
    format!("{}: {}", e.field.unwrap_or_default(), e.message)
}

#[test]
fn bad_policies_are_load_errors_naming_the_field() {
    let cases = [
        ("  action: CUSTOM\n  rules: [{}]\n", "spec.action: CUSTOM"),
        ("  provider: {name: ext}\n  rules: [{}]\n", "spec.provider: external"),
        ("  action: MAYBE\n", "spec.action: `MAYBE` is not an action"),
        ("  action: DENY\n", "spec.rules: a DENY policy without rules"),
        ("  rules: [{from: [{source: {principals: [\"spiffe://cluster.local/ns/shop/sa/a\"]}}]}]\n", "spec.rules[0].from[0].source.principals[0]: `spiffe://"),
        ("  rules: [{from: [{source: {principals: [frontend]}}]}]\n", "spec.rules[0].from[0].source.principals[0]: `frontend` is not a principal"),
        ("  rules: [{from: [{source: {notPrincipals: [\"\"]}}]}]\n", "spec.rules[0].from[0].source.notPrincipals[0]: empty value"),
        ("  rules: [{to: [{operation: {paths: [\"^/api/.*$\"]}}]}]\n", "spec.rules[0].to[0].operation.paths[0]: `^/api/.*$` looks like a regular expression"),
        ("  rules: [{to: [{operation: {paths: [\"/{**}/x/{*}\"]}}]}]\n", "spec.rules[0].to[0].operation.paths[0]: `{**}` must be the last operator"),
        ("  rules: [{to: [{operation: {notPaths: [\"/a/{*}.txt\"]}}]}]\n", "spec.rules[0].to[0].operation.notPaths[0]: `{*}.txt`"),
        ("  rules: [{to: [{operation: {ports: [\"http\"]}}]}]\n", "spec.rules[0].to[0].operation.ports[0]: `http` is not a port number"),
        ("  rules: [{from: [{source: {ipBlocks: [10.0.0.0/40]}}]}]\n", "spec.rules[0].from[0].source.ipBlocks[0]: `10.0.0.0/40`"),
        ("  rules: [{when: [{key: \"destination.labels[app]\", values: [x]}]}]\n", "spec.rules[0].when[0].key: `destination.labels[app]`"),
        ("  rules: [{when: [{key: \"experimental.envoy.filters.network.mysql_proxy[db.table]\", values: [x]}]}]\n", "spec.rules[0].when[0].key: `experimental.envoy.filters"),
        ("  rules: [{when: [{key: \"request.headers[x-a]\"}]}]\n", "spec.rules[0].when[0]: a condition needs `values` or `notValues`"),
        ("  rules: [{when: [{key: source.ip, values: [nope]}]}]\n", "spec.rules[0].when[0].values[0]: `nope`"),
        ("  rules: [{from: []}]\n", "spec.rules[0].from: `from` is empty"),
        ("  rules: [{from: [{}]}]\n", "spec.rules[0].from[0].source: each `from` entry needs a `source`"),
        ("  rules: [{from: [{source: {}}]}]\n", "spec.rules[0].from[0].source: a `source` with no fields"),
        ("  rules: [{to: [{operation: {}}]}]\n", "spec.rules[0].to[0].operation: an `operation` with no fields"),
        ("  rules: [{from: [{source: {serviceAccounts: [frontend], namespaces: [shop]}}]}]\n", "spec.rules[0].from[0].source.serviceAccounts: `serviceAccounts` cannot be combined"),
        ("  rules: [{from: [{source: {namespaces: [\"a*b\"]}}]}]\n", "spec.rules[0].from[0].source.namespaces[0]: `a*b`"),
        ("  selector: {matchLabels: {app: reviews}}\n  targetRefs: [{kind: Service, group: \"\", name: reviews}]\n  rules: [{}]\n", "spec.selector: set `selector` or `targetRefs`"),
        ("  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  rules: [{}]\n", "spec.targetRefs[0].kind: Weft attaches policies to Services only"),
        ("  targetRefs: [{kind: Service, group: \"\", name: ratings}]\n  rules: [{}]\n", "spec.targetRefs[0].name: Service shop/ratings does not exist"),
    ];
    for (spec, want) in cases {
        let got = error(spec);
        assert!(
            got.starts_with(want),
            "for\n{spec}\nexpected `{want}…`, got `{got}`"
        );
    }
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let (model, diags) = check(&policy(
        "shop",
        "  rules: [{to: [{operation: {path: [/read]}}]}]\n",
    ));
    assert!(model.is_none());
    let e = diags.errors().next().cloned().expect("an error");
    assert!(e.message.contains("unknown field `path`"), "{e}");
    assert!(e.to_string().starts_with("p.yaml:"), "{e}");
}

#[test]
fn a_rules_line_is_where_it_was_written() {
    let spec = "  action: DENY\n  rules:\n  - to: [{operation: {methods: [POST]}}]\n  - to: [{operation: {paths: [/admin/*]}}]\n";
    let (model, diags) = check(&policy("shop", spec));
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let p = &model.authz_policies[0].view;
    assert_eq!(p.action, AuthzAction::Deny);
    let rules = p.rules.as_ref().expect("rules");
    let start = policy_line();
    assert_eq!(p.source, format!("p.yaml:{start}"));
    assert_eq!(rules[0].source, format!("p.yaml:{}", start + 6));
    assert_eq!(rules[1].source, format!("p.yaml:{}", start + 7));
    assert_eq!(
        rules[1].to[0].paths.values,
        vec![PathMatch::String(StringMatch::Prefix("/admin/".into()))]
    );
}

fn policies_of(
    model: &crate::model::Model,
    workload: Option<(&str, &str)>,
    ns: &str,
) -> Vec<String> {
    let who = ProxyIdentity {
        namespace: workload.map_or(ns, |w| w.0).to_string(),
        workload: workload.map(|w| w.1.to_string()),
    };
    let view = compile(model, &who).expect("compile");
    view.inbound
        .authz
        .iter()
        .map(|p| match &p.ports {
            Some(ports) => format!("{} {ports:?}", p.label()),
            None => p.label(),
        })
        .collect()
}

#[test]
fn policies_reach_the_workloads_they_select() {
    let policies = [
        policy("shop", "  rules: [{}]\n").replace("name: p", "name: ns-wide"),
        policy(
            "shop",
            "  selector: {matchLabels: {app: reviews}}\n  rules: [{}]\n",
        )
        .replace("name: p", "name: by-label"),
        policy(
            "istio-system",
            "  action: DENY\n  rules: [{to: [{operation: {paths: [/debug]}}]}]\n",
        )
        .replace("name: p", "name: mesh"),
        policy(
            "istio-system",
            "  selector: {matchLabels: {app: reviews}}\n  action: AUDIT\n  rules: [{}]\n",
        )
        .replace("name: p", "name: mesh-label"),
        policy(
            "shop",
            "  targetRefs: [{kind: Service, group: \"\", name: reviews}]\n  rules: [{}]\n",
        )
        .replace("name: p", "name: by-service"),
    ];
    let (model, diags) = check(&policies.join("---\n"));
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(
        policies_of(&model, Some(("shop", "reviews-0")), "shop"),
        [
            "istio-system/mesh",
            "istio-system/mesh-label",
            "shop/by-label",
            "shop/by-service [8080]",
            "shop/ns-wide"
        ]
    );
    assert_eq!(
        policies_of(&model, Some(("shop", "frontend-0")), "shop"),
        ["istio-system/mesh", "shop/ns-wide"]
    );
    // Same labels in another namespace: only the mesh-wide ones.
    assert_eq!(
        policies_of(&model, Some(("other", "elsewhere-0")), "other"),
        ["istio-system/mesh", "istio-system/mesh-label"]
    );
    // A proxy without a workload still holds its namespace's and the mesh's.
    assert_eq!(
        policies_of(&model, None, "shop"),
        ["istio-system/mesh", "shop/ns-wide"]
    );
}

#[test]
fn allow_by_negation_under_permissive_is_a_warning() {
    let spec = "  rules: [{from: [{source: {notNamespaces: [other]}}]}]\n";
    let (model, diags) = check(&policy("shop", spec));
    assert!(model.is_some(), "{diags}");
    let w = diags.warnings().next().cloned().expect("a warning");
    assert!(w.message.contains("plaintext requests"), "{w}");
    // Under STRICT there is nothing to warn about.
    let strict = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n---\n";
    let (_, diags) = check(&format!("{strict}{}", policy("shop", spec)));
    assert_eq!(diags.warnings().count(), 0, "{diags}");
}
