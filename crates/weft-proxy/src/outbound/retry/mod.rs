//! The retry stage: each try to an endpoint the balancer picks anew, within the per-try
//! timeout (`timeouts.backendRequest`), tried again when [`policy`] says the way it ended
//! may be, the attempts allow, and the destination Service's [retry budget] has a retry
//! left. Beyond the budget the failure is returned, and counted.
//!
//! A request body is sent again only when [`replay`] kept all of it (under
//! `retries.maxBodyBytes`). A refused stream (the peer was closing the connection, as after an
//! idle period) is sent again at once, once, without drawing from the budget: the request
//! never reached anyone. Otherwise the wait before a retry is exponential with full jitter.
//!
//! [retry budget]: crate::resilience::RetryBudget

pub mod policy;
pub mod replay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Body as _;
use weft_api::view::RetriesView;

use super::endpoint;
use crate::balance::PickContext;
use crate::error::{ProxyError, Reason, WEFT_ERROR};
use crate::h1::verbatim::Fields;
use crate::http::client_body::BodyWatch;
use crate::http::upstream::{FreshConnection, UpstreamError};
use crate::http::{empty, Body};
use crate::observe::Observed;
use crate::resilience::outlier::Verdict;
use crate::resilience::{now_millis, now_seconds};
use crate::state::{Backend, Endpoint, Rule};
use policy::Ended;
use replay::Replay;

/// The first wait of the safe default's retries (a route's `backoff` sets its own).
const DEFAULT_BACKOFF_MS: u64 = 25;

/// One request's tries against one backend.
pub struct Tries<'a> {
    pub backend: &'a Arc<Backend>,
    pub rule: &'a Rule,
    /// MeshConfig `retries`: the safe default's attempts and the replay buffer's size.
    pub settings: &'a RetriesView,
    pub client: SocketAddr,
    pub connect_timeout: Duration,
    /// How an HTTP/1 upstream's response fields come back (see [`Fields`]).
    pub fields: Fields,
    /// A gRPC call (its answers' `grpc-status` decides retries and outlier detection).
    pub grpc: bool,
    /// Told of each try's endpoint (a span reports the one that answered).
    pub seen: &'a mut Observed,
}

/// A try's result, how it ended, and the request when it never left the proxy.
type Tried = (
    Result<Response<Body>, ProxyError>,
    Ended,
    Option<Request<Body>>,
);

