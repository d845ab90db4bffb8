//! Join tokens: the credential a proxy presents once, to get its first certificate.
//!
//! `weft token create` writes one record per token under `<state>/tokens/<id>.json` (so
//! creating a token never races the control plane redeeming another). A token is
//! `<id>.<secret>`; only the secret's SHA-256 is stored. A token is bound to one workload,
//! expires, and is single-use unless created reusable (then it works until it expires).
//! Renewals never need a token: they are authenticated by the certificate being renewed.
//!
//! With the etcd store the same records live in etcd instead ([`crate::etcd::tokens`]), so
//! any replica redeems a token any other minted; [`Tokens`] is either.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::state::{private_dir, write_private};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the join token is malformed (expected `<id>.<secret>` from `weft token create`)")]
    Malformed,
    #[error("join token {id} is unknown to this control plane (forged, or from another state directory)")]
    Unknown { id: String },
    #[error("join token {id} has the wrong secret (forged)")]
    WrongSecret { id: String },
    #[error("join token {id} expired at {expired_unix} (unix seconds); create a new one")]
    Expired { id: String, expired_unix: u64 },
    #[error(
        "join token {id} was already used (tokens are single-use unless created with --reusable)"
    )]
    AlreadyUsed { id: String },
    #[error("join token {id} is for workload {bound}, not {asked}")]
    WrongWorkload {
        id: String,
        bound: String,
        asked: String,
    },
    #[error("token store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token record {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no secure random numbers available")]
    Random,
    #[error("join tokens: {0}")]
    Store(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub(crate) id: String,
    secret_sha256: String,
    namespace: String,
    workload: String,
    created_unix: u64,
    expires_unix: u64,
    reusable: bool,
    pub(crate) uses: u32,
}

/// A new token for `namespace/workload` valid for `ttl`: its record (the secret's digest
/// only) and the token to hand out (`<id>.<secret>`).
pub(crate) fn mint(
    namespace: &str,
    workload: &str,
    ttl: Duration,
    reusable: bool,
) -> Result<(Record, String), TokenError> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 6];
    let mut secret = [0u8; 20];
    rng.fill(&mut id).map_err(|_| TokenError::Random)?;
    rng.fill(&mut secret).map_err(|_| TokenError::Random)?;
    let (id, secret) = (hex(&id), hex(&secret));
    let now = unix(SystemTime::now());
    let record = Record {
        id: id.clone(),
        secret_sha256: sha256_hex(&secret),
        namespace: namespace.to_string(),
        workload: workload.to_string(),
        created_unix: now,
        expires_unix: now.saturating_add(ttl.as_secs()),
        reusable,
        uses: 0,
    };
    Ok((record, format!("{id}.{secret}")))
}

/// A token's id and secret, or `Malformed` (the id is a file name: only 12 hex digits).
pub(crate) fn parse(token: &str) -> Result<(&str, &str), TokenError> {
    let (id, secret) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok((id, secret))
}

/// Whether `record` lets `secret` be used for `namespace/workload` at `now`.
pub(crate) fn check(
    record: &Record,
    id: &str,
    secret: &str,
    namespace: &str,
    workload: &str,
    now: SystemTime,
) -> Result<(), TokenError> {
    // Compare digests, not secrets: the comparison's timing says nothing about the secret.
    if sha256_hex(secret) != record.secret_sha256 {
        return Err(TokenError::WrongSecret { id: id.to_string() });
    }
    if unix(now) >= record.expires_unix {
        return Err(TokenError::Expired {
            id: id.to_string(),
            expired_unix: record.expires_unix,
        });
    }
    if !record.reusable && record.uses > 0 {
        return Err(TokenError::AlreadyUsed { id: id.to_string() });
    }
    if record.namespace != namespace || record.workload != workload {
        return Err(TokenError::WrongWorkload {
            id: id.to_string(),
            bound: format!("{}/{}", record.namespace, record.workload),
            asked: format!("{namespace}/{workload}"),
        });
    }
    Ok(())
}

/// Where join tokens live: the state directory (one control plane) or etcd (replicas).
#[derive(Clone)]
pub enum Tokens {
    Dir(std::sync::Arc<TokenStore>),
    // Boxed: an etcd client is a few kilobytes.
    Etcd(Box<crate::etcd::Etcd>),
}

impl Tokens {
    /// Creates a token for `namespace/workload` valid for `ttl`.
    pub async fn create(
        &self,
        namespace: &str,
        workload: &str,
        ttl: Duration,
        reusable: bool,
    ) -> Result<String, TokenError> {
        match self {
            Tokens::Dir(store) => {
                let (s, ns, w) = (store.clone(), namespace.to_string(), workload.to_string());
                tokio::task::spawn_blocking(move || s.create(&ns, &w, ttl, reusable))
                    .await
                    .map_err(|e| TokenError::Store(e.to_string()))?
            }
            Tokens::Etcd(etcd) => {
                crate::etcd::tokens::create(etcd, namespace, workload, ttl, reusable).await
            }
        }
    }

