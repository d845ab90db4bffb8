//! Distributed tracing end to end: two proxies configured by a real `weft control`, mutual
//! TLS between them, spans exported over OTLP/gRPC to a real collector (rotel). Checks what
//! a tracing backend would show: one trace across the hop, the server span a child of the
//! client span, the application seeing the server span as its parent (W3C and B3 headers
//! both), OpenTelemetry's HTTP attributes and Weft's own; a malformed `traceparent` replaced;
//! and a collector that is down costing requests nothing (spans dropped and counted) until
//! it comes back.

mod control_mesh;
mod otlp_support;
mod support;

use std::time::Duration;

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::Request;
use http_body_util::Full;
use otlp_support::{Collector, Span};
use support::{admin_get, send};

const BLOCK: u8 = 98;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";

fn get(path: &str, traceparent: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::get(format!("http://echo{path}")).header("host", "echo");
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    req.body(Full::new(Bytes::new())).expect("request")
}

fn mesh_config(collector: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh}}\nspec:\n  \
         tracing:\n    collector: {collector}\n    randomSamplingPercentage: 100\n    \
         propagators: [tracecontext, b3multi]\n"
    )
}

/// The echo server's view of the request: the headers it received.
fn app_header(body: &[u8], name: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json["headers"][name][0].as_str().map(str::to_string)
}

fn counter(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_the_hop_in_a_real_collector() {
    let rotel = match otlp_support::rotel_binary() {
        Ok(bin) => bin,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "rotel is required in CI: {why}"
            );
            eprintln!("SKIPPED: {why}; ./scripts/test.sh installs it");
            return;
        }
    };
    let mut mesh = ControlMesh::start(BLOCK, "STRICT", "1h").await;
    let grpc = mesh.addr(20, 4317);
    std::fs::write(
        mesh.config_dir().join("tracing.yaml"),
        mesh_config(&grpc.to_string()),
    )
    .expect("mesh config");
    mesh.start_workloads().await;
    let client_admin = mesh.addr(1, 4191);

    // The collector is down: requests are answered as ever, spans are dropped and counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = send(mesh.client(), get("/dead", None), false)
            .await
            .expect("send");
        assert_eq!(
            answer.status, 200,
            "a dead collector must not fail requests"
        );
        let (_, metrics) = admin_get(client_admin, "/metrics").await.expect("metrics");
        let dropped = counter(
            &metrics,
            "weft_trace_spans_dropped_total{reason=\"export_failed\"}",
        );
        if dropped >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span counted as dropped while the collector was down:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let collector = Collector::start(&rotel, grpc, mesh.addr(21, 4318), &mesh.dir).await;

    // The application's own span is the parent of the client proxy's.
    let parent = format!("00-{TRACE}-{APP_SPAN}-01");
    let answer = send(mesh.client(), get("/traced", Some(&parent)), false)
        .await
        .expect("send");
    assert_eq!(answer.status, 200);
    // Backoff after the failures above is at most a few seconds; the batch waits 1 s.
    let spans = collector
        .wait_for(Duration::from_secs(40), |s| {
            s.iter().filter(|s| s.trace_id == TRACE).count() >= 2
        })
        .await;
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == TRACE).collect();
    let client = in_trace
        .iter()
        .find(|s| s.kind == 3)
        .unwrap_or_else(|| panic!("no client span in {in_trace:#?}\n{}", collector.log_text()));
    let server = in_trace
        .iter()
        .find(|s| s.kind == 2)
        .unwrap_or_else(|| panic!("no server span in {in_trace:#?}"));

    assert_eq!(client.parent_span_id, APP_SPAN);
    assert_eq!(
        server.parent_span_id, client.span_id,
        "server span is the client's child"
    );
    assert_eq!(client.service, "client.default");
    assert_eq!(server.service, "echo.default");
    assert_eq!(client.name, "GET");
    for span in [client, server] {
        assert_eq!(span.attr("http.request.method"), Some("GET"));
        assert_eq!(span.attr("http.response.status_code"), Some("200"));
        assert_eq!(span.attr("weft.mtls"), Some("true"));
        assert_eq!(span.status, 0, "{span:?}");
    }
    assert_eq!(client.attr("url.full"), Some("http://echo/traced"));
    assert_eq!(
        client.attr("weft.destination.service"),
        Some("default/echo")
    );
    assert_eq!(
        client.attr("weft.destination.workload"),
        Some("default/echo-1")
    );
    assert_eq!(
        client.attr("weft.peer.principal"),
        Some("spiffe://cluster.local/ns/default/sa/echo")
    );
    assert_eq!(server.attr("url.path"), Some("/traced"));
    assert_eq!(
        server.attr("weft.peer.principal"),
        Some("spiffe://cluster.local/ns/default/sa/client")
    );
    // The connection's source: on loopback the caller's proxy dials from 127.0.0.1.
    let source: std::net::IpAddr = server
        .attr("client.address")
        .expect("client.address")
        .parse()
        .expect("an IP");
    assert!(source.is_loopback(), "{source}");

    // The application sees the server span as its parent, in both configured formats.
    let tp = app_header(&answer.body, "Traceparent").expect("traceparent reached the app");
    assert_eq!(tp, format!("00-{TRACE}-{}-01", server.span_id));
    assert_eq!(
        app_header(&answer.body, "X-B3-Traceid").as_deref(),
        Some(TRACE)
    );
    assert_eq!(
        app_header(&answer.body, "X-B3-Spanid").as_deref(),
        Some(server.span_id.as_str())
    );

    // A malformed traceparent is replaced by a new trace, never passed on.
    let answer = send(mesh.client(), get("/bad", Some("00-garbage-01")), false)
        .await
        .expect("send");
    assert_eq!(answer.status, 200);
    let tp = app_header(&answer.body, "Traceparent").expect("a traceparent");
    let new_trace = tp.split('-').nth(1).unwrap_or_default().to_string();
    assert_eq!(tp.len(), 55, "{tp}");
    let spans = collector
        .wait_for(Duration::from_secs(15), |s| {
            s.iter().filter(|s| s.trace_id == new_trace).count() >= 2
        })
        .await;
    let root = spans
        .iter()
        .find(|s| s.trace_id == new_trace && s.kind == 3)
        .expect("the new trace's client span");
    assert_eq!(
        root.parent_span_id, "",
        "a new trace starts at the client proxy"
    );

    // An answer the proxy makes itself carries its reason.
    let unknown = Request::get("http://nowhere.default/")
        .header("host", "nowhere.default")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = send(mesh.client(), unknown, false).await.expect("send");
    assert!(answer.status.as_u16() >= 400, "{}", answer.status);
    let spans = collector
        .wait_for(Duration::from_secs(15), |s| {
            s.iter()
                .any(|s| s.attr("url.full") == Some("http://nowhere.default/"))
        })
        .await;
    let failed = spans
        .iter()
        .find(|s| s.attr("url.full") == Some("http://nowhere.default/"))
        .expect("the failed request's span");
    assert!(failed.attr("weft.error").is_some(), "{failed:?}");
    assert!(failed.attr("error.type").is_some(), "{failed:?}");
    assert_eq!(failed.status, 2, "a client span of a 4xx/5xx is an error");

    let (_, metrics) = admin_get(client_admin, "/metrics").await.expect("metrics");
    assert!(
        counter(&metrics, "weft_trace_spans_exported_total") >= 3.0,
        "{metrics}"
    );
}
