//! One CA for every replica, kept in etcd with its key sealed ([`super::seal`]).
//!
//! The first replica to start on an empty etcd generates the root and writes it with a
//! create-if-absent transaction; a replica that loses that race reads the winner's. A
//! rotation step (`POST /ca/rotate`, `/ca/finish-rotation`, or the elected replica's
//! schedule, [`super::singleton`]) is computed from what etcd holds and written only if
//! nothing changed it since (compare-and-swap on the key's revision), so two replicas never
//! rotate over each other. Every replica watches the key and swaps the new CA in, so all of
//! them sign with the same root and publish the same bundle.
//!
//! Why sealed in etcd rather than files on every replica: Weft's own CA (generated, then
//! rotated on a schedule) then works across hosts with one secret to hand out (the seal key),
//! and an etcd backup or a reader of etcd gets no usable key. An operator's CA (cert-manager
//! files, `--ca-cert`/`--ca-key`) given to every replica stays supported, and then nothing
//! about the CA goes into etcd.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use weft_identity::{Authority, CaPem};

use super::seal::SealKey;
use super::{Etcd, EtcdError};
use crate::identity::Ca;
use crate::store::{unix_now, Store};

/// What the CA key holds (JSON). Everything but the sealed key is public.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredCa {
    trust_domain: String,
    /// The signing certificate and its issuers (PEM).
    cert: String,
    /// The roots proxies trust (PEM); two during a rotation.
    bundle: String,
    /// The signing key's PEM, sealed (hex).
    sealed_key: String,
    /// Which seal key sealed it ([`SealKey::id`]).
    seal_key_id: String,
    /// When the rotation in progress started (Unix seconds); the elected replica finishes it
    /// once every certificate issued before has expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation_started_at: Option<u64>,
}

/// The CA as stored, opened, with the revision it was read at.
pub struct Loaded {
    pub authority: Authority,
    pub rotation_started_at: Option<u64>,
    pub mod_revision: i64,
}

/// A rotation step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A new root signs; both are trusted.
    Start,
    /// Only the signing root is trusted.
    Finish,
}

/// The shared CA's handle: etcd, the seal key, the trust domain.
#[derive(Clone)]
pub struct SharedCa {
    etcd: Etcd,
    seal: Arc<SealKey>,
    trust_domain: String,
}

impl SharedCa {
    pub fn new(etcd: Etcd, seal: SealKey, trust_domain: &str) -> SharedCa {
        SharedCa {
            etcd,
            seal: Arc::new(seal),
            trust_domain: trust_domain.to_string(),
        }
    }

    fn key(&self) -> String {
        self.etcd.keys.ca()
    }

    /// The additional data a sealed key is bound to.
    fn context(&self) -> String {
        format!("{} {}", self.key(), self.trust_domain)
    }

    /// The CA in etcd, or a new root written there if there is none yet.
    pub async fn open_or_create(&self) -> Result<Loaded, EtcdError> {
        if let Some(loaded) = self.read().await? {
            tracing::info!(key = %self.key(), roots = loaded.authority.trust_bundle().len(), "loaded the shared CA from etcd");
            return Ok(loaded);
        }
        let authority = Authority::generate(&self.trust_domain).map_err(ca_error)?;
        let value = self.encode(&authority, None)?;
        let key = self.key();
        let created = self
            .put_if(
                Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                value,
            )
            .await?;
        if created.succeeded() {
            tracing::info!(key = %key, trust_domain = %self.trust_domain, "created the shared root CA in etcd");
        }
        // Ours, or the one another replica wrote first.
        self.read()
            .await?
            .ok_or_else(|| EtcdError::Value(format!("{key} vanished right after it was written")))
    }

    /// The CA in etcd now, if any.
    pub async fn read(&self) -> Result<Option<Loaded>, EtcdError> {
        let answer = self.etcd.client.kv_client().get(self.key(), None).await?;
        match answer.kvs().first() {
            None => Ok(None),
            Some(kv) => self.decode(kv.value(), kv.mod_revision()).map(Some),
        }
    }

    /// Runs a rotation step against what etcd holds, written only if nobody changed it
    /// meanwhile; the new CA is returned (every replica also gets it through [`follow`]).
    pub async fn rotate(&self, step: Step) -> Result<Loaded, EtcdError> {
        let current = self
            .read()
            .await?
            .ok_or_else(|| EtcdError::Value(format!("no CA at {}", self.key())))?;
        let (authority, started) = match step {
            Step::Start => (
                current.authority.rotated().map_err(ca_error)?,
                Some(unix_now()),
            ),
            Step::Finish => (
                current.authority.rotation_finished().map_err(ca_error)?,
                None,
            ),
        };
        let value = self.encode(&authority, started)?;
        let key = self.key();
        let written = self
            .put_if(
                Compare::mod_revision(key.as_str(), CompareOp::Equal, current.mod_revision),
                value,
            )
            .await?;
        if !written.succeeded() {
            return Err(EtcdError::Value(
                "another replica changed the CA at the same time; nothing was written (try again)"
                    .into(),
            ));
        }
        let mod_revision = written.header().map_or(0, |h| h.revision());
        Ok(Loaded {
            authority,
            rotation_started_at: started,
            mod_revision,
        })
    }

