//! The one error type for everything the proxy decides itself, and the one edge that turns
//! it into what the outside world sees.
//!
//! A stage that refuses or fails a request returns a [`ProxyError`]: a [`Reason`] from a
//! fixed set and a detail naming the rule, limit or address that produced it. The edge
//! ([`ProxyError::into_response`]) makes, from that one value, the response (status,
//! `weft-error: <reason>; <detail>`, and for gRPC a trailers-only answer with a gRPC status),
//! the `weft_proxy_errors_total{reason}` count and the access-log reason, so the three can
//! never disagree. Connection-level refusals (TCP, TLS) go through [`ProxyError::count`]
//! instead: no response, the same label.

use std::borrow::Cow;

use http::{HeaderValue, Response, StatusCode};

use crate::http::{empty, full, Body};
use crate::metrics::Metrics;

pub const WEFT_ERROR: &str = "weft-error";

/// Why the proxy answered (or refused) itself. The label is the `weft-error` reason, the
/// `reason` metric label and the access log's `error_reason`: a bounded set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No route rule matched the request (routes are attached to the Service port).
    NoRoute,
    /// The request names no Service the proxy knows.
    UnknownService,
    /// The chosen backend reference did not resolve, or every weight is zero.
    BackendNotFound,
    /// The backend has no endpoints.
    NoEndpoints,
    /// Connecting to or talking to the endpoint failed.
    UpstreamFailed,
    /// The local application (inbound) could not be reached: the request never got to it.
    AppUnreachable,
    /// The local application (inbound) broke the exchange (reset, closed, answered
    /// malformed) after the request was sent to it.
    AppFailed,
    /// The request or a try took longer than its timeout.
    Timeout,
    /// The request is not valid HTTP the proxy can forward, or its body broke off or was
    /// malformed: the client's fault, not the upstream's.
    BadRequest,
    /// The proxy is shutting down.
    ShuttingDown,
    /// A DestinationRule `connectionPool` limit (or a queue of the proxy's) is full: the
    /// request is refused at once rather than queued.
    Overloaded,
    /// A connection the proxy cannot place: made to it directly without saying where to.
    NoTargetPort,
    /// Plaintext refused where PeerAuthentication asks for mutual TLS only.
    PlaintextRefused,
    /// A mutual TLS handshake failed or was refused.
    TlsRefused,
    /// The proxy has no certificate yet, so it cannot accept mutual TLS.
    NoIdentity,
    /// A captured connection to an address that is neither a Service nor a workload.
    UnknownDestination,
    /// A connection to the proxy directly that did not start with HTTP.
    ExplicitNotHttp,
    /// An AuthorizationPolicy denied the request or connection.
    Denied,
    /// A RequestAuthentication refused the request's token.
    Unauthenticated,
    /// An HTTPLocalRateLimitPolicy refused the request (429, `Retry-After`).
    RateLimited,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::NoRoute => "no-route",
            Reason::UnknownService => "unknown-service",
            Reason::BackendNotFound => "backend-not-found",
            Reason::NoEndpoints => "no-endpoints",
            Reason::UpstreamFailed => "upstream-failed",
            Reason::AppUnreachable => "app-unreachable",
            Reason::AppFailed => "app-failed",
            Reason::Timeout => "timeout",
            Reason::BadRequest => "bad-request",
            Reason::ShuttingDown => "shutting-down",
            Reason::Overloaded => "overloaded",
            Reason::NoTargetPort => "no-target-port",
            Reason::PlaintextRefused => "plaintext-refused",
            Reason::TlsRefused => "tls-refused",
            Reason::NoIdentity => "no-identity",
            Reason::UnknownDestination => "unknown-destination",
            Reason::ExplicitNotHttp => "explicit-not-http",
            Reason::Denied => "denied",
            Reason::Unauthenticated => "unauthenticated",
            Reason::RateLimited => "rate-limited",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Reason::NoRoute | Reason::UnknownService => StatusCode::NOT_FOUND,
            Reason::BackendNotFound => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::NoEndpoints | Reason::ShuttingDown | Reason::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Reason::UpstreamFailed | Reason::AppUnreachable | Reason::AppFailed => {
                StatusCode::BAD_GATEWAY
            }
            Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Reason::BadRequest | Reason::ExplicitNotHttp | Reason::NoTargetPort => {
                StatusCode::BAD_REQUEST
            }
            Reason::PlaintextRefused | Reason::TlsRefused | Reason::NoIdentity | Reason::Denied => {
                StatusCode::FORBIDDEN
            }
            Reason::UnknownDestination => StatusCode::NOT_FOUND,
            Reason::Unauthenticated => StatusCode::UNAUTHORIZED,
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The gRPC status a gRPC client sees for this reason.
    pub fn grpc_status(self) -> u32 {
        match self {
            Reason::NoRoute | Reason::UnknownService | Reason::UnknownDestination => 12, // UNIMPLEMENTED
            Reason::BackendNotFound => 13,                                               // INTERNAL
            Reason::Unauthenticated => 16, // UNAUTHENTICATED
            Reason::RateLimited => 8,      // RESOURCE_EXHAUSTED
            Reason::Timeout => 4,          // DEADLINE_EXCEEDED
            Reason::BadRequest | Reason::ExplicitNotHttp | Reason::NoTargetPort => 3, // INVALID_ARGUMENT
            Reason::PlaintextRefused | Reason::TlsRefused | Reason::NoIdentity | Reason::Denied => {
                7
            } // PERMISSION_DENIED
            Reason::NoEndpoints
            | Reason::UpstreamFailed
            | Reason::AppUnreachable
            | Reason::AppFailed
            | Reason::ShuttingDown
            | Reason::Overloaded => 14, // UNAVAILABLE
        }
    }
}

