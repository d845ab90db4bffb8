//! Validation tests: each rule the validator enforces, and the conformance manifests.

use std::path::Path;

use crate::compile::{compile, ProxyIdentity};
use crate::load::load_str;
use crate::view::PathMatch;

use super::build;

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: ns}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080, appProtocol: http}
  - {name: grpc, port: 7070}
---
apiVersion: v1
kind: Service
metadata: {name: echo-v1, namespace: ns}
spec:
  selector: {app: echo, version: v1}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1, namespace: ns}
spec: {address: 127.0.10.1, labels: {app: echo, version: v1}, serviceAccount: echo}
"#;

pub(super) fn check(extra: &str) -> (Option<crate::model::Model>, crate::Diagnostics) {
    let text = format!("{SERVICES}---\n{extra}");
    let (resources, mut diags) = load_str(Path::new("t.yaml"), &text);
    let (model, more) = build(&resources);
    diags.extend(more);
    (model, diags)
}

pub(super) fn first_error(extra: &str) -> crate::Diagnostic {
    let (_, diags) = check(extra);
    let first = diags.errors().next().cloned();
    first.unwrap_or_else(|| panic!("expected an error for:\n{extra}"))
}

const ROUTE_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]\n";

#[test]
fn valid_set_builds_and_assigns_vips() {
    let (model, diags) = check(ROUTE_HEAD);
    assert!(!diags.has_errors(), "{diags}");
    let model = model.expect("model");
    let vips: Vec<_> = model.services.values().filter_map(|s| s.vip).collect();
    assert_eq!(vips.len(), 2);
    assert_ne!(vips[0], vips[1]);
}

#[test]
fn dangling_backend_ref_names_file_line_field() {
    let d = first_error(&format!(
        "{ROUTE_HEAD}  rules:\n  - backendRefs:\n    - name: echo-v9\n      port: 80\n"
    ));
    assert_eq!(
        d.field.as_deref(),
        Some("spec.rules[0].backendRefs[0].name")
    );
    assert!(d.message.contains("ns/echo-v9 does not exist"), "{d}");
    assert!(d.hint.as_deref().unwrap_or("").contains("echo-v1"), "{d}");
    // SERVICES ends on line 21, "---" is line 22, and `name: echo-v9` is the route's 8th line.
    assert_eq!(d.line, 22 + 8, "{d}");
    assert!(
        d.to_string()
            .starts_with("t.yaml:30: error: HTTPRoute ns/r:"),
        "{d}"
    );
}

#[test]
fn weight_zero_dangling_backend_is_only_a_warning() {
    let (model, diags) = check(&format!(
        "{ROUTE_HEAD}  rules:\n  - backendRefs:\n    - {{name: echo-v1, port: 80, weight: 70}}\n    - {{name: echo-v3, port: 80, weight: 0}}\n"
    ));
    assert!(model.is_some(), "{diags}");
    assert_eq!(diags.warnings().count(), 1, "{diags}");
}

#[test]
fn each_rule_is_enforced() {
    let cases = [
        ("  rules:\n  - matches: [{path: {type: RegularExpression, value: \"(\"}}]\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].matches[0].path.value"),
        ("  rules:\n  - matches: [{path: {type: Exact, value: nope}}]\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].matches[0].path.value"),
        ("  rules:\n  - matches: [{method: FETCH}]\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].matches[0].method"),
        ("  rules:\n  - matches: [{headers: [{name: a, value: x}, {name: A, value: y}]}]\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].matches[0].headers[1].name"),
        ("  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {statusCode: 200}}\n", "spec.rules[0].filters[0].requestRedirect.statusCode"),
        ("  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {hostname: x}}\n    - {type: URLRewrite, urlRewrite: {hostname: y}}\n", "spec.rules[0].filters"),
        ("  rules:\n  - matches: [{path: {type: Exact, value: /a}}]\n    filters:\n    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].filters[0].urlRewrite.path.type"),
        ("  rules:\n  - backendRefs: [{name: echo}]\n", "spec.rules[0].backendRefs[0].port"),
        ("  rules:\n  - backendRefs: [{name: echo, port: 81}]\n", "spec.rules[0].backendRefs[0].port"),
        ("  rules:\n  - filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}]\n", "spec.rules[0].filters[0].extensionRef.kind"),
        ("  rules:\n  - filters: [{type: CORS, cors: {}}]\n", "spec.rules[0].filters[0].type"),
        ("  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n    backendRefs: [{name: echo, port: 80}]\n", "spec.rules[0].timeouts.backendRequest"),
        ("  rules:\n  - sessionPersistence: {}\n", "spec.rules[0].sessionPersistence"),
        ("  hostnames: [a.example]\n", "spec.hostnames"),
    ];
    for (rules, field) in cases {
        let d = first_error(&format!("{ROUTE_HEAD}{rules}"));
        assert_eq!(d.field.as_deref(), Some(field), "{d}\nfor:\n{rules}");
    }
}

