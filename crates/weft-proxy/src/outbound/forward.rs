//! Sending a routed request to an endpoint: per-try timeouts, retries (only for requests
//! whose body can be replayed: those without one), upgrades, mirrors and sticky cookies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Version};
use hyper::body::Body as _;

use crate::balance::PickContext;
use crate::h1::verbatim::Fields;
use crate::http::errors::{respond, Reason};
use crate::http::headers::{is_upgrade, strip_hop_by_hop, ORIG_PROTO};
use crate::http::upgrade::proxy_upgrade;
use crate::http::upstream::UpstreamError;
use crate::http::{boxed, empty, Body};
use crate::run::Context;
use crate::state::{Backend, Endpoint, Rule};
use weft_api::view::Protocol;

/// Mirrored requests are abandoned after this long.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Attempt<'a> {
    pub cx: &'a Arc<Context>,
    pub backend: &'a Arc<Backend>,
    pub rule: &'a Arc<Rule>,
    pub client: SocketAddr,
    pub grpc: bool,
    pub connect_timeout: Duration,
    /// How an HTTP/1 upstream's response fields come back (see [`Fields`]).
    pub fields: Fields,
}

impl Attempt<'_> {
    pub async fn run(self, req: Request<Body>) -> Response<Body> {
        let pick = |headers: &http::HeaderMap, uri: &http::Uri| {
            let cx = PickContext {
                headers,
                query: uri.query(),
                source_ip: self.client.ip(),
            };
            self.backend
                .policy
                .pick(&self.backend.endpoints, &cx)
                .cloned()
        };
        if is_upgrade(&req) {
            let Some(ep) = pick(req.headers(), req.uri()) else {
                return respond(Reason::NoEndpoints, &self.backend.key, self.grpc);
            };
            return upgrade(&ep, req, self.cx, self.connect_timeout).await;
        }
        let retry = self.rule.retry.as_ref();
        // Only a request without a body can be sent again: the body is streamed, not kept.
        let replayable = retry.is_some() && req.body().is_end_stream();
        let tries = if replayable {
            1 + retry.map_or(0, |r| r.attempts)
        } else {
            1
        };
        let (head, body) = req.into_parts();
        let mut head = Some(head);
        let mut body = Some(body);
        let mut last = None;
        for n in 0..tries {
            if n > 0 {
                let base = retry.map_or(25, |r| r.backoff_ms).max(1);
                let backoff = base.saturating_mul(1 << (n - 1).min(6));
                tokio::time::sleep(Duration::from_millis(
                    backoff / 2 + fastrand::u64(..=backoff / 2),
                ))
                .await;
            }
            // The last try takes the head itself; earlier ones send a copy.
            let parts = if n + 1 == tries {
                head.take()
            } else {
                head.as_ref().map(clone_head)
            };
            let Some(parts) = parts else { break };
            let req = Request::from_parts(parts, body.take().unwrap_or_else(empty));
            let Some(ep) = pick(req.headers(), req.uri()) else {
                return respond(
                    Reason::NoEndpoints,
                    &format!("{} has no endpoints", self.backend.key),
                    self.grpc,
                );
            };
            let in_flight = ep.load.start();
            // Pinned in place: moving the exchange's (large) future into a timeout would copy it.
            let mut sent = std::pin::pin!(to_endpoint_raw(
                self.backend.protocol,
                &ep,
                req,
                self.connect_timeout,
                self.fields,
            ));
            let result = match self.rule.backend_request_timeout.filter(|d| !d.is_zero()) {
                Some(t) => tokio::time::timeout(t, sent.as_mut()).await.map_err(|_| t),
                None => Ok(sent.as_mut().await),
            };
            let more = n + 1 < tries;
            match result {
                Ok(Ok(resp)) => {
                    in_flight.observe();
                    let status = resp.status().as_u16();
                    if more && retry.is_some_and(|r| r.codes.contains(&status)) {
                        tracing::debug!(status, endpoint = %ep.addr, "retrying");
                        last = Some(map_response(resp));
                        continue;
                    }
                    return map_response(resp);
                }
                Ok(Err(e)) => {
                    tracing::info!(endpoint = %ep.addr, error = %e, "upstream request failed");
                    self.cx
                        .metrics
                        .proxy_error(crate::metrics::OUTBOUND, Reason::UpstreamFailed.label());
                    last = Some(respond(
                        Reason::UpstreamFailed,
                        &format!("{}: {e}", ep.addr),
                        self.grpc,
                    ));
                }
                Err(t) => {
                    self.cx
                        .metrics
                        .proxy_error(crate::metrics::OUTBOUND, Reason::Timeout.label());
                    last = Some(respond(
                        Reason::Timeout,
                        &format!("backendRequest timeout {t:?} to {}", ep.addr),
                        self.grpc,
                    ));
                }
            }
            if !more {
                break;
            }
        }
        last.unwrap_or_else(|| respond(Reason::NoEndpoints, &self.backend.key, self.grpc))
    }
}