impl Tries<'_> {
    /// The balance stage: an endpoint of the backend for this request, other than `avoid`
    /// (the one that just failed) when another can be had.
    pub fn pick(
        &self,
        req: &Request<Body>,
        avoid: Option<&Arc<Endpoint>>,
    ) -> Result<Arc<Endpoint>, ProxyError> {
        let cx = PickContext {
            headers: req.headers(),
            query: req.uri().query(),
            source_ip: self.client.ip(),
        };
        let all = &self.backend.endpoints;
        let outlier = self.backend.outlier.as_ref();
        let now = outlier.map_or(0, |_| now_millis());
        let usable = |e: &Arc<Endpoint>| {
            !avoid.is_some_and(|a| Arc::ptr_eq(a, e))
                && outlier.is_none_or(|o| o.admits(&**e, all, now))
        };
        // `trafficDistribution`: the close endpoints while one of them is usable.
        let (endpoints, policy) = self.backend.candidates(usable);
        let mut picked = policy.pick(endpoints, &cx);
        if picked.is_some_and(|p| !usable(p)) && endpoints.len() > 1 {
            // Twice more at most (a hash policy may insist), then any usable one.
            for _ in 0..2 {
                let again = policy.pick(endpoints, &cx);
                if again.is_some_and(usable) {
                    picked = again;
                    break;
                }
            }
            if picked.is_some_and(|p| !usable(p)) {
                let start = fastrand::usize(..endpoints.len());
                let any = (0..endpoints.len())
                    .map(|i| &endpoints[(start + i) % endpoints.len()])
                    .find(|e| usable(e));
                // None usable (all ejected, say): the balancer's choice stands.
                picked = any.or(picked);
            }
        }
        picked.cloned().ok_or_else(|| {
            ProxyError::new(
                Reason::NoEndpoints,
                format!("{} has no endpoints", self.backend.key),
            )
        })
    }

    pub async fn run(self, req: Request<Body>) -> Result<Response<Body>, ProxyError> {
        // `http2MaxRequests`: counted until the answer's head (or the failure) is here.
        let _permit = match &self.backend.limits {
            Some(limits) => Some(limits.request()?),
            None => None,
        };
        // `maxRetries`: a retry's place, held until the next retry or the answer.
        let mut in_retry = None;
        let retries = &self.backend.retries;
        retries.budget.deposit(now_seconds());
        let route = self.rule.retry.as_ref();
        let attempts = route.map_or(self.settings.default_attempts, |r| r.attempts);
        let method = req.method().clone();
        let watch = BodyWatch::of(&req);
        // Only a route's retries send a request that already left again, and need its head
        // copied and its body kept (a copy costs; the safe default retries only requests that
        // come back unsent, and needs neither).
        // The request stays in `next` (a request is large: each move is a copy).
        let mut next = Some(req);
        let (mut head, mut replay) = (None, None);
        if route.is_some() && attempts > 0 {
            if let Some(req) = next.take() {
                let (parts, body) = req.into_parts();
                let body = if body.is_end_stream() {
                    body
                } else {
                    let (kept, first) = Replay::start(body, self.settings.max_body_bytes);
                    replay = Some(kept);
                    first
                };
                head = Some(clone_head(&parts));
                next = Some(Request::from_parts(parts, body));
            }
        }
        let mut refused_again = false;
        let mut avoid = None;
        let mut n = 0u32;
        loop {
            let Some(req) = next.take() else {
                return Err(ProxyError::new(
                    Reason::NoEndpoints,
                    self.backend.key.clone(),
                ));
            };
            let ep = self.pick(&req, avoid.as_ref())?;
            self.seen.upstream(&ep, n);
            let (result, ended, unsent) = self.once(&ep, req, watch.as_ref(), &method).await;
            if n >= attempts || !policy::should_retry(route, ended) {
                // What the retries bought: the audit's "requests that succeeded only on retry".
                if n > 0 && matches!(verdict(ended), Verdict::Success) {
                    self.rule.stats.saved_by_retry();
                }
                return result;
            }
            // The request again: back unsent, else from the copy (a route's retries).
            let again = match unsent {
                Some(req) => Some(req),
                None => match head.as_ref() {
                    Some(copy) => {
                        // The body again: the last try must have given all of it back.
                        let body = match replay.as_mut() {
                            None => Some(empty()),
                            Some(replay) => replay.again().await,
                        };
                        if body.is_none() {
                            retries.counters.refused_body.inc();
                        }
                        // The last try takes the copy itself.
                        let parts = if n + 1 >= attempts {
                            head.take()
                        } else {
                            Some(clone_head(copy))
                        };
                        body.zip(parts).map(|(b, p)| Request::from_parts(p, b))
                    }
                    None => None,
                },
            };
            let Some(again) = again else {
                return result;
            };
            // A stream the peer refused unprocessed goes again at once, once, for free.
            let free = ended == Ended::Refused && !refused_again;
            if free {
                refused_again = true;
            } else if !retries.budget.try_withdraw(now_seconds()) {
                retries.counters.refused_budget.inc();
                tracing::debug!(service = %self.backend.service, "retry budget spent");
                return result;
            }
            // `maxRetries`: retries in flight to the destination at once.
            if let Some(limits) = &self.backend.limits {
                drop(in_retry.take());
                in_retry = limits.retry();
                if in_retry.is_none() {
                    return result;
                }
            }
            drop(result);
            self.rule.stats.retried();
            tracing::debug!(endpoint = %ep.addr, ?ended, try_ = n + 1, "retrying");
            if !free {
                let base = route.map_or(DEFAULT_BACKOFF_MS, |r| r.backoff_ms);
                tokio::time::sleep(backoff(base, n + 1)).await;
            }
            next = Some(again);
            avoid = Some(ep);
            n += 1;
        }
    }

    /// One try, within the rule's per-try timeout; the request back if it never left.
    async fn once(
        &self,
        ep: &Endpoint,
        req: Request<Body>,
        watch: Option<&BodyWatch>,
        method: &http::Method,
    ) -> Tried {
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
            Some(t) => tokio::time::timeout(t, sent.as_mut()).await.ok(),
            None => Some(sent.as_mut().await),
        };
        let tried = match result {
            // The per-try timeout fired: a gateway error for outlier detection too (an
            // endpoint whose link is cut answers nothing, and must be ejected for it).
            None => {
                let t = self.rule.backend_request_timeout.unwrap_or_default();
                let e = ProxyError::new(
                    Reason::Timeout,
                    format!("backendRequest timeout {t:?} to {}", ep.addr),
                );
                (Err(e), Ended::TryTimeout, None)
            }
            Some(result) => match result {
                Ok(resp) => {
                    let ended = answered(ep, &resp, self.grpc);
                    match ended {
                        Ended::Answer {
                            status: 429,
                            grpc: None,
                        }
                        | Ended::Answer { grpc: Some(8), .. } => in_flight.observe_refusal(),
                        // A connect's time is not the endpoint's: nothing learnt.
                        _ if resp.extensions().get::<FreshConnection>().is_some() => {}
                        _ => in_flight.observe(),
                    }
                    (Ok(resp), ended, None)
                }
                Err(f) => {
                    let ended = failed(&f.error, watch, method);
                    if ended == Ended::NeverSent {
                        in_flight.observe_refusal();
                    }
                    (Err(endpoint::failed(ep, &f.error, watch)), ended, f.unsent)
                }
            },
        };
        if let Some(outlier) = &self.backend.outlier {
            outlier.record(ep, &self.backend.endpoints, verdict(tried.1), now_millis());
        }
        tried
    }
}