#[test]
fn parent_must_be_an_existing_service_port() {
    let d = first_error("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\nspec:\n  parentRefs: [{name: echo}]\n");
    assert!(d.message.contains("attach to Services"), "{d}");
    let d = first_error("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: echo, port: 9}]\n");
    assert_eq!(d.field.as_deref(), Some("spec.parentRefs[0].port"));
}

#[test]
fn duplicates_and_conflicts() {
    let d = first_error("apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: ns}\nspec: {ports: [{port: 80}]}\n");
    assert!(d.message.starts_with("duplicate Service ns/echo"), "{d}");
    let d = first_error("apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: ns}\nspec: {ports: [{port: 80}, {port: 80}]}\n");
    assert_eq!(d.field.as_deref(), Some("spec.ports[1].port"));
    let d = first_error("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w2, namespace: ns}\nspec: {address: 127.0.10.1}\n");
    assert!(
        d.message
            .contains("already the address of WorkloadEntry ns/echo-v1"),
        "{d}"
    );
    let d = first_error("apiVersion: v1\nkind: Service\nmetadata: {name: udp, namespace: ns}\nspec: {ports: [{port: 53, protocol: UDP}]}\n");
    assert_eq!(d.field.as_deref(), Some("spec.ports[0].protocol"));
    // The control plane's identity is never a workload's.
    let d = first_error("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: fake, namespace: weft-system}\nspec: {address: 127.0.10.9, serviceAccount: weft-control}\n");
    assert_eq!(d.field.as_deref(), Some("spec.serviceAccount"), "{d}");
    assert!(d.message.contains("the control plane's identity"), "{d}");
}

#[test]
fn destination_rule_load_balancer() {
    let (model, diags) = check("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: ns}\nspec:\n  host: echo\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    portLevelSettings:\n    - port: {number: 7070}\n      loadBalancer: {consistentHash: {httpHeaderName: X-User}}\n");
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let view = compile(
        &model,
        &ProxyIdentity {
            namespace: "ns".into(),
            workload: None,
        },
    )
    .expect("view");
    use crate::view::LoadBalancer;
    assert_eq!(
        view.backends["ns/echo:80"].load_balancer,
        LoadBalancer::RoundRobin
    );
    assert_eq!(
        view.backends["ns/echo:7070"].load_balancer,
        LoadBalancer::HashHeader {
            name: "x-user".into()
        }
    );
    assert_eq!(
        view.backends["ns/echo-v1:80"].load_balancer,
        LoadBalancer::PeakEwma
    );
    let d = first_error("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: ns}\nspec:\n  host: echo\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n");
    assert_eq!(d.field.as_deref(), Some("spec.trafficPolicy.tls"));
}

