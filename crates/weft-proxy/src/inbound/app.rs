//! The app stage for HTTP: the local application, over pooled connections per application
//! port (HTTP/1 keep-alive, or one multiplexed h2c connection). Opaque connections are
//! [`super::tcp`]'s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};

use super::identity::Peer;
use super::route::AppProtocol;
use super::Inbound;
use crate::error::{ProxyError, Reason};
use crate::h1::verbatim::Fields;
use crate::http::client_body::BodyWatch;
use crate::http::pool::{Http1Pool, PoolSettings};
use crate::http::upstream::{H2Connection, UpstreamError};
use crate::http::{boxed, Body};
use crate::metrics::RouteStats;

/// Per-port state of the inbound side, grown copy-on-write the first time a port is used.
#[derive(Default)]
pub struct Ports {
    h2: ArcSwap<HashMap<u16, Arc<H2Connection>>>,
    h1: ArcSwap<HashMap<u16, Arc<Http1Pool>>>,
    stats: ArcSwap<HashMap<(u16, Peer), Arc<RouteStats>>>,
}

impl Ports {
    /// The pool of `app`'s port; its idle timeout is the one in effect when first used.
    fn http1(&self, app: SocketAddr, idle_timeout: impl FnOnce() -> Duration) -> Arc<Http1Pool> {
        get_or_insert(&self.h1, app.port(), || {
            Http1Pool::new(app, PoolSettings::idle(idle_timeout()))
        })
    }

    fn h2(&self, app: SocketAddr) -> Arc<H2Connection> {
        get_or_insert(&self.h2, app.port(), || Arc::new(H2Connection::plain(app)))
    }

    /// Metric handles for (port, peer), made by `make` the first time.
    pub fn stats(
        &self,
        port: u16,
        peer: &Peer,
        make: impl FnOnce() -> Arc<RouteStats>,
    ) -> Arc<RouteStats> {
        get_or_insert(&self.stats, (port, peer.clone()), make)
    }
}

fn get_or_insert<K, T>(
    map: &ArcSwap<HashMap<K, Arc<T>>>,
    key: K,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T>
where
    K: std::hash::Hash + Eq + Clone,
{
    if let Some(v) = map.load().get(&key) {
        return v.clone();
    }
    let value = make();
    map.rcu(|m| {
        let mut next = HashMap::clone(m);
        next.entry(key.clone()).or_insert_with(|| value.clone());
        next
    });
    map.load().get(&key).cloned().unwrap_or(value)
}

fn connect_timeout(cx: &Inbound) -> Duration {
    Duration::from_millis(cx.state.load().mesh.connect_timeout_ms.max(1))
}

/// Sends a request to the application at `app`, in `protocol`.
pub async fn send(
    cx: &Inbound,
    app: SocketAddr,
    protocol: AppProtocol,
    req: Request<Body>,
) -> Result<Response<Body>, ProxyError> {
    let timeout = connect_timeout(cx);
    let body = BodyWatch::of(&req);
    let result: Result<Response<Body>, UpstreamError> = match protocol {
        // The answer goes back over HTTP/2 through hyper, which needs a map.
        AppProtocol::Http1 => {
            let idle = || cx.state.load().mesh.upstream_idle_timeout();
            cx.ports
                .http1(app, idle)
                .send(req, timeout, Fields::Map)
                .await
                .map_err(|f| f.error)
        }
        AppProtocol::Http2 => match cx.ports.h2(app).send(req, timeout).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                Ok(Response::from_parts(parts, boxed(body)))
            }
            Err(f) => Err(f.error),
        },
    };
    result.map_err(|e| {
        if body.as_ref().is_some_and(BodyWatch::failed) {
            ProxyError::new(
                Reason::BadRequest,
                format!("the request body broke off or was malformed ({e})"),
            )
        } else if e.never_sent() {
            // Callers' proxies retry this one whatever the method: nothing reached the app.
            ProxyError::new(
                Reason::AppUnreachable,
                format!("local application {app}: {e}"),
            )
        } else {
            ProxyError::new(Reason::AppFailed, format!("local application {app}: {e}"))
        }
    })
}
