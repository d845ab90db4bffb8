//! The inbound side: connections to the local workload, stage by stage.
//!
//! ```text
//! accept (transport header, captured or direct) → identity (mutual TLS or plaintext,
//!   PeerAuthentication) → HTTP: route → app  |  TCP: app
//! ```
//!
//! - [`accept`]: what a connection is — a peer proxy's (transport header, maybe inside mutual
//!   TLS), a captured one from outside the mesh, or one that cannot be placed;
//! - [`identity`]: who the peer is, as its connection proved it, and whether plaintext is
//!   acceptable on the port;
//! - [`http`]: the HTTP request path; [`route`]: which local port a request is for and how
//!   it is counted; [`app`]: the local application (HTTP and TCP).

mod accept;
mod app;
mod http;
pub mod identity;
mod route;

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
    pub limits: Limits,
    pub drain: drain::Watch,
    /// Where the local application listens.
    pub app_ip: IpAddr,
    /// Per-port connections to the application and metric handles (`Default`).
    pub ports: app::Ports,
}

impl Inbound {
    /// `namespace/workload` of the local workload: the inbound `destination_service` label
    /// (the proxy cannot tell which of the Services selecting it a peer meant).
    fn local_workload(&self) -> String {
        match &self.state.load().view.workload {
            Some(w) => format!("{}/{}", w.namespace, w.name),
            None => "local".to_string(),
        }
    }
}

pub async fn serve(listener: TcpListener, cx: Arc<Inbound>) {
    let drain = cx.drain.clone();
    crate::listen::accept_loop(
        listener,
        cx,
        drain,
        "inbound",
        |stream, peer, cx| async move { accept::handle(stream, peer, &cx).await },
    )
    .await
}
