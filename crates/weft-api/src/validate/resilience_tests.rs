//! Validation of the resilience settings: MeshConfig `retries`.

use super::tests::{check, first_error};

fn mesh(retries: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh}}\nspec:\n  retries: {retries}\n"
    )
}

#[test]
fn mesh_config_retries_defaults_and_settings() {
    let (model, diags) = check(
        "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh}\nspec: {}\n",
    );
    assert!(!diags.has_errors(), "{diags}");
    let retries = model.expect("model").mesh.retries;
    assert_eq!(retries.retry_ratio, 0.2);
    assert_eq!(retries.min_retries_per_second, 10);
    assert_eq!(retries.ttl_s, 10);
    assert_eq!(retries.default_attempts, 2);
    assert_eq!(retries.max_body_bytes, 65536);

    let (model, diags) = check(&mesh(
        "{budget: {retryRatio: 0.1, minRetriesPerSecond: 3, ttl: 30s}, defaultAttempts: 0, maxBodyBytes: 1024}",
    ));
    assert!(!diags.has_errors(), "{diags}");
    let retries = model.expect("model").mesh.retries;
    assert_eq!(retries.retry_ratio, 0.1);
    assert_eq!(retries.min_retries_per_second, 3);
    assert_eq!(retries.ttl_s, 30);
    assert_eq!(retries.default_attempts, 0);
    assert_eq!(retries.max_body_bytes, 1024);
}

#[test]
fn mesh_config_retries_bad_values_name_their_field() {
    for (retries, field) in [
        (
            "{budget: {retryRatio: 1.5}}",
            "spec.retries.budget.retryRatio",
        ),
        (
            "{budget: {retryRatio: -0.1}}",
            "spec.retries.budget.retryRatio",
        ),
        (
            "{budget: {minRetriesPerSecond: 100000}}",
            "spec.retries.budget.minRetriesPerSecond",
        ),
        ("{budget: {ttl: 0s}}", "spec.retries.budget.ttl"),
        ("{budget: {ttl: 2m}}", "spec.retries.budget.ttl"),
        ("{budget: {ttl: 1500ms}}", "spec.retries.budget.ttl"),
        ("{budget: {ttl: soon}}", "spec.retries.budget.ttl"),
        ("{defaultAttempts: 11}", "spec.retries.defaultAttempts"),
        ("{maxBodyBytes: 999999999}", "spec.retries.maxBodyBytes"),
    ] {
        let e = first_error(&mesh(retries));
        assert_eq!(e.field.as_deref(), Some(field), "{retries}: {e:?}");
    }
    let e = first_error(&mesh("{budget: {ratio: 0.2}}"));
    assert!(
        e.message.contains("ratio"),
        "unknown fields are errors: {e:?}"
    );
}

fn grpc_route(annotations: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata:\n  name: g\n  namespace: ns\n  annotations: {annotations}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: echo, port: 80}}]\n  rules:\n  - backendRefs: [{{name: echo, port: 80}}]\n"
    )
}

#[test]
fn grpc_route_retries_come_from_linkerd_annotations() {
    let (model, diags) = check(&grpc_route(
        "{retry.linkerd.io/grpc: 'unavailable, deadline-exceeded', retry.linkerd.io/limit: '3', retry.linkerd.io/timeout: 300ms, team: shop}",
    ));
    assert!(!diags.has_errors(), "{diags}");
    let model = model.expect("model");
    let rule = &model.routes[0].rules[0];
    let retry = rule.retry.as_ref().expect("retry");
    assert_eq!(retry.grpc_codes, [14, 4]);
    assert_eq!(retry.attempts, 3);
    assert_eq!(rule.backend_request_timeout_ms, Some(300));

    for (annotations, field) in [
        (
            "{retry.linkerd.io/grpc: busy}",
            "metadata.annotations.retry.linkerd.io/grpc",
        ),
        (
            "{retry.linkerd.io/grpc: unavailable, retry.linkerd.io/limit: '11'}",
            "metadata.annotations.retry.linkerd.io/limit",
        ),
        (
            "{retry.linkerd.io/limit: '2'}",
            "metadata.annotations.retry.linkerd.io/limit",
        ),
        (
            "{retry.linkerd.io/timeout: 0s}",
            "metadata.annotations.retry.linkerd.io/timeout",
        ),
        (
            "{retry.linkerd.io/http: 5xx}",
            "metadata.annotations.retry.linkerd.io/http",
        ),
    ] {
        let e = first_error(&grpc_route(annotations));
        assert_eq!(e.field.as_deref(), Some(field), "{annotations}: {e:?}");
    }
}