    /// Checks `token` for `namespace/workload` and uses it up.
    pub async fn redeem(
        &self,
        token: &str,
        namespace: &str,
        workload: &str,
        now: SystemTime,
    ) -> Result<(), TokenError> {
        match self {
            Tokens::Dir(store) => {
                let (s, t, ns, w) = (
                    store.clone(),
                    token.to_string(),
                    namespace.to_string(),
                    workload.to_string(),
                );
                tokio::task::spawn_blocking(move || s.redeem(&t, &ns, &w, now))
                    .await
                    .map_err(|e| TokenError::Store(e.to_string()))?
            }
            Tokens::Etcd(etcd) => {
                crate::etcd::tokens::redeem(etcd, token, namespace, workload, now).await
            }
        }
    }
}

/// The tokens of one state directory.
pub struct TokenStore {
    dir: PathBuf,
    /// Redeeming reads, checks and rewrites a record: one at a time in this process. Not on
    /// any request path (only certificate requests).
    redeeming: Mutex<()>,
}

impl TokenStore {
    pub fn open(state_dir: &Path) -> Result<Self, TokenError> {
        let dir = state_dir.join("tokens");
        private_dir(&dir).map_err(|source| TokenError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            redeeming: Mutex::new(()),
        })
    }

    /// Creates a token for `namespace/workload` valid for `ttl`.
    pub fn create(
        &self,
        namespace: &str,
        workload: &str,
        ttl: Duration,
        reusable: bool,
    ) -> Result<String, TokenError> {
        let (record, token) = mint(namespace, workload, ttl, reusable)?;
        self.write(&record)?;
        Ok(token)
    }

    /// Checks `token` for `namespace/workload` and uses it up.
    pub fn redeem(
        &self,
        token: &str,
        namespace: &str,
        workload: &str,
        now: SystemTime,
    ) -> Result<(), TokenError> {
        let (id, secret) = parse(token)?;
        let _one_at_a_time = self.redeeming.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path(id);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TokenError::Unknown { id: id.to_string() })
            }
            Err(source) => return Err(TokenError::Io { path, source }),
        };
        let mut record: Record =
            serde_json::from_slice(&text).map_err(|source| TokenError::Corrupt {
                path: path.clone(),
                source,
            })?;
        check(&record, id, secret, namespace, workload, now)?;
        record.uses = record.uses.saturating_add(1);
        self.write(&record)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write(&self, record: &Record) -> Result<(), TokenError> {
        let path = self.path(&record.id);
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| TokenError::Corrupt {
            path: path.clone(),
            source,
        })?;
        write_private(&path, &bytes).map_err(|source| TokenError::Io { path, source })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (TokenStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("weft-tokens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (TokenStore::open(&dir).expect("open"), dir)
    }

    #[test]
    fn single_use_token_is_refused_when_replayed() {
        let (s, dir) = store("replay");
        let t = s
            .create("shop", "web", Duration::from_secs(60), false)
            .expect("create");
        let now = SystemTime::now();
        s.redeem(&t, "shop", "web", now).expect("first use");
        let e = s.redeem(&t, "shop", "web", now).expect_err("replay");
        assert!(matches!(e, TokenError::AlreadyUsed { .. }), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn forged_expired_and_misbound_tokens_are_refused() {
        let (s, dir) = store("forged");
        let t = s
            .create("shop", "web", Duration::from_secs(60), true)
            .expect("create");
        let (id, _) = t.split_once('.').expect("shape");
        let now = SystemTime::now();
        let forged = format!("{id}.{}", "0".repeat(40));
        assert!(matches!(
            s.redeem(&forged, "shop", "web", now),
            Err(TokenError::WrongSecret { .. })
        ));
        assert!(matches!(
            s.redeem("abcdefabcdef.00", "shop", "web", now),
            Err(TokenError::Unknown { .. })
        ));
        assert!(matches!(
            s.redeem("nonsense", "shop", "web", now),
            Err(TokenError::Malformed)
        ));
        assert!(matches!(
            s.redeem("../../etc.x", "shop", "web", now),
            Err(TokenError::Malformed)
        ));
        assert!(matches!(
            s.redeem(&t, "shop", "db", now),
            Err(TokenError::WrongWorkload { .. })
        ));
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            s.redeem(&t, "shop", "web", later),
            Err(TokenError::Expired { .. })
        ));
        // Reusable tokens work more than once while valid.
        s.redeem(&t, "shop", "web", now).expect("first");
        s.redeem(&t, "shop", "web", now).expect("second");
        let _ = std::fs::remove_dir_all(dir);
    }
}
