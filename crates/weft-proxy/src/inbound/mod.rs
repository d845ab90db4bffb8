//! The inbound side: connections to the local workload, stage by stage.
//!
//! ```text
//! accept (transport header, captured or direct) → identity (mutual TLS or plaintext,
//!   PeerAuthentication) → HTTP: normalize → authn → authz → route → app
//!                       → opaque: authz (as HTTP if it starts with a request) → app
//! ```
//!
//! - [`accept`]: what a connection is — a peer proxy's (transport header, maybe inside mutual
//!   TLS), a captured one from outside the mesh, or one that cannot be placed;
//! - [`hbone`]: connections from peers on other hosts, one per HTTP/2 `CONNECT` stream;
//! - [`identity`]: who the peer is, as its connection proved it, and whether plaintext is
//!   acceptable on the port;
//! - [`http`]: the HTTP request path: [`normalize`] (paths, per `pathNormalization`),
//!   [`authn`] (RequestAuthentication: JWTs), [`authz`] (AuthorizationPolicy), [`route`] (which local port, how it is counted),
//!   [`app`] (the local application);
//! - [`tcp`]: opaque connections, authorized (via [`sniff`] as HTTP when they start with a
//!   request) and re-authorized on every configuration change; [`open`]: the HTTP/2
//!   connections open now, cut when a new policy refuses them outright.

mod accept;
mod app;
mod authn;
mod authz;
mod hbone;
mod http;
pub mod identity;
mod normalize;
mod open;
mod rate_limit;
mod route;
mod sniff;
mod tcp;

use std::net::IpAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::access_log::AccessLog;
use crate::drain;
use crate::http::server::Limits;
use crate::mesh::MeshTls;
use crate::metrics::Metrics;
use crate::state::Shared;

pub use identity::Peer;

/// What the inbound side needs, and nothing else.
pub struct Inbound {
    pub state: Shared,
    pub metrics: Arc<Metrics>,
    /// The proxy's certificate, to terminate peers' mutual TLS.
    pub tls: Arc<MeshTls>,
    pub access_log: Option<AccessLog>,
    /// Open taps (`/tap` on the admin endpoint).
    pub tap: Arc<crate::tap::Tap>,
    pub limits: Limits,
    pub drain: drain::Watch,
    /// Where the local application listens.
    pub app_ip: IpAddr,
    /// Per-port connections to the application and metric handles (`Default`).
    pub ports: app::Ports,
    /// Changes with every new configuration: open connections decide again.
    pub changes: tokio::sync::watch::Receiver<u64>,
    /// Open HTTP/2 connections, for cutting those a new policy refuses (`Default`).
    pub open: open::OpenConnections,
}

impl Inbound {
    /// `namespace/workload` of the local workload: the inbound `destination_service` label
    /// (the proxy cannot tell which of the Services selecting it a peer meant).
    /// This workload as the `destination_*` metric labels name it.
    fn local_destination(&self) -> crate::metrics::Destination {
        let mut d = crate::metrics::Destination::unknown();
        if let Some(w) = &self.state.load().view.workload {
            d.workload = w.name.clone();
            d.namespace = w.namespace.clone();
        }
        if let Some(id) = self.tls.id() {
            d.principal = id.to_string();
        }
        d
    }

    fn local_workload(&self) -> String {
        match &self.state.load().view.workload {
            Some(w) => format!("{}/{}", w.namespace, w.name),
            None => "local".to_string(),
        }
    }
}

pub async fn serve(listener: TcpListener, cx: Arc<Inbound>) {
    let closer = tokio::spawn(open::close_refused(cx.clone()));
    let drain = cx.drain.clone();
    crate::listen::accept_loop(
        listener,
        cx,
        drain,
        "inbound",
        |stream, peer, cx| async move { accept::handle(stream, peer, &cx).await },
    )
    .await;
    closer.abort();
}
