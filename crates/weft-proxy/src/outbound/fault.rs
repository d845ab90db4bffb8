//! The fault stage: a rule's FaultInjection delays a share of requests and answers a share
//! itself (an HTTP status, or a gRPC status for gRPC calls) instead of sending them on, so a
//! team can rehearse a failure. It runs after the rule's filters and before the request's
//! timeout starts, as Envoy's fault filter runs before its router.

use http::Response;

use crate::http::Body;
use crate::resilience::fault::Fault;

/// Delays the request if it is one of the share delayed; then the answer to give instead,
/// if it is one of the share aborted.
pub async fn inject(fault: &Fault, grpc: bool) -> Option<Response<Body>> {
    if let Some(delay) = fault.delay() {
        tokio::time::sleep(delay).await;
    }
    fault.abort(grpc)
}
