//! A proxy configured by a control plane (`weft proxy --control ADDR`).
//!
//! - [`certs`]: the first certificate (join token) and renewals;
//! - [`xds`]: the delta xDS stream, [`resources`] what it holds, [`discovery`] on-demand
//!   subscriptions from the request path;
//! - [`channel`]: the gRPC connection (TLS 1.3, HTTP/2); [`replicas`]: which control-plane
//!   replica, failing over between them; [`backoff`]: reconnect timing.

pub mod backoff;
pub mod certs;
pub mod channel;
pub mod discovery;
pub mod replicas;
pub mod resources;
pub mod xds;

use std::time::Duration;

use rustls_pki_types::CertificateDer;

/// Where the xDS client hands what the control plane sends: a new view to install, and what
/// to report while there is none. The client knows nothing else of the proxy.
pub trait ViewSink: Send + Sync {
    /// A complete, valid view: compile it and make it current.
    fn install(&self, view: weft_api::view::ProxyView);
    /// Why the proxy has no configuration yet (shown on `/ready`).
    fn waiting(&self, why: String);
    /// A push was refused (NACK): count it.
    fn push_rejected(&self);
    /// What the proxy holds now, and the admin token's digest its config carried.
    fn held(
        &self,
        resources: Vec<resources::HeldResource>,
        admin: Option<weft_identity::AdminDigest>,
    );
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How to reach the control plane and prove who this proxy is.
#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// The control-plane replicas (shared by the xDS and certificate tasks, so both move
    /// to the replica that answers).
    pub replicas: std::sync::Arc<replicas::Replicas>,
    /// Roots to trust for the control plane before the proxy has its own certificate
    /// (the control plane's `ca/bundle.pem`).
    pub trust_bundle: Vec<CertificateDer<'static>>,
    /// For the first certificate (`weft token create`).
    pub join_token: Option<String>,
    pub namespace: String,
    pub workload: String,
    pub connect_timeout: Duration,
}
