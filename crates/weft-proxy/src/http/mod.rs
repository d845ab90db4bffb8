//! HTTP plumbing shared by the outbound and inbound sides: body types, header hygiene, route
//! filters, upstream connections, upgrades and the server settings that bound what a client
//! may send.

pub mod client_body;
pub mod filters;
pub mod headers;
pub mod on_end;
pub mod pool;
pub mod server;
pub mod upgrade;
pub mod upstream;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};

/// Errors a body can carry through the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends or receives, boxed so requests and responses from any source
/// (a client, an upstream, the proxy itself) have one type.
pub type Body = BoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A request from hyper's server with its body boxed (and watched), as the handlers take it.
pub fn boxed_request(req: http::Request<hyper::body::Incoming>) -> http::Request<Body> {
    let (parts, body) = req.into_parts();
    client_body::client_request(parts, body)
}

/// True for a gRPC request (by content type).
pub fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// hyper's `Service` for a handler that answers every request itself (errors included), so
/// the listeners need no `Service` impl of their own.
///
/// `handler_service!(h)` for HTTP/1: hyper keeps the per-request future in one slot per
/// connection, so it is not boxed. `handler_service!(boxed h)` for HTTP/2: hyper spawns a task
/// per stream and moves the service future into it by value, and a handler's future is
/// kilobytes (routing, retries, the upstream exchange); one small allocation is cheaper than
/// those copies (callgrind: about 1,900 fewer instructions per request on the inbound side of
/// the mesh hop, and about 1,000 more if HTTP/1 is boxed too).
///
/// Answers reach hyper with all their fields in the map ([`crate::h1::verbatim::materialize`]).
#[macro_export]
macro_rules! handler_service {
    (boxed $handler:expr) => {{
        let handler = $handler;
        hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            let fut: std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<
                                ::http::Response<$crate::http::Body>,
                                std::convert::Infallible,
                            >,
                        > + Send,
                >,
            > = Box::pin(async move {
                let mut resp = handler.handle($crate::http::boxed_request(req)).await;
                $crate::h1::verbatim::materialize(&mut resp);
                Ok(resp)
            });
            fut
        })
    }};
    ($handler:expr) => {{
        let handler = $handler;
        hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            async move {
                let mut resp = handler.handle($crate::http::boxed_request(req)).await;
                $crate::h1::verbatim::materialize(&mut resp);
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    }};
}