fn destination_rule(policy: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: d, namespace: ns}}\nspec:\n  host: echo\n  trafficPolicy:\n{policy}"
    )
}

/// The backend of `ns/echo` port 80 under the DestinationRule `policy`.
fn backend_of(policy: &str) -> crate::view::BackendView {
    let (model, diags) = check(&destination_rule(policy));
    assert!(!diags.has_errors(), "{diags}");
    let model = model.expect("model");
    let who = crate::compile::ProxyIdentity {
        namespace: "ns".into(),
        workload: None,
    };
    let view = crate::compile::compile(&model, &who).expect("compile");
    view.backends
        .get("ns/echo:80")
        .cloned()
        .expect("echo's backend")
}

#[test]
fn outlier_detection_and_pools_compile_with_istios_defaults() {
    let b = backend_of("    outlierDetection: {consecutive5xxErrors: 3, baseEjectionTime: 10s}\n    connectionPool:\n      tcp: {maxConnections: 10, connectTimeout: 250ms}\n      http: {http1MaxPendingRequests: 5, http2MaxRequests: 100, maxRequestsPerConnection: 20, maxRetries: 3, idleTimeout: 2s}\n");
    let od = b.outlier.expect("outlier detection");
    assert_eq!(od.consecutive_5xx, 3);
    assert_eq!(od.consecutive_gateway, 0);
    assert_eq!(od.interval_ms, 10_000);
    assert_eq!(od.base_ejection_ms, 10_000);
    assert_eq!(od.max_ejection_percent, 10);
    assert_eq!(od.min_health_percent, 0);
    let pool = b.pool.expect("pool");
    assert_eq!(pool.max_connections, 10);
    assert_eq!(pool.connect_timeout_ms, Some(250));
    assert_eq!(pool.max_pending, 5);
    assert_eq!(pool.max_requests, 100);
    assert_eq!(pool.max_requests_per_connection, 20);
    assert_eq!(pool.max_retries, 3);
    assert_eq!(pool.idle_timeout_ms, Some(2000));
    // Without a DestinationRule part, nothing: the stage costs nothing.
    let b = backend_of("    loadBalancer: {simple: ROUND_ROBIN}\n");
    assert!(b.outlier.is_none() && b.pool.is_none());
}

#[test]
fn bad_outlier_detection_and_pools_name_their_field() {
    for (policy, field) in [
        ("    outlierDetection: {consecutive5xxErrors: -1}\n", "spec.trafficPolicy.outlierDetection.consecutive5xxErrors"),
        ("    outlierDetection: {interval: 0s}\n", "spec.trafficPolicy.outlierDetection.interval"),
        ("    outlierDetection: {interval: -5s}\n", "spec.trafficPolicy.outlierDetection.interval"),
        ("    outlierDetection: {baseEjectionTime: soon}\n", "spec.trafficPolicy.outlierDetection.baseEjectionTime"),
        ("    outlierDetection: {maxEjectionPercent: 101}\n", "spec.trafficPolicy.outlierDetection.maxEjectionPercent"),
        ("    outlierDetection: {minHealthPercent: -1}\n", "spec.trafficPolicy.outlierDetection.minHealthPercent"),
        ("    outlierDetection: {consecutiveErrors: 5}\n", "spec.trafficPolicy.outlierDetection.consecutiveErrors"),
        ("    outlierDetection: {splitExternalLocalOriginErrors: true}\n", "spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors"),
        ("    connectionPool: {tcp: {maxConnections: -3}}\n", "spec.trafficPolicy.connectionPool.tcp.maxConnections"),
        ("    connectionPool: {tcp: {connectTimeout: 0ms}}\n", "spec.trafficPolicy.connectionPool.tcp.connectTimeout"),
        ("    connectionPool: {tcp: {tcpKeepalive: {time: 10s}}}\n", "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive"),
        ("    connectionPool: {http: {maxRetries: -1}}\n", "spec.trafficPolicy.connectionPool.http.maxRetries"),
        ("    connectionPool: {http: {idleTimeout: 0s}}\n", "spec.trafficPolicy.connectionPool.http.idleTimeout"),
        ("    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}\n", "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy"),
        ("    portLevelSettings:\n    - port: {number: 80}\n      outlierDetection: {maxEjectionPercent: 200}\n", "spec.trafficPolicy.portLevelSettings[0].outlierDetection.maxEjectionPercent"),
    ] {
        let e = first_error(&destination_rule(policy));
        assert_eq!(e.field.as_deref(), Some(field), "{policy}: {e:?}");
    }
    let e = first_error(&destination_rule("    outlierDetection: {ejectAfter: 5}\n"));
    assert!(
        e.message.contains("ejectAfter"),
        "unknown fields are errors: {e:?}"
    );
}