/// What outlier detection makes of how a try ended.
fn verdict(ended: Ended) -> Verdict {
    match ended {
        Ended::Answer { status, grpc } => Verdict::of_status(status, grpc),
        Ended::PeerAppUnreachable | Ended::NeverSent | Ended::Broken | Ended::TryTimeout => {
            Verdict::GatewayError
        }
        Ended::Refused | Ended::ClientBody | Ended::Overloaded => Verdict::Neutral,
    }
}

/// How a try that got an answer ended.
fn answered(ep: &Endpoint, resp: &Response<Body>, grpc: bool) -> Ended {
    let status = resp.status().as_u16();
    // The peer proxy could not connect to its application: nothing reached it.
    if ep.meshed
        && status == 502
        && resp
            .headers()
            .get(WEFT_ERROR)
            .is_some_and(|v| v.as_bytes().starts_with(b"app-unreachable"))
    {
        return Ended::PeerAppUnreachable;
    }
    let grpc = grpc
        .then(|| resp.headers().get("grpc-status"))
        .flatten()
        .and_then(|v| v.to_str().ok()?.parse().ok());
    Ended::Answer { status, grpc }
}

/// How a try that failed before an answer ended.
fn failed(e: &UpstreamError, watch: Option<&BodyWatch>, method: &http::Method) -> Ended {
    if matches!(e, UpstreamError::Overloaded(_)) {
        Ended::Overloaded
    } else if watch.is_some_and(BodyWatch::failed) {
        Ended::ClientBody
    } else if e.refused_stream()
        || (matches!(e, UpstreamError::StaleHttp1 { .. }) && policy::idempotent(method))
    {
        Ended::Refused
    } else if e.never_sent() {
        Ended::NeverSent
    } else {
        Ended::Broken
    }
}

/// The wait before retry `n` (from 1): full jitter over `base` doubled per retry (capped at
/// 64×), as AWS's analysis of backoff recommends: retries of many clients spread out.
fn backoff(base_ms: u64, n: u32) -> Duration {
    let full = base_ms.max(1).saturating_mul(1 << (n - 1).min(6));
    Duration::from_millis(fastrand::u64(..=full))
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
mod tests;