    /// Writes `value` to the CA key if `condition` holds, in one transaction.
    async fn put_if(
        &self,
        condition: Compare,
        value: String,
    ) -> Result<etcd_client::TxnResponse, EtcdError> {
        let txn = Txn::new()
            .when([condition])
            .and_then([TxnOp::put(self.key(), value, None)]);
        Ok(self.etcd.client.kv_client().txn(txn).await?)
    }

    fn encode(
        &self,
        authority: &Authority,
        rotation_started_at: Option<u64>,
    ) -> Result<String, EtcdError> {
        let CaPem { cert, key, bundle } = authority.export_pem();
        let sealed_key = self
            .seal
            .seal(key.as_bytes(), &self.context())
            .map_err(|e| EtcdError::Value(e.to_string()))?;
        let stored = StoredCa {
            trust_domain: self.trust_domain.clone(),
            cert,
            bundle,
            sealed_key,
            seal_key_id: self.seal.id().to_string(),
            rotation_started_at,
        };
        serde_json::to_string(&stored).map_err(|e| EtcdError::Value(e.to_string()))
    }

    fn decode(&self, value: &[u8], mod_revision: i64) -> Result<Loaded, EtcdError> {
        let bad = |why: String| EtcdError::Value(format!("the CA at {}: {why}", self.key()));
        let stored: StoredCa = serde_json::from_slice(value).map_err(|e| bad(e.to_string()))?;
        if stored.trust_domain != self.trust_domain {
            return Err(bad(format!(
                "it is for trust domain {:?}, and the mesh's is {:?}",
                stored.trust_domain, self.trust_domain
            )));
        }
        let key = self
            .seal
            .open(&stored.sealed_key, &stored.seal_key_id, &self.context())
            .map_err(|e| bad(e.to_string()))?;
        let key = String::from_utf8(key).map_err(|_| bad("the opened key is not PEM".into()))?;
        let authority =
            Authority::from_managed_pem(&stored.cert, &key, &stored.bundle, &self.trust_domain)
                .map_err(|e| bad(e.to_string()))?;
        Ok(Loaded {
            authority,
            rotation_started_at: stored.rotation_started_at,
            mod_revision,
        })
    }
}

/// Watches the CA key and swaps each new CA in, publishing its bundle to every proxy. A
/// value that does not open is logged and the CA in effect stays.
pub async fn follow(shared: SharedCa, ca: Arc<Ca>, store: Arc<Store>, mut revision: i64) {
    let mut wait = Duration::from_millis(200);
    loop {
        let key = shared.key();
        let options = etcd_client::WatchOptions::new().with_start_revision(revision + 1);
        let watched = shared
            .etcd
            .client
            .watch_client()
            .watch(key.as_str(), Some(options))
            .await;
        let mut stream = match watched {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the shared CA; trying again");
                tokio::time::sleep(super::sync::jittered(wait)).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        wait = Duration::from_millis(200);
        while let Ok(Some(answer)) = stream.message().await {
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                revision = revision.max(kv.mod_revision());
                if event.event_type() == EventType::Delete {
                    tracing::error!(key = %key, "the shared CA was deleted from etcd; this replica keeps signing with the CA it has");
                    continue;
                }
                match shared.decode(kv.value(), kv.mod_revision()) {
                    Ok(loaded) => install(&ca, &store, loaded.authority),
                    Err(e) => {
                        tracing::error!(error = %e, "refused a CA change from etcd; the CA in effect stays")
                    }
                }
            }
            if answer.canceled() {
                // Compacted past our revision: read it whole, then watch from there.
                if let Ok(Some(loaded)) = shared.read().await {
                    revision = loaded.mod_revision;
                    install(&ca, &store, loaded.authority);
                }
                break;
            }
        }
        tokio::time::sleep(super::sync::jittered(wait)).await;
    }
}

/// Makes `authority` the CA this replica signs with, and publishes its bundle if it changed.
pub fn install(ca: &Ca, store: &Store, authority: Authority) {
    let bundle = authority.trust_bundle();
    let changed = {
        let mut current = ca.lock();
        let changed =
            current.trust_bundle() != bundle || current.signing_cert() != authority.signing_cert();
        *current = authority;
        changed
    };
    if changed {
        tracing::info!(
            roots = bundle.len(),
            "the shared CA changed; now signing with it"
        );
        ca.write_bundle_file();
        store.publish_bundle(bundle);
    }
}

fn ca_error(e: weft_identity::CaError) -> EtcdError {
    EtcdError::Value(format!("certificate authority: {e}"))
}
