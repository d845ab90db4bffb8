//! The outbound side: connections the local workload makes.
//!
//! - [`accept`]: a connection's target, decided once when it is accepted (a Service VIP and
//!   port, a workload's own address, or — made to the proxy directly — each request's
//!   authority), and its protocol (declared, or detected);
//! - [`http`]: the HTTP request path, stage by stage: [`plan`] → [`filters`] → [`timeout`] →
//!   [`retry`] → balance → [`endpoint`] (with [`mirror`] beside the filters);
//! - [`tcp`]: opaque TCP; [`connect`]: HTTP `CONNECT` tunnels in explicit proxy mode.

mod accept;
mod connect;
mod endpoint;
mod fault;
mod filters;
mod http;
mod last_authority;
mod mirror;
mod plan;
mod retry;
mod tcp;
mod timeout;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::access_log::AccessLog;
use crate::control::discovery::Discovery;
use crate::drain;
use crate::http::server::Limits;
use crate::metrics::Metrics;
use crate::state::{Registry, Shared};

/// What the outbound side needs, and nothing else.
pub struct Outbound {
    pub state: Shared,
    pub metrics: Arc<Metrics>,
    /// Endpoints for calls to a workload's own address (the first call to each port).
    pub registry: Arc<Registry>,
    pub access_log: Option<AccessLog>,
    /// Open taps (`/tap` on the admin endpoint).
    pub tap: Arc<crate::tap::Tap>,
    pub limits: Limits,
    pub drain: drain::Watch,
    /// On-demand subscriptions, when a control plane configures the proxy.
    pub discovery: Option<Arc<Discovery>>,
}

/// What a connection was addressed to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Service VIP and port (captured connection).
    Service(SocketAddr),
    /// A workload's own address and port (captured connection to a pod IP).
    Workload(SocketAddr),
    /// The proxy itself: route each HTTP request by its authority.
    Explicit,
}

/// How long a connection waits for the control plane to answer about a destination this
/// proxy has not seen before.
pub const ON_DEMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn serve(listener: TcpListener, cx: Arc<Outbound>) {
    let drain = cx.drain.clone();
    crate::listen::accept_loop(
        listener,
        cx,
        drain,
        "outbound",
        |stream, peer, cx| async move { accept::handle(stream, peer, &cx).await },
    )
    .await
}
