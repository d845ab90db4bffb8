//! The identity stage: who is calling, as the connection proved it. Peer proxies with
//! certificates connect with mutual TLS (TLS 1.3, ALPN `weft/1`), and their SPIFFE id is the
//! peer's principal; anything else is plaintext with no identity. PeerAuthentication decides
//! per application port whether plaintext is accepted at all (STRICT: no).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use weft_api::view::MtlsMode;
use weft_identity::SpiffeId;

use super::Inbound;
use crate::error::{ProxyError, Reason};

/// How long a peer has to finish the mTLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is calling, as the connection proved it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The SPIFFE id of an mTLS client, as a URI; `unknown` for plaintext.
    pub principal: Arc<str>,
    /// The parsed id (trust domain, namespace, service account), for authorization.
    pub id: Option<SpiffeId>,
    pub mtls: bool,
}

impl Peer {
    pub fn plaintext() -> Self {
        Peer {
            principal: Arc::from("unknown"),
            id: None,
            mtls: false,
        }
    }

    /// Istio's `connection_security_policy` label value.
    pub fn policy(&self) -> &'static str {
        if self.mtls {
            "mutual_tls"
        } else {
            "none"
        }
    }
}

/// STRICT ports take mutual TLS only: the refusal for a plaintext connection to `port`.
pub fn check_plaintext(cx: &Inbound, port: u16) -> Result<(), ProxyError> {
    if cx.state.load().view.inbound.mode_for(port) != MtlsMode::Strict {
        return Ok(());
    }
    Err(ProxyError::new(
        Reason::PlaintextRefused,
        format!("PeerAuthentication is STRICT for port {port} (mutual TLS only)"),
    ))
}

/// Terminates a peer proxy's mutual TLS and learns its identity.
pub async fn accept_mtls<I>(io: I, cx: &Inbound) -> Result<(TlsStream<I>, Peer), ProxyError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let Some(current) = cx.tls.current() else {
        return Err(ProxyError::new(
            Reason::NoIdentity,
            "this proxy has no certificate yet",
        ));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(current.server.clone());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ProxyError::new(Reason::TlsRefused, e.to_string())),
        Err(_) => return Err(ProxyError::new(Reason::TlsRefused, "handshake timed out")),
    };
    let id = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(weft_identity::peer_id);
    let principal = id
        .as_ref()
        .map(|id| id.to_uri())
        .unwrap_or_else(|| "unknown".to_string());
    let peer = Peer {
        principal: Arc::from(principal),
        id,
        mtls: true,
    };
    Ok((tls, peer))
}

/// Logs and counts a connection refused before it reached the application.
pub fn refuse(cx: &Inbound, client: SocketAddr, e: &ProxyError) {
    e.count(&cx.metrics, crate::metrics::INBOUND);
    tracing::warn!(%client, reason = e.reason.label(), "refusing inbound connection: {}", e.detail);
}
