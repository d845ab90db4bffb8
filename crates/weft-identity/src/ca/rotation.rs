//! Root rotation without an outage.
//!
//! `rotate` makes a new root the signer while the bundle keeps trusting the old one, so
//! certificates issued before the rotation keep verifying; workloads pick up the two-root
//! bundle and new certificates as they renew. Once every workload has renewed (wait at
//! least one maximum certificate lifetime), `finish_rotation` drops the old root. Each step
//! is persisted before it takes effect in memory, so a restart resumes where it was.

use std::path::Path;
use std::time::SystemTime;

use super::store::Files;
use super::{signer, Authority, CaError};
use crate::pem::pem_encode_certs;

// === impl Authority ===

impl Authority {
    /// The CA a rotation starts with: a new root signs, and the bundle trusts it and the
    /// old root(s). `self` is unchanged; the caller persists the result, then uses it.
    pub fn rotated(&self) -> Result<Authority, CaError> {
        if !self.managed {
            return Err(CaError::NotManaged);
        }
        let signer = signer::generate_root(&self.trust_domain, SystemTime::now())?;
        let mut bundle = vec![signer.cert().clone()];
        bundle.extend(self.bundle.iter().filter(|c| *c != signer.cert()).cloned());
        Ok(Authority {
            trust_domain: self.trust_domain.clone(),
            signer,
            bundle,
            managed: true,
        })
    }

    /// The CA a rotation ends with: the same signer, only its root in the bundle.
    pub fn rotation_finished(&self) -> Result<Authority, CaError> {
        if !self.managed {
            return Err(CaError::NotManaged);
        }
        let pem = self.export_pem();
        let root = pem_encode_certs(std::slice::from_ref(self.signer.cert()));
        Authority::from_managed_pem(&pem.cert, &pem.key, &root, &self.trust_domain)
    }

    /// Starts a root rotation: a new root signs from now on, and the bundle trusts both it
    /// and the old root(s), so certificates issued before keep working. Persisted to `dir`.
    pub fn rotate(&mut self, dir: &Path) -> Result<(), CaError> {
        let next = self.rotated()?;
        // Persist first, so memory never runs ahead of what a restart would load.
        Files::new(dir).save(&next.contents())?;
        *self = next;
        tracing::info!(roots = self.bundle.len(), "started a CA root rotation");
        Ok(())
    }

    /// Ends a rotation: every root but the signing one leaves the bundle. Call it only
    /// once every workload holds a certificate from the new root. Persisted to `dir`.
    pub fn finish_rotation(&mut self, dir: &Path) -> Result<(), CaError> {
        if !self.managed {
            return Err(CaError::NotManaged);
        }
        let bundle = vec![self.signer.cert().clone()];
        Files::new(dir).save_bundle(&pem_encode_certs(&bundle))?;
        let dropped = self.bundle.len().saturating_sub(1);
        self.bundle = bundle;
        tracing::info!(dropped, "finished the CA root rotation");
        Ok(())
    }
}
