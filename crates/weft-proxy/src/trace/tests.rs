//! Sampling and propagation decisions, and the spans they produce.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Request};
use tokio::sync::mpsc;

use super::span::FinishedSpan;
use super::*;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn tracer(
    propagators: &[Propagator],
    percentage: f64,
) -> (Arc<Tracer>, mpsc::Receiver<FinishedSpan>) {
    let (exporter, rx) = Exporter::channel(Metrics::new());
    let tracer = Tracer {
        propagators: propagators.into(),
        percentage,
        exporter,
        view: TracingView {
            collector: "http://127.0.0.1:1".into(),
            random_sampling_percentage: percentage,
            propagators: vec![],
        },
    };
    (Arc::new(tracer), rx)
}

fn with_traceparent(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::try_from(value).unwrap());
    headers
}

fn written(headers: &HeaderMap) -> SpanContext {
    context::parse_traceparent(headers["traceparent"].as_bytes()).expect("a valid traceparent")
}

#[tokio::test]
async fn a_request_without_context_starts_a_trace_when_sampled() {
    let (tracer, _rx) = tracer(&[Propagator::TraceContext], 100.0);
    let mut headers = HeaderMap::new();
    let span = tracer.start(&mut headers, Kind::Client).expect("sampled");
    assert_eq!(written(&headers), span.context());
    assert!(span.context().sampled);
    assert_eq!(span.parent(), None);
}

#[tokio::test]
async fn the_callers_decision_wins_over_the_rate() {
    let (never, _rx) = tracer(&[Propagator::TraceContext], 0.0);
    let mut headers = with_traceparent(PARENT);
    let span = never
        .start(&mut headers, Kind::Server)
        .expect("the caller sampled it");
    assert_eq!(span.context().trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
    assert_eq!(span.parent(), Some(0x00f067aa0ba902b7));
    assert_eq!(
        written(&headers).span_id,
        span.context().span_id,
        "the app sees our span"
    );

    let (always, _rx) = tracer(&[Propagator::TraceContext], 100.0);
    let unsampled = PARENT.replace("-01", "-00");
    let mut headers = with_traceparent(&unsampled);
    assert!(always.start(&mut headers, Kind::Server).is_none());
    assert_eq!(
        headers["traceparent"],
        unsampled.as_str(),
        "passed on as it came"
    );
}

#[tokio::test]
async fn an_unsampled_new_trace_still_tells_the_next_hop() {
    let (never, _rx) = tracer(&[Propagator::TraceContext], 0.0);
    let mut headers = with_traceparent("00-not-a-context");
    assert!(never.start(&mut headers, Kind::Client).is_none());
    let ctx = written(&headers);
    assert!(
        !ctx.sampled,
        "the callee's proxy must not start its own trace"
    );
}

#[tokio::test]
async fn several_formats_are_written_alike() {
    let (tracer, _rx) = tracer(&[Propagator::B3Multi, Propagator::TraceContext], 100.0);
    let mut headers = HeaderMap::new();
    headers.insert("x-b3-traceid", HeaderValue::from_static("463ac35c9f6413ad"));
    headers.insert("x-b3-spanid", HeaderValue::from_static("a2fb4a1d1a96d312"));
    headers.insert("x-b3-sampled", HeaderValue::from_static("1"));
    let span = tracer
        .start(&mut headers, Kind::Client)
        .expect("sampled by B3");
    let ctx = written(&headers);
    assert_eq!(ctx, span.context());
    assert_eq!(ctx.trace_id, 0x463ac35c9f6413ad);
    assert_eq!(headers["x-b3-traceid"], "463ac35c9f6413ad");
    assert_eq!(headers["x-b3-parentspanid"], "a2fb4a1d1a96d312");
}

#[tokio::test]
async fn a_finished_span_carries_the_request_and_the_answer() {
    let (tracer, mut rx) = tracer(&[Propagator::TraceContext], 100.0);
    let mut req = Request::get("http://reviews.shop:9080/reviews/1?token=secret")
        .header("user-agent", "curl/8")
        .body(())
        .unwrap();
    let mut span = tracer
        .start(req.headers_mut(), Kind::Client)
        .expect("sampled");
    let peer: SocketAddr = "10.0.0.7:41000".parse().unwrap();
    span.describe(&req, peer, false);
    span.set("weft.route", "shop/reviews rule 0");
    span.finish(503, None, Some("no_endpoints; shop/reviews:9080 has none"));
    let data = rx.recv().await.expect("exported").into_span_data();
    assert_eq!(data.name, "GET");
    assert_eq!(data.span_kind, opentelemetry::trace::SpanKind::Client);
    let attr = |k: &str| {
        data.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        attr("url.full").as_deref(),
        Some("http://reviews.shop:9080/reviews/1")
    );
    assert_eq!(attr("server.address").as_deref(), Some("reviews.shop"));
    assert_eq!(attr("server.port").as_deref(), Some("9080"));
    assert_eq!(attr("http.response.status_code").as_deref(), Some("503"));
    assert_eq!(attr("error.type").as_deref(), Some("no_endpoints"));
    assert_eq!(attr("user_agent.original").as_deref(), Some("curl/8"));
    assert!(!data
        .attributes
        .iter()
        .any(|kv| kv.value.to_string().contains("secret")));
    assert!(matches!(
        data.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[tokio::test]
async fn a_server_span_of_a_refusal_names_it_without_failing() {
    let (tracer, mut rx) = tracer(&[Propagator::TraceContext], 100.0);
    let mut req = Request::post("/write")
        .header("host", "b.shop")
        .body(())
        .unwrap();
    *req.headers_mut() = with_traceparent(PARENT);
    let mut span = tracer
        .start(req.headers_mut(), Kind::Server)
        .expect("sampled");
    span.describe(&req, "10.0.0.1:5000".parse().unwrap(), false);
    span.finish(403, None, Some("denied; shop/readers"));
    let data = rx.recv().await.expect("exported").into_span_data();
    assert_eq!(
        data.parent_span_id,
        opentelemetry::trace::SpanId::from(0x00f067aa0ba902b7u64)
    );
    assert!(data.parent_span_is_remote);
    assert_eq!(
        data.status,
        opentelemetry::trace::Status::Unset,
        "4xx is the client's fault"
    );
    assert!(data
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "error.type" && kv.value.to_string() == "denied"));
}
