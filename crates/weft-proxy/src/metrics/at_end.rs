//! Recording a request's metric when its answer ends, for gRPC. A gRPC server sends its status
//! (`grpc-status`) in the trailers, after the last message; only a call that fails before any
//! message has it in the response head ("trailers-only"). Recorded at the head, nearly every
//! call would count with an empty `grpc_status`, and a streaming call's duration would stop at
//! its first byte. As Istio does, a gRPC call is counted when its stream ends, with the status
//! from its trailers, and its duration runs to that end.
//!
//! Everything else is recorded at the head, as before: waiting for the body would only delay
//! the count, and wrapping it costs an allocation. The waiting is [`crate::http::on_end`]'s.

use std::sync::Arc;
use std::time::Instant;

use http::Response;

use super::RouteStats;
use crate::http::on_end::{self, grpc_status_in_head};
use crate::http::Body;

/// Records `resp` in `stats`: now, or, for a gRPC call (`grpc`) whose status is still to
/// come in trailers, when its body ends or is dropped.
pub fn record(
    stats: &Arc<RouteStats>,
    grpc: bool,
    resp: Response<Body>,
    start: Instant,
) -> Response<Body> {
    let status = resp.status().as_u16();
    if !on_end::status_pending(grpc, &resp) {
        stats.record(status, grpc_status_in_head(&resp), start.elapsed());
        return resp;
    }
    let stats = stats.clone();
    on_end::on_end(resp, move |grpc_status| {
        stats.record(status, grpc_status, start.elapsed())
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::http::{boxed, BoxError};
    use crate::metrics::{Metrics, OUTBOUND};

    fn grpc_answer(trailer_status: Option<&'static str>) -> Response<Body> {
        let mut frames = vec![Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"msg")))];
        if let Some(s) = trailer_status {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", s.parse().expect("value"));
            frames.push(Ok(Frame::trailers(trailers)));
        }
        let body = StreamBody::new(futures_util::stream::iter(frames));
        Response::new(boxed(body))
    }

    fn count(m: &Metrics, labels: &str) -> Option<String> {
        let text = m.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("weft_requests_total{") && l.contains(labels))?;
        line.rsplit(' ').next().map(str::to_string)
    }

    #[tokio::test]
    async fn a_grpc_call_counts_when_its_trailers_arrive() {
        let m = Metrics::new();
        let stats = m.route(OUTBOUND, "ns/grpc", "ns/route");
        let resp = record(&stats, true, grpc_answer(Some("5")), Instant::now());
        assert_eq!(count(&m, r#"grpc_status="5""#), None, "not at the head");
        let body = resp.into_body().collect().await.expect("body");
        assert!(body.trailers().is_some(), "trailers pass through");
        assert_eq!(count(&m, r#"grpc_status="5""#).as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_call_dropped_before_its_end_counts_without_a_status() {
        let m = Metrics::new();
        let stats = m.route(OUTBOUND, "ns/grpc", "ns/route");
        drop(record(&stats, true, grpc_answer(Some("0")), Instant::now()));
        assert_eq!(count(&m, r#"grpc_status="""#).as_deref(), Some("1"));
        assert_eq!(count(&m, r#"grpc_status="0""#), None);
    }

    #[tokio::test]
    async fn trailers_only_and_plain_answers_count_at_the_head() {
        let m = Metrics::new();
        let stats = m.route(OUTBOUND, "ns/grpc", "ns/route");
        let mut trailers_only = Response::new(crate::http::empty());
        trailers_only
            .headers_mut()
            .insert("grpc-status", "14".parse().expect("value"));
        let _kept = record(&stats, true, trailers_only, Instant::now());
        assert_eq!(count(&m, r#"grpc_status="14""#).as_deref(), Some("1"));
        let _plain = record(&stats, false, grpc_answer(Some("0")), Instant::now());
        assert_eq!(
            count(&m, r#"response_code="200",grpc_status="""#).as_deref(),
            Some("1"),
            "not a gRPC request: counted at once, trailers not awaited"
        );
    }
}