/// Forwards to one endpoint without routing (traffic to a workload's own address).
pub async fn to_endpoint(
    cx: &Arc<Context>,
    ep: &Arc<Endpoint>,
    req: Request<Body>,
    connect_timeout: Duration,
    grpc: bool,
    fields: Fields,
) -> Response<Body> {
    if is_upgrade(&req) {
        return upgrade(ep, req, cx, connect_timeout).await;
    }
    match to_endpoint_raw(Protocol::Detect, ep, req, connect_timeout, fields).await {
        Ok(resp) => map_response(resp),
        Err(e) => respond(Reason::UpstreamFailed, &format!("{}: {e}", ep.addr), grpc),
    }
}

async fn upgrade(
    ep: &Arc<Endpoint>,
    req: Request<Body>,
    cx: &Arc<Context>,
    connect_timeout: Duration,
) -> Response<Body> {
    match proxy_upgrade(req, ep, connect_timeout).await {
        Ok(resp) => resp,
        Err(e) => {
            cx.metrics
                .proxy_error(crate::metrics::OUTBOUND, Reason::UpstreamFailed.label());
            respond(Reason::UpstreamFailed, &format!("{}: {e}", ep.addr), false)
        }
    }
}

/// Sends a request to an endpoint: over the mesh as HTTP/2 when it has a proxy (noting the
/// client's HTTP version), else in the client's own protocol (an HTTP/1 answer's fields in
/// `fields`).
async fn to_endpoint_raw(
    target: Protocol,
    ep: &Endpoint,
    mut req: Request<Body>,
    connect_timeout: Duration,
    fields: Fields,
) -> Result<Response<Body>, UpstreamError> {
    strip_hop_by_hop(req.headers_mut());
    let mut version = req.version();
    // An HTTP/2 client calling a port declared HTTP/1: the application gets HTTP/1.1.
    if version == Version::HTTP_2 && target == Protocol::Http1 && !crate::http::is_grpc(&req) {
        authority_to_host(&mut req);
        version = Version::HTTP_11;
        *req.version_mut() = version;
    }
    if ep.meshed || version == Version::HTTP_2 {
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
        Ok(Response::from_parts(parts, boxed(body)))
    } else {
        authority_to_host(&mut req);
        ep.http1().send(req, connect_timeout, fields).await
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

fn map_response(mut resp: Response<Body>) -> Response<Body> {
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        strip_hop_by_hop(resp.headers_mut());
    }
    resp
}

/// Copies a request head (method, URI, version, headers; not extensions).
fn clone_head(head: &http::request::Parts) -> http::request::Parts {
    let mut req = Request::new(());
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = head.uri.clone();
    *req.version_mut() = head.version;
    *req.headers_mut() = head.headers.clone();
    req.into_parts().0
}

/// Sends a copy of the request head (the body is not copied: it is streamed once, to the
/// real backend) to one of `backend`'s endpoints, and forgets the answer.
pub fn mirror<B>(backend: Arc<Backend>, req: &Request<B>, client: SocketAddr) {
    let (head, _) = {
        let mut copy = Request::new(());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        copy.headers_mut().remove(http::header::CONTENT_LENGTH);
        copy.headers_mut().remove(http::header::TRANSFER_ENCODING);
        copy.into_parts()
    };
    tokio::spawn(async move {
        let pick = PickContext {
            headers: &head.headers,
            query: head.uri.query(),
            source_ip: client.ip(),
        };
        let Some(ep) = backend.policy.pick(&backend.endpoints, &pick).cloned() else {
            return;
        };
        let req = Request::from_parts(head, empty());
        let timeout = MIRROR_TIMEOUT;
        match tokio::time::timeout(
            timeout,
            to_endpoint_raw(backend.protocol, &ep, req, timeout, Fields::Map),
        )
        .await
        {
            Ok(Ok(resp)) => {
                tracing::debug!(status = %resp.status(), endpoint = %ep.addr, "mirrored")
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "mirror failed"),
            Err(_) => tracing::debug!("mirror timed out"),
        }
    });
}

/// For cookie-hash balancing with a TTL: a request without the cookie gets a fresh one, used
/// for this request's choice and returned as the `Set-Cookie` to add to the response.
pub fn ensure_sticky_cookie<B>(backend: &Backend, req: &mut Request<B>) -> Option<HeaderValue> {
    let (name, path, ttl) = backend.sticky_cookie.as_ref()?;
    if crate::balance::cookie(req.headers(), name).is_some() {
        return None;
    }
    let value = format!("{:016x}", fastrand::u64(..));
    let pair = HeaderValue::from_str(&format!("{name}={value}")).ok()?;
    req.headers_mut().append(http::header::COOKIE, pair);
    let path = path.as_deref().unwrap_or("/");
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={ttl}; HttpOnly"
    ))
    .ok()
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
