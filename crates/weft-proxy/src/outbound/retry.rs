//! The retry stage: a route rule's `retry` (attempts, status codes, backoff) and its per-try
//! timeout (`timeouts.backendRequest`), each try to an endpoint the balancer picks anew.
//!
//! Only requests whose body can be sent again are retried: those without one (the body is
//! streamed, not kept). A try that failed because the client's own body broke off is not
//! retried: the client is told (400). Backoff doubles from the rule's base, with jitter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Body as _;

use super::endpoint;
use crate::balance::PickContext;
use crate::error::{ProxyError, Reason};
use crate::h1::verbatim::Fields;
use crate::http::client_body::BodyWatch;
use crate::http::{empty, Body};
use crate::observe::Observed;
use crate::state::{Backend, Endpoint, Rule};

/// One request's tries against one backend.
pub struct Tries<'a> {
    pub backend: &'a Arc<Backend>,
    pub rule: &'a Rule,
    pub client: SocketAddr,
    pub connect_timeout: Duration,
    /// How an HTTP/1 upstream's response fields come back (see [`Fields`]).
    pub fields: Fields,
    /// Told of each try's endpoint (a span reports the one that answered).
    pub seen: &'a mut Observed,
}

impl Tries<'_> {
    /// The balance stage: an endpoint of the backend for this request.
    pub fn pick(&self, req: &Request<Body>) -> Result<Arc<Endpoint>, ProxyError> {
        let cx = PickContext {
            headers: req.headers(),
            query: req.uri().query(),
            source_ip: self.client.ip(),
        };
        self.backend
            .policy
            .pick(&self.backend.endpoints, &cx)
            .cloned()
            .ok_or_else(|| {
                ProxyError::new(
                    Reason::NoEndpoints,
                    format!("{} has no endpoints", self.backend.key),
                )
            })
    }

    pub async fn run(self, req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        let retry = self.rule.retry.as_ref();
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
                self.rule.stats.retried();
                tokio::time::sleep(backoff(retry.map_or(25, |r| r.backoff_ms), n)).await;
            }
            // The last try takes the head itself; earlier ones send a copy.
            let parts = if n + 1 == tries {
                head.take()
            } else {
                head.as_ref().map(clone_head)
            };
            let Some(parts) = parts else { break };
            let req = Request::from_parts(parts, body.take().unwrap_or_else(empty));
            let ep = self.pick(&req)?;
            self.seen.upstream(&ep, n);
            let more = n + 1 < tries;
            match self.once(&ep, req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if more && retry.is_some_and(|r| r.codes.contains(&status)) {
                        tracing::debug!(status, endpoint = %ep.addr, "retrying");
                        last = Some(Ok(resp));
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) if e.reason == Reason::BadRequest => return Err(e),
                Err(e) => {
                    tracing::info!(endpoint = %ep.addr, error = %e, "upstream request failed");
                    last = Some(Err(e));
                }
            }
        }
        last.unwrap_or_else(|| {
            Err(ProxyError::new(
                Reason::NoEndpoints,
                self.backend.key.clone(),
            ))
        })
    }

    /// One try, within the rule's per-try timeout.
    async fn once(&self, ep: &Endpoint, req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        let body = BodyWatch::of(&req);
        let in_flight = ep.load.start();
        // Pinned in place: moving the exchange's (large) future into a timeout would copy it.
        let mut sent = std::pin::pin!(endpoint::send(
            self.backend.protocol,
            ep,
            req,
            self.connect_timeout,
            self.fields,
        ));
        let result = match self.rule.backend_request_timeout.filter(|d| !d.is_zero()) {
            Some(t) => match tokio::time::timeout(t, sent.as_mut()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(ProxyError::new(
                        Reason::Timeout,
                        format!("backendRequest timeout {t:?} to {}", ep.addr),
                    ))
                }
            },
            None => sent.as_mut().await,
        };
        match result {
            Ok(resp) => {
                in_flight.observe();
                Ok(resp)
            }
            Err(e) => Err(endpoint::failed(ep, &e, body.as_ref())),
        }
    }
}

/// The wait before try `n` (from 1): `base` doubled per try (capped at 64×), half of it
/// fixed and half random.
fn backoff(base_ms: u64, n: u32) -> Duration {
    let base = base_ms.max(1);
    let full = base.saturating_mul(1 << (n - 1).min(6));
    Duration::from_millis(full / 2 + fastrand::u64(..=full / 2))
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

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for n in 1..=10u32 {
            let full = 100u64 << (n - 1).min(6);
            for _ in 0..50 {
                let d = backoff(100, n);
                assert!(d >= Duration::from_millis(full / 2), "try {n}: {d:?}");
                assert!(d <= Duration::from_millis(full), "try {n}: {d:?}");
            }
        }
        assert!(backoff(0, 1) <= Duration::from_millis(1));
    }
}
