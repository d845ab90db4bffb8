//! The proxy's certificates: the first one (with the join token), then renewals at
//! half-life (authenticated by the current certificate). The private key is generated here
//! and never leaves the proxy. A failed renewal keeps the current certificate and retries with
//! backoff; a trust bundle change (a root rotation) renews at once, so that the proxy's
//! certificate comes from the new root before the old one is dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use tokio::sync::Notify;
use weft_identity::{generate_key_and_csr, Credentials, ExpectedPeer, SpiffeId};
use weft_proto::weft::identity_client::IdentityClient;
use weft_proto::weft::CertifyRequest;

use super::backoff::Backoff;
use super::ControlSettings;
use crate::mesh::MeshTls;

/// After a trust bundle change, renew after about this long (jittered).
const ROTATION_GRACE: Duration = Duration::from_secs(3);

/// Renewal retries never wait longer than this.
const MAX_RETRY: Duration = Duration::from_secs(10);

pub struct Certs {
    pub settings: Arc<ControlSettings>,
    pub tls: Arc<MeshTls>,
    /// Signalled when the trust bundle changes: renew now.
    pub renew_now: Arc<Notify>,
}

/// The TLS client configuration for the control plane: with the proxy's certificate once it
/// has one (the control plane's id checked exactly), else anonymous, trusting only the
/// bundle the proxy was started with.
pub fn control_tls(
    settings: &ControlSettings,
    tls: &MeshTls,
) -> Result<Arc<rustls::ClientConfig>, String> {
    match tls.current() {
        Some(current) => {
            let control = SpiffeId::new(
                current.creds.id.trust_domain(),
                weft_proto::types::CONTROL_NAMESPACE,
                weft_proto::types::CONTROL_SERVICE_ACCOUNT,
            )
            .map_err(|e| e.to_string())?;
            weft_identity::client_config(&current.creds, ExpectedPeer::Exactly(control), &[b"h2"])
                .map_err(|e| e.to_string())
        }
        None => weft_identity::anonymous_client_config(
            &settings.trust_bundle,
            ExpectedPeer::Workload {
                namespace: weft_proto::types::CONTROL_NAMESPACE.to_string(),
                service_account: weft_proto::types::CONTROL_SERVICE_ACCOUNT.to_string(),
            },
            &[b"h2"],
        )
        .map_err(|e| e.to_string()),
    }
}

impl Certs {
    /// Asks the control plane for a certificate (with the join token when there is no
    /// current certificate).
    async fn certify(&self) -> Result<Credentials, String> {
        let s = &self.settings;
        let current = self.tls.current();
        let config = control_tls(s, &self.tls)?;
        let (channel, _) = s.replicas.connect(config, s.connect_timeout).await?;
        // The CA takes only the public key from the CSR; the id in it is a courtesy.
        let csr_id = match &current {
            Some(c) => c.creds.id.clone(),
            None => SpiffeId::new("weft.invalid", &s.namespace, &s.workload)
                .map_err(|e| e.to_string())?,
        };
        let key_and_csr = generate_key_and_csr(&csr_id).map_err(|e| e.to_string())?;
        let join_token = match &current {
            Some(_) => String::new(),
            None => s.join_token.clone().unwrap_or_default(),
        };
        let request = CertifyRequest {
            join_token,
            namespace: s.namespace.clone(),
            workload: s.workload.clone(),
            csr: key_and_csr.csr_der,
        };
        let mut client = IdentityClient::new(channel);
        let call = client.certify(request);
        let response = tokio::time::timeout(s.connect_timeout * 5, call)
            .await
            .map_err(|_| "the control plane did not answer in time".to_string())?
            .map_err(|status| format!("{}: {}", code_name(status.code()), status.message()))?
            .into_inner();
        let id = SpiffeId::parse(&response.spiffe_id).map_err(|e| e.to_string())?;
        let chain: Vec<CertificateDer<'static>> = response
            .certificate_chain
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let bundle: Vec<CertificateDer<'static>> = response
            .trust_bundle
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        Credentials::new(id, chain, key_and_csr.key, bundle).map_err(|e| e.to_string())
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let mut backoff = Backoff::new(Duration::from_millis(250), MAX_RETRY);
        loop {
            if let Some(current) = self.tls.current() {
                let wait = current
                    .creds
                    .renew_at()
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.renew_now.notified() => {
                        // Every proxy gets the new bundle within a push; waiting a few
                        // seconds before presenting a certificate from the new root means no
                        // peer still trusts only the old one when it sees it.
                        let grace = ROTATION_GRACE.mul_f64(0.5 + fastrand::f64());
                        tracing::info!(?grace, "trust bundle changed: renewing the certificate from the current root soon");
                        tokio::time::sleep(grace).await;
                    }
                }
            }
            let first = self.tls.current().is_none();
            match self.certify().await {
                Ok(creds) => {
                    let (id, not_after) = (creds.id.clone(), creds.not_after);
                    match self.tls.install(creds) {
                        Ok(()) => {
                            backoff.reset();
                            let expires_in = not_after
                                .duration_since(SystemTime::now())
                                .unwrap_or_default();
                            tracing::info!(%id, ?expires_in, "{}", if first { "certificate issued" } else { "certificate renewed" });
                        }
                        Err(e) => tracing::error!(error = %e, "the issued certificate is unusable"),
                    }
                }
                Err(reason) => {
                    let wait = backoff.next_wait();
                    match self.tls.current() {
                        Some(c) => {
                            tracing::warn!(%reason, retry_in = ?wait, valid_until = ?c.creds.not_after, "certificate renewal failed; keeping the current certificate")
                        }
                        None => {
                            tracing::warn!(%reason, retry_in = ?wait, "cannot get a certificate from the control plane yet")
                        }
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
        }
    }
}

pub fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::NotFound => "not found",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::Unimplemented => "unimplemented",
        _ => "error",
    }
}