#[test]
fn compile_sorts_matches_by_precedence_and_resolves_endpoints() {
    let (model, diags) = check(&format!(
        "{ROUTE_HEAD}  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /}}}}, {{headers: [{{name: version, value: one}}]}}]\n    backendRefs: [{{name: echo-v1, port: 80}}]\n  - matches: [{{path: {{type: PathPrefix, value: /v2/}}}}, {{path: {{type: Exact, value: /exact}}}}]\n    backendRefs: [{{name: echo, port: 80}}]\n"
    ));
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let view = compile(
        &model,
        &ProxyIdentity {
            namespace: "ns".into(),
            workload: Some("echo-v1".into()),
        },
    )
    .expect("view");
    let echo = view
        .services
        .iter()
        .find(|s| s.name == "echo")
        .expect("echo");
    let http = &echo.ports[0].http;
    let order: Vec<_> = http
        .matches
        .iter()
        .map(|m| (m.matcher.path.clone(), m.matcher.headers.len()))
        .collect();
    assert_eq!(order[0].0, PathMatch::Exact("/exact".into()));
    assert_eq!(order[1].0, PathMatch::PathPrefix("/v2".into()));
    assert_eq!(
        order[2],
        (PathMatch::PathPrefix("/".into()), 1),
        "header match beats bare prefix /"
    );
    assert_eq!(
        echo.ports[1].http.rules.len(),
        0,
        "route attached to port 80 only"
    );
    let eps = &view.backends["ns/echo-v1:80"].endpoints;
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].addr.to_string(), "127.0.10.1:8080");
    assert!(compile(
        &model,
        &ProxyIdentity {
            namespace: "ns".into(),
            workload: Some("nope".into())
        }
    )
    .is_err());
}

#[test]
fn consumer_routes_apply_only_to_their_namespace() {
    let (model, diags) = check("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: c, namespace: consumer}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: echo-v1, namespace: ns}]\n  rules:\n  - backendRefs: [{name: echo-v1, namespace: ns, port: 80}]\n");
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    for (ns, attached) in [("consumer", true), ("ns", false)] {
        let view = compile(
            &model,
            &ProxyIdentity {
                namespace: ns.into(),
                workload: None,
            },
        )
        .expect("view");
        let svc = view
            .services
            .iter()
            .find(|s| s.name == "echo-v1")
            .expect("svc");
        assert_eq!(
            svc.ports[0].http.is_attached(),
            attached,
            "client namespace {ns}"
        );
    }
}

/// Every conformance manifest loads and validates on top of the fixtures (with the fixtures'
/// Deployments turned into WorkloadEntries, as the conformance harness does).
#[test]
fn conformance_manifests_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/gateway-api-mesh/manifests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("conformance manifests not found at {}", dir.display());
    };
    let fixtures = std::fs::read_to_string(dir.join("00-fixtures.yaml")).expect("fixtures");
    let fixtures: Vec<&str> = fixtures
        .split("\n---")
        .filter(|d| !d.contains("kind: Deployment"))
        .collect();
    let workloads = "\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: echo-v1, namespace: gateway-conformance-mesh}\nspec: {address: 127.0.10.1, labels: {app: echo, version: v1}}\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: echo-v2, namespace: gateway-conformance-mesh}\nspec: {address: 127.0.10.2, labels: {app: echo, version: v2}}\n";
    let base = fixtures.join("\n---") + workloads;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "00-fixtures.yaml") {
            continue;
        }
        let manifest = std::fs::read_to_string(&path).expect("manifest");
        let text = format!("{base}\n---\n{manifest}");
        let (resources, mut diags) = load_str(&path, &text);
        let (model, more) = build(&resources);
        diags.extend(more);
        assert!(model.is_some(), "{}:\n{diags}", path.display());
    }
}

const LOCAL_HEAD: &str =
    "apiVersion: weft.dev/v1alpha1\nkind: LocalWorkload\nmetadata: {name: reviews-v2, namespace: shop}\n";