/// A decision or failure of the proxy's own, with what produced it.
#[derive(Clone, Debug)]
pub struct ProxyError {
    pub reason: Reason,
    /// The rule, limit or address behind it (`HTTPRoute ns/r rule 0`, `10.0.0.2:8080: …`).
    pub detail: Cow<'static, str>,
    /// Seconds to wait before trying again (`Retry-After`), for a rate limit's refusal.
    pub retry_after_s: Option<u64>,
}

impl ProxyError {
    pub fn new(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason,
            detail: detail.into(),
            retry_after_s: None,
        }
    }

    /// With a `Retry-After` of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// `<reason>; <detail>`: the `weft-error` value and the access log's `weft_error`.
    pub fn header_value(&self) -> String {
        if self.detail.is_empty() {
            self.reason.label().to_string()
        } else {
            format!("{}; {}", self.reason.label(), self.detail)
        }
    }

    /// Counts the error (`weft_proxy_errors_total{direction, reason}`).
    pub fn count(&self, metrics: &Metrics, direction: &'static str) {
        metrics.proxy_error(direction, self.reason.label());
    }

    /// The edge: counts the error and makes the response a client sees for it.
    pub fn into_response(
        self,
        metrics: &Metrics,
        direction: &'static str,
        grpc: bool,
    ) -> Response<Body> {
        self.count(metrics, direction);
        self.response(grpc)
    }

    /// The response alone (for callers that count elsewhere, and tests).
    pub fn response(&self, grpc: bool) -> Response<Body> {
        let value = self.header_value();
        let header =
            HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("error"));
        let mut builder = Response::builder().header(WEFT_ERROR, header.clone());
        if let Some(s) = self.retry_after_s {
            builder = builder.header(http::header::RETRY_AFTER, s);
        }
        let body = if grpc {
            builder = builder
                .status(StatusCode::OK)
                .header(http::header::CONTENT_TYPE, "application/grpc")
                .header("grpc-status", self.reason.grpc_status().to_string())
                .header("grpc-message", header);
            empty()
        } else {
            builder = builder
                .status(self.reason.status())
                .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
            full(format!("{value}\n"))
        };
        let mut resp = builder.body(body).unwrap_or_else(|_| {
            let mut r = Response::new(empty());
            *r.status_mut() = self.reason.status();
            r
        });
        resp.extensions_mut().insert(Synthesized(self.reason));
        resp
    }
}

impl ProxyError {
    /// The HTTP/1.1 answer as bytes, for a connection the proxy relays as a byte stream (an
    /// HTTP/1 request read from an opaque stream); the connection closes after it.
    pub fn http1_bytes(&self) -> Vec<u8> {
        let value = self.header_value();
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        let status = self.reason.status();
        let body = format!("{value}\n");
        format!(
            "HTTP/1.1 {} {}\r\n{WEFT_ERROR}: {value}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes()
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.header_value())
    }
}

/// Marks a response the proxy made itself, with its reason: the access log reads its
/// `error_reason` from here, so it is the reason the edge counted.
#[derive(Clone, Copy, Debug)]
pub struct Synthesized(pub Reason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_makes_the_response_the_label_and_the_count() {
        let metrics = Metrics::new();
        let e = ProxyError::new(Reason::NoRoute, "HTTPRoute ns/r");
        let r = e.clone().into_response(&metrics, "outbound", false);
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[WEFT_ERROR], "no-route; HTTPRoute ns/r");
        assert_eq!(
            r.extensions().get::<Synthesized>().map(|s| s.0),
            Some(Reason::NoRoute)
        );
        let text = metrics.encode();
        assert!(
            text.contains(r#"weft_proxy_errors_total{direction="outbound",reason="no-route"} 1"#),
            "{text}"
        );

        let g = ProxyError::new(Reason::UpstreamFailed, "").response(true);
        assert_eq!(g.status(), 200);
        assert_eq!(g.headers()["grpc-status"], "14");
        assert_eq!(g.headers()[WEFT_ERROR], "upstream-failed");
        let bad = ProxyError::new(Reason::BadRequest, "malformed chunk size").response(true);
        assert_eq!(bad.headers()["grpc-status"], "3");
    }
}
