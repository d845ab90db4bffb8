//! Responses the proxy makes itself. Each carries `weft-error: <reason>` (and, where one
//! applies, the rule that produced it), so a user can tell a proxy decision from an
//! application's answer. gRPC requests get a gRPC status in trailers-only form instead of a
//! bare HTTP error, as gRPC clients expect.

use http::{HeaderValue, Response, StatusCode};

use super::{empty, full, Body};

pub const WEFT_ERROR: &str = "weft-error";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The request or a try took longer than its timeout.
    Timeout,
    /// The request is not valid HTTP the proxy can forward.
    BadRequest,
    /// The proxy is shutting down.
    ShuttingDown,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::NoRoute => "no-route",
            Reason::UnknownService => "unknown-service",
            Reason::BackendNotFound => "backend-not-found",
            Reason::NoEndpoints => "no-endpoints",
            Reason::UpstreamFailed => "upstream-failed",
            Reason::Timeout => "timeout",
            Reason::BadRequest => "bad-request",
            Reason::ShuttingDown => "shutting-down",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Reason::NoRoute | Reason::UnknownService => StatusCode::NOT_FOUND,
            Reason::BackendNotFound => StatusCode::INTERNAL_SERVER_ERROR,
            Reason::NoEndpoints | Reason::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Reason::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Reason::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Reason::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    /// The gRPC status a gRPC client sees for this reason.
    fn grpc_status(self) -> u32 {
        match self {
            Reason::NoRoute | Reason::UnknownService => 12, // UNIMPLEMENTED
            Reason::BackendNotFound => 13,                  // INTERNAL
            Reason::Timeout => 4,                           // DEADLINE_EXCEEDED
            Reason::BadRequest => 3,                        // INVALID_ARGUMENT
            _ => 14,                                        // UNAVAILABLE
        }
    }
}

/// A synthesized error: `weft-error: <reason>[; <detail>]`.
pub fn respond(reason: Reason, detail: &str, grpc: bool) -> Response<Body> {
    let value = if detail.is_empty() {
        reason.label().to_string()
    } else {
        format!("{}; {}", reason.label(), detail)
    };
    let header =
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("error"));
    let mut builder = Response::builder().header(WEFT_ERROR, header.clone());
    let body = if grpc {
        builder = builder
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("grpc-status", reason.grpc_status().to_string())
            .header("grpc-message", header);
        empty()
    } else {
        builder = builder
            .status(reason.status())
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
        full(format!("{value}\n"))
    };
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(empty());
        *r.status_mut() = reason.status();
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_say_why() {
        let r = respond(Reason::NoRoute, "HTTPRoute ns/r", false);
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[WEFT_ERROR], "no-route; HTTPRoute ns/r");
        let g = respond(Reason::UpstreamFailed, "", true);
        assert_eq!(g.status(), 200);
        assert_eq!(g.headers()["grpc-status"], "14");
    }
}
