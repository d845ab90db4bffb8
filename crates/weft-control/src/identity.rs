//! The Identity service: signs proxies' certificate requests.
//!
//! The identity is never the proxy's to choose: it is the SPIFFE id of the WorkloadEntry the
//! proxy names (its namespace and service account), and the CSR contributes only its public
//! key. The first request proves itself with a join token bound to that workload; a renewal
//! proves itself with the current certificate, which must already carry that id. Every
//! refusal is logged with its reason and counted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tonic::{Request, Response, Status};
use weft_api::compile::find_workload;
use weft_identity::{Authority, SpiffeId};
use weft_proto::weft::identity_server::Identity;
use weft_proto::weft::{CertifyRequest, CertifyResponse};

use crate::etcd::ca::SharedCa;
use crate::metrics::{Metrics, ResultLabels};
use crate::published::Published;
use crate::serve::Peer;
use crate::tokens::Tokens;

/// A CSR larger than this is not a CSR.
const MAX_CSR_BYTES: usize = 16 * 1024;

/// The CA and where it lives. Locked only to sign or rotate, never on a data path.
pub struct Ca {
    pub authority: Mutex<Authority>,
    pub state_dir: PathBuf,
    /// With etcd: the CA every replica shares (rotations go through etcd).
    pub shared: Option<SharedCa>,
}

impl Ca {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Authority> {
        self.authority.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// With a shared CA, writes its bundle to `<state-dir>/ca/bundle.pem` (what a proxy on
    /// this host is given as `--control-ca`), as the directory store's CA keeps it there.
    pub fn write_bundle_file(&self) {
        let pem = self.lock().trust_bundle_pem();
        let dir = self.state_dir.join("ca");
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            let tmp = dir.join("bundle.pem.tmp");
            std::fs::write(&tmp, pem)?;
            std::fs::rename(&tmp, dir.join("bundle.pem"))
        });
        if let Err(e) = written {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write the trust bundle file");
        }
    }
}

pub struct IdentityServer {
    pub ca: Arc<Ca>,
    pub tokens: Tokens,
    pub published: watch::Receiver<Arc<Published>>,
    pub cert_ttl: Duration,
    pub metrics: Arc<Metrics>,
}

impl IdentityServer {
    fn refuse(&self, peer: &str, workload: &str, status: Status) -> Status {
        tracing::warn!(client = %peer, %workload, reason = status.message(), "certificate request refused");
        self.metrics
            .certificates
            .get_or_create(&ResultLabels { result: "refused" })
            .inc();
        status
    }
}

#[tonic::async_trait]
impl Identity for IdentityServer {
    async fn certify(
        &self,
        request: Request<CertifyRequest>,
    ) -> Result<Response<CertifyResponse>, Status> {
        let peer = request.extensions().get::<Peer>().cloned();
        let req = request.into_inner();
        let client = peer
            .as_ref()
            .map(|p| p.addr.to_string())
            .unwrap_or_default();
        let workload = format!("{}/{}", req.namespace, req.workload);
        let refuse = |status| self.refuse(&client, &workload, status);
        if req.namespace.is_empty() || req.workload.is_empty() {
            return Err(refuse(Status::invalid_argument(
                "namespace and workload are required",
            )));
        }
        if req.csr.is_empty() || req.csr.len() > MAX_CSR_BYTES {
            return Err(refuse(Status::invalid_argument(format!(
                "the CSR must be 1 to {MAX_CSR_BYTES} bytes of DER"
            ))));
        }
        let published = self.published.borrow().clone();
        let model = &published.model;
        let entry = find_workload(model, &req.namespace, &req.workload)
            .map_err(|e| refuse(Status::not_found(e.to_string())))?;
        let id = SpiffeId::new(
            &model.mesh.trust_domain,
            &entry.namespace,
            &entry.service_account,
        )
        .map_err(|e| refuse(Status::failed_precondition(e.to_string())))?;
        // The control plane's own identity is never a workload's: proxies trust it as their
        // control plane, and their admin ports trust it as the admin token.
        if entry.namespace == weft_proto::types::CONTROL_NAMESPACE
            && entry.service_account == weft_proto::types::CONTROL_SERVICE_ACCOUNT
        {
            return Err(refuse(Status::permission_denied(format!(
                "{id} is the control plane's identity; no workload may have it (use another service account)"
            ))));
        }
        let via = match peer.as_ref().and_then(|p| p.id.clone()) {
            Some(current) if current == id => "renewal",
            Some(current) => {
                return Err(refuse(Status::permission_denied(format!(
                    "the client certificate is {current}; a renewal must be for the same identity, not {id}"
                ))));
            }
            None => {
                let (token, ns, name) = (&req.join_token, &req.namespace, &req.workload);
                if token.is_empty() {
                    return Err(refuse(Status::unauthenticated(
                        "a first certificate needs a join token (`weft token create`)",
                    )));
                }
                self.tokens
                    .redeem(token, ns, name, SystemTime::now())
                    .await
                    .map_err(|e| refuse(Status::unauthenticated(e.to_string())))?;
                "token"
            }
        };
        let issued = self
            .ca
            .lock()
            .issue(&req.csr, &id, self.cert_ttl)
            .map_err(|e| refuse(Status::invalid_argument(e.to_string())))?;
        let bundle = self.ca.lock().trust_bundle();
        let not_after = issued
            .not_after
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.metrics
            .certificates
            .get_or_create(&ResultLabels {
                result: if via == "token" {
                    "issued-token"
                } else {
                    "issued-renewal"
                },
            })
            .inc();
        tracing::info!(%id, %workload, via, not_after_unix = not_after, "certificate issued");
        Ok(Response::new(CertifyResponse {
            spiffe_id: id.to_uri(),
            certificate_chain: issued.chain.iter().map(|c| c.to_vec()).collect(),
            trust_bundle: bundle.iter().map(|c| c.to_vec()).collect(),
            not_after_unix: not_after,
        }))
    }
}