#[test]
fn port_level_parts_replace_the_services_own() {
    let b = backend_of("    outlierDetection: {consecutive5xxErrors: 7}\n    portLevelSettings:\n    - port: {number: 80}\n      outlierDetection: {consecutive5xxErrors: 2}\n      connectionPool: {http: {maxRetries: 1}}\n");
    assert_eq!(b.outlier.map(|o| o.consecutive_5xx), Some(2));
    assert_eq!(b.pool.map(|p| p.max_retries), Some(1));
    // Port 7070 keeps the Service's own.
    let (model, _) = check(&destination_rule("    outlierDetection: {consecutive5xxErrors: 7}\n    portLevelSettings:\n    - port: {number: 80}\n      outlierDetection: {consecutive5xxErrors: 2}\n"));
    let who = crate::compile::ProxyIdentity {
        namespace: "ns".into(),
        workload: None,
    };
    let view = crate::compile::compile(&model.expect("model"), &who).expect("compile");
    let other = &view.backends["ns/echo:7070"];
    assert_eq!(other.outlier.as_ref().map(|o| o.consecutive_5xx), Some(7));
}

const FAULT: &str = "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: f, namespace: ns}\nspec:\n";

fn route_with_fault(name: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: ns}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: echo, port: 80}}]\n  rules:\n  - filters:\n    - type: ExtensionRef\n      extensionRef: {{group: weft.dev, kind: FaultInjection, name: {name}}}\n    backendRefs: [{{name: echo, port: 80}}]\n"
    )
}

#[test]
fn a_fault_injection_attaches_to_a_rule_by_extension_ref() {
    let (model, diags) = check(&format!(
        "{FAULT}  delay: {{fixedDelay: 500ms, percentage: {{value: 10}}}}\n  abort: {{httpStatus: 503, percentage: {{value: 2.5}}}}\n---\n{}",
        route_with_fault("f")
    ));
    assert!(!diags.has_errors(), "{diags}");
    let model = model.expect("model");
    let rule = &model.routes[0].rules[0];
    let fault = rule
        .filters
        .iter()
        .find_map(|f| match f {
            crate::model::FilterModel::Plain(crate::view::FilterView::Fault(v)) => Some(v),
            _ => None,
        })
        .expect("the fault filter");
    assert_eq!(fault.name, "ns/f");
    let delay = fault.delay.as_ref().expect("delay");
    assert_eq!((delay.fixed_delay_ms, delay.percentage), (500, 10.0));
    let abort = fault.abort.as_ref().expect("abort");
    assert_eq!((abort.http_status, abort.percentage), (Some(503), 2.5));

    // A missing FaultInjection is an error at the line of its name.
    let text = route_with_fault("missing");
    let e = first_error(&text);
    assert_eq!(
        e.field.as_deref(),
        Some("spec.rules[0].filters[0].extensionRef.name")
    );
    assert!(
        e.message
            .contains("FaultInjection ns/missing does not exist"),
        "{e:?}"
    );
    assert!(e.line > 1, "at its line: {e:?}");
}

