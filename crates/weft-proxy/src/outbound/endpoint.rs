//! The endpoint stage: one request to one chosen endpoint. Over the mesh (to the endpoint's
//! proxy) it travels as HTTP/2, noting the client's HTTP/1 version in `weft-orig-proto`; to an
//! endpoint without a proxy it goes in the client's own protocol. Upgrades (WebSocket) get a
//! connection of their own.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Version};
use weft_api::view::Protocol;

use crate::error::{ProxyError, Reason};
use crate::h1::verbatim::Fields;
use crate::http::client_body::BodyWatch;
use crate::http::headers::{strip_hop_by_hop, ORIG_PROTO};
use crate::http::upgrade::proxy_upgrade;
use crate::http::upstream::{SendFailure, UpstreamError};
use crate::http::{boxed, Body};
use crate::state::Endpoint;

/// Sends a request to an endpoint: over the mesh as HTTP/2 when it has a proxy (noting the
/// client's HTTP version), else in the client's own protocol (an HTTP/1 answer's fields in
/// `fields`). `target` is the Service port's declared protocol.
pub async fn send(
    target: Protocol,
    ep: &Endpoint,
    mut req: Request<Body>,
    connect_timeout: Duration,
    fields: Fields,
) -> Result<Response<Body>, SendFailure> {
    strip_hop_by_hop(req.headers_mut());
    let mut version = req.version();
    // An HTTP/2 client calling a port declared HTTP/1: the application gets HTTP/1.1.
    if version == Version::HTTP_2 && target == Protocol::Http1 && !crate::http::is_grpc(&req) {
        authority_to_host(&mut req);
        version = Version::HTTP_11;
        *req.version_mut() = version;
    }
    let mut resp = if ep.meshed || version == Version::HTTP_2 {
        if ep.meshed && version != Version::HTTP_2 {
            let orig = if version == Version::HTTP_10 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            };
            req.headers_mut()
                .insert(ORIG_PROTO, HeaderValue::from_static(orig));
        }
        to_absolute(&mut req);
        *req.version_mut() = Version::HTTP_2;
        let resp = ep.h2.send(req, connect_timeout).await?;
        let (parts, body) = resp.into_parts();
        Response::from_parts(parts, boxed(body))
    } else {
        authority_to_host(&mut req);
        ep.http1().send(req, connect_timeout, fields).await?
    };
    // In place: a response is large, and passing it through a function would copy it.
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        strip_hop_by_hop(resp.headers_mut());
    }
    Ok(resp)
}

/// An upgrade (WebSocket): its own connection to the endpoint, bytes relayed once switched.
pub async fn upgrade(
    ep: &Arc<Endpoint>,
    req: Request<Body>,
    connect_timeout: Duration,
) -> Result<Response<Body>, ProxyError> {
    proxy_upgrade(req, ep, connect_timeout)
        .await
        .map_err(|e| failed(ep, &e, None))
}

/// The error a failed exchange with `ep` is: the client's, when its own body broke off
/// (`body`: the request's [`BodyWatch`], taken before it was sent).
pub fn failed(ep: &Endpoint, e: &UpstreamError, body: Option<&BodyWatch>) -> ProxyError {
    if let UpstreamError::Overloaded(e) = e {
        return e.clone();
    }
    if body.is_some_and(BodyWatch::failed) {
        ProxyError::new(
            Reason::BadRequest,
            format!("the request body broke off or was malformed ({e})"),
        )
    } else {
        ProxyError::new(Reason::UpstreamFailed, format!("{}: {e}", ep.addr))
    }
}

/// HTTP/1 carries the authority in `Host`: set it from the URI when missing.
fn authority_to_host<B>(req: &mut Request<B>) {
    if req.headers().contains_key(http::header::HOST) {
        return;
    }
    let host = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = host {
        req.headers_mut().insert(http::header::HOST, host);
    }
}

/// HTTP/2 carries the authority in the URI: move `Host` there.
pub fn to_absolute<B>(req: &mut Request<B>) {
    let host = req.headers_mut().remove(http::header::HOST);
    if req.uri().authority().is_some() {
        return;
    }
    let Some(authority) = host.and_then(|h| Authority::try_from(h.as_bytes()).ok()) else {
        return;
    };
    // Built from parts: the path is shared, not formatted and parsed again.
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    parts.path_and_query = Some(
        req.uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request for `target` with `Host: host`, after [`to_absolute`].
    fn absolute(method: http::Method, target: &str, host: &str) -> Request<()> {
        let mut req = Request::builder()
            .method(method)
            .uri(target)
            .header("host", host)
            .body(())
            .expect("request");
        to_absolute(&mut req);
        req
    }

    #[test]
    fn host_moves_into_the_uri_for_http2() {
        let req = absolute(http::Method::GET, "/a/b?c=1", "echo.shop:8080");
        assert_eq!(req.uri(), "http://echo.shop:8080/a/b?c=1");
        assert!(req.headers().get("host").is_none());

        // An absolute URI already says where: the Host header just goes.
        let req = absolute(http::Method::GET, "http://a.b/x", "other");
        assert_eq!(req.uri(), "http://a.b/x");
        assert!(req.headers().get("host").is_none());

        // An IPv6 literal with a port, and a path-less request.
        let req = absolute(http::Method::OPTIONS, "*", "[::1]:8080");
        assert_eq!(
            req.uri().authority().map(|a| a.as_str()),
            Some("[::1]:8080")
        );
        assert_eq!(req.uri().scheme_str(), Some("http"));

        // A Host that is no authority leaves the URI as it was.
        for bad in ["bad host", "h/x", "h?q"] {
            assert_eq!(absolute(http::Method::GET, "/x", bad).uri(), "/x", "{bad}");
        }
    }
}
