//! Which failed tries are tried again: a pure decision on how the try ended, the request's
//! method and whether its route asked for retries.
//!
//! - A route's `retry` (HTTPRoute `retry`, GRPCRoute's `retry.linkerd.io/*` annotations)
//!   retries its status codes (gRPC statuses for gRPC) and every connection error — a
//!   refused or reset connection, a per-try timeout — whatever the method, as the Gateway
//!   API asks: the route says the request may be sent twice.
//! - Without one, Weft retries only requests that never left the proxy: no connection could
//!   be had for them (refused, timed out, TLS failed), or the one they were put on was closing
//!   and took nothing. Those come back whole, so the default needs no copy of any request
//!   (copying every request's head would cost about 4% of the mesh hop's instructions).
//! - A request whose own body broke off is never retried: the client is told.

use http::Method;
use weft_api::view::RetryView;

/// How one try ended, as far as retrying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// An answer with this status (and gRPC status, for a trailers-only gRPC answer).
    Answer { status: u16, grpc: Option<u32> },
    /// The peer proxy answered that its application refused the connection: the request
    /// never reached it.
    PeerAppUnreachable,
    /// The connection was refused (or never made) before the request was sent.
    NeverSent,
    /// The peer refused the stream unprocessed (`REFUSED_STREAM`, or a `GOAWAY` before it):
    /// a connection it was closing, as one idle for too long.
    Refused,
    /// The exchange broke after the request was (perhaps) sent, before any answer.
    Broken,
    /// The try's own timeout (`backendRequest`) fired.
    TryTimeout,
    /// The client's request body broke off.
    ClientBody,
    /// A `connectionPool` limit refused it: trying again would only add load.
    Overloaded,
}

/// Whether a try that ended so may be sent again (the budget, the attempts left and whether
/// the request is still at hand aside).
pub fn should_retry(route: Option<&RetryView>, ended: Ended) -> bool {
    match (route, ended) {
        (_, Ended::ClientBody | Ended::Overloaded) => false,
        (_, Ended::NeverSent | Ended::Refused) => true,
        (Some(_), Ended::Broken | Ended::TryTimeout | Ended::PeerAppUnreachable) => true,
        (Some(r), Ended::Answer { status, grpc }) => match grpc {
            Some(code) if !r.grpc_codes.is_empty() => r.grpc_codes.contains(&code),
            _ => r.codes.contains(&status),
        },
        (None, _) => false,
    }
}

/// RFC 9110's idempotent methods.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(codes: &[u16], grpc: &[u32]) -> RetryView {
        RetryView {
            codes: codes.to_vec(),
            grpc_codes: grpc.to_vec(),
            attempts: 2,
            backoff_ms: 25,
        }
    }

    #[test]
    fn the_safe_default_retries_only_what_never_left_the_proxy() {
        for m in [Method::GET, Method::POST, Method::PATCH] {
            assert!(should_retry(None, Ended::NeverSent), "{m}");
            assert!(should_retry(None, Ended::Refused), "{m}");
            assert!(!should_retry(None, Ended::PeerAppUnreachable), "{m}");
            assert!(!should_retry(None, Ended::Broken), "{m}");
            assert!(!should_retry(None, Ended::TryTimeout), "{m}");
            assert!(!should_retry(None, Ended::ClientBody), "{m}");
            assert!(!should_retry(None, Ended::Overloaded), "{m}");
            let answer = Ended::Answer {
                status: 503,
                grpc: None,
            };
            assert!(!should_retry(None, answer), "{m}: a 503 is an answer");
        }
    }

    #[test]
    fn a_route_retries_its_codes_and_connection_errors_for_any_method() {
        let r = route(&[500, 503], &[]);
        let answer = |status| Ended::Answer { status, grpc: None };
        assert!(should_retry(Some(&r), answer(503)));
        assert!(should_retry(Some(&r), answer(500)));
        assert!(!should_retry(Some(&r), answer(502)));
        assert!(!should_retry(Some(&r), answer(200)));
        assert!(should_retry(Some(&r), Ended::Broken));
        assert!(should_retry(Some(&r), Ended::TryTimeout));
        assert!(should_retry(Some(&r), Ended::PeerAppUnreachable));
        assert!(!should_retry(Some(&r), Ended::ClientBody));
    }

    #[test]
    fn grpc_routes_retry_by_grpc_status() {
        let r = route(&[], &[14, 4]);
        let answer = |grpc| Ended::Answer {
            status: 200,
            grpc: Some(grpc),
        };
        assert!(should_retry(Some(&r), answer(14)));
        assert!(should_retry(Some(&r), answer(4)));
        assert!(!should_retry(Some(&r), answer(13)));
        assert!(!should_retry(Some(&r), answer(0)));
    }
}