#[test]
fn bad_fault_injections_name_their_field() {
    for (spec, field) in [
        ("  {}\n", "spec"),
        (
            "  delay: {fixedDelay: 0s, percentage: {value: 5}}\n",
            "spec.delay.fixedDelay",
        ),
        (
            "  delay: {fixedDelay: -1s, percentage: {value: 5}}\n",
            "spec.delay.fixedDelay",
        ),
        (
            "  delay: {fixedDelay: 1s, percentage: {value: 101}}\n",
            "spec.delay.percentage.value",
        ),
        (
            "  delay: {fixedDelay: 1s, percent: 5}\n",
            "spec.delay.percent",
        ),
        (
            "  abort: {httpStatus: 600, percentage: {value: 5}}\n",
            "spec.abort.httpStatus",
        ),
        (
            "  abort: {httpStatus: 100, percentage: {value: 5}}\n",
            "spec.abort.httpStatus",
        ),
        (
            "  abort: {grpcStatus: BROKEN, percentage: {value: 5}}\n",
            "spec.abort.grpcStatus",
        ),
        ("  abort: {percentage: {value: -1}}\n", "spec.abort"),
    ] {
        let e = first_error(&format!("{FAULT}{spec}"));
        assert_eq!(e.field.as_deref(), Some(field), "{spec}: {e:?}");
    }
    // No percentage is Istio's "no request": valid, with a warning.
    let (model, diags) = check(&format!("{FAULT}  abort: {{grpcStatus: UNAVAILABLE}}\n"));
    assert!(!diags.has_errors(), "{diags}");
    assert!(
        diags.to_string().contains("applies to no request"),
        "{diags}"
    );
    let f = &model.expect("model").faults[&("ns".to_string(), "f".to_string())];
    assert_eq!(f.abort.as_ref().and_then(|a| a.grpc_status), Some(14));
}

const RATE: &str = "apiVersion: policy.linkerd.io/v1alpha1\nkind: HTTPLocalRateLimitPolicy\nmetadata: {name: rl, namespace: ns}\nspec:\n";

#[test]
fn a_rate_limit_applies_to_the_workloads_its_service_selects() {
    let (model, diags) = check(&format!(
        "{RATE}  targetRef: {{kind: Service, name: echo}}\n  total: {{requestsPerSecond: 100}}\n  identity: {{requestsPerSecond: 20}}\n  overrides:\n  - requestsPerSecond: 50\n    clientRefs: [{{kind: ServiceAccount, name: batch}}, {{kind: ServiceAccount, namespace: ops, name: admin}}]\n"
    ));
    assert!(!diags.has_errors(), "{diags}");
    let model = model.expect("model");
    let who = crate::compile::ProxyIdentity {
        namespace: "ns".into(),
        workload: Some("echo-v1".into()),
    };
    let config = crate::compile::proxy_config(&model, &who).expect("config");
    let rl = &config.inbound.rate_limits;
    assert_eq!(rl.len(), 1, "{rl:?}");
    assert_eq!(rl[0].policy, "ns/rl");
    assert_eq!(rl[0].ports, [7070, 8080]);
    assert_eq!((rl[0].total, rl[0].identity), (Some(100), Some(20)));
    assert_eq!(
        rl[0].overrides[0].principals,
        [
            "spiffe://cluster.local/ns/ns/sa/batch",
            "spiffe://cluster.local/ns/ops/sa/admin"
        ]
    );
}

#[test]
fn bad_rate_limits_name_their_field() {
    for (spec, field) in [
        ("  targetRef: {group: policy.linkerd.io, kind: Server, name: echo}\n  total: {requestsPerSecond: 5}\n", "spec.targetRef.kind"),
        ("  targetRef: {kind: Service, name: nope}\n  total: {requestsPerSecond: 5}\n", "spec.targetRef.name"),
        ("  targetRef: {kind: Service, name: echo}\n  total: {requestsPerSecond: 0}\n", "spec.total.requestsPerSecond"),
        ("  targetRef: {kind: Service, name: echo}\n  total: {requestsPerSecond: -5}\n", "spec.total.requestsPerSecond"),
        ("  targetRef: {kind: Service, name: echo}\n  total: {requestsPerSecond: 5}\n  identity: {requestsPerSecond: 6}\n", "spec.identity.requestsPerSecond"),
        ("  targetRef: {kind: Service, name: echo}\n  overrides: [{requestsPerSecond: 5, clientRefs: [{kind: Deployment, name: x}]}]\n", "spec.overrides[0].clientRefs[0].kind"),
        ("  targetRef: {kind: Service, name: echo}\n", "spec"),
    ] {
        let e = first_error(&format!("{RATE}{spec}"));
        assert_eq!(e.field.as_deref(), Some(field), "{spec}: {e:?}");
    }
}