#[test]
fn local_workloads_are_checked_and_kept_for_weft_up() {
    let (model, diags) = check(&format!(
        "{LOCAL_HEAD}spec:\n  service: reviews\n  port: 9080\n  labels: {{version: v2}}\n  replicas: 2\n  command: [weft, echo, --http, \"0.0.0.0:9080\"]\n"
    ));
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let w = &model.local_workloads[0];
    assert_eq!(
        (w.service.as_str(), w.port, w.replicas),
        ("reviews", 9080, 2)
    );
    assert_eq!(w.command[0], "weft");

    let e = first_error(&format!(
        "{LOCAL_HEAD}spec: {{port: 9080, replicas: 0, command: [x]}}\n"
    ));
    assert_eq!(e.field.as_deref(), Some("spec.replicas"), "{e}");
    let e = first_error(&format!("{LOCAL_HEAD}spec: {{port: 9080, command: []}}\n"));
    assert_eq!(e.field.as_deref(), Some("spec.command"), "{e}");
    let e = first_error(&format!(
        "{LOCAL_HEAD}spec: {{port: 70000, command: [x]}}\n"
    ));
    assert_eq!(e.field.as_deref(), Some("spec.port"), "{e}");
    let e = first_error(&format!(
        "{LOCAL_HEAD}spec: {{port: 80, command: [x], labels: {{app: y}}}}\n"
    ));
    assert_eq!(e.field.as_deref(), Some("spec.labels.app"), "{e}");
    let e = first_error(&format!(
        "{LOCAL_HEAD}spec: {{port: 80, command: [x], restart: always}}\n"
    ));
    assert!(
        e.to_string().contains("restart"),
        "unknown fields are errors: {e}"
    );
}

#[test]
fn mesh_config_tracing() {
    let mesh = |tracing: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh}}\nspec:\n  tracing: {tracing}\n"
        )
    };
    let (model, diags) = check(&mesh("{collector: 127.0.0.1:4317}"));
    assert!(diags.errors().next().is_none(), "{diags}");
    let tracing = model.expect("model").mesh.tracing.expect("tracing on");
    assert_eq!(tracing.collector, "http://127.0.0.1:4317");
    assert_eq!(tracing.random_sampling_percentage, 1.0);
    assert_eq!(tracing.propagators, ["tracecontext"]);
    for (tracing, field) in [
        ("{randomSamplingPercentage: 5}", "spec.tracing.collector"),
        ("{collector: 'https://c:4317'}", "spec.tracing.collector"),
        ("{collector: 'c'}", "spec.tracing.collector"),
        (
            "{collector: 'c:4317', randomSamplingPercentage: 101}",
            "spec.tracing.randomSamplingPercentage",
        ),
        (
            "{collector: 'c:4317', propagators: []}",
            "spec.tracing.propagators",
        ),
        (
            "{collector: 'c:4317', propagators: [jaeger]}",
            "spec.tracing.propagators[0]",
        ),
        (
            "{collector: 'c:4317', propagators: [b3, b3]}",
            "spec.tracing.propagators[1]",
        ),
    ] {
        let e = first_error(&mesh(tracing));
        assert_eq!(e.field.as_deref(), Some(field), "{tracing}: {e:?}");
    }
    // A field Weft does not know is an error, never ignored.
    let e = first_error(&mesh("{collector: 'c:4317', sampling: 100}"));
    assert!(e.message.contains("sampling"), "{e:?}");
}

#[test]
fn mesh_config_admin_is_an_allow_policy_over_admin_routes() {
    let mesh = |admin: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh, namespace: weft-system}}\nspec:\n  admin: {admin}\n"
        )
    };
    let (model, diags) = check(&mesh(
        "{rules: [{from: [{source: {principals: [cluster.local/ns/ops/sa/oncall]}}], to: [{operation: {paths: [/tap]}}]}]}",
    ));
    assert!(diags.errors().next().is_none(), "{diags}");
    let admin = model.expect("model").mesh.admin.expect("admin policy");
    assert_eq!(admin.action, crate::view::authz::AuthzAction::Allow);
    assert_eq!(admin.rules.as_ref().map(Vec::len), Some(1));
    for (admin, field) in [
        ("{}", "spec.admin.rules"),
        ("{rules: []}", "spec.admin.rules"),
        (
            "{rules: [{from: [{source: {principals: ['']}}]}]}",
            "spec.admin.rules[0].from[0].source.principals[0]",
        ),
    ] {
        let e = first_error(&mesh(admin));
        assert_eq!(e.field.as_deref(), Some(field), "{admin}: {e:?}");
    }
    let e = first_error(&mesh("{rules: [{}], allow: all}"));
    assert!(
        e.message.contains("allow"),
        "unknown fields are errors: {e:?}"
    );
}
