//! Host credentials: what a joined host's `weft run` and `weft up` register its workloads
//! with, instead of the admin token.
//!
//! Every join hands the host a credential, `host.<name>.<secret>`, which `weft host join`
//! keeps in the host's state directory (readable by root only). Only the secret's SHA-256 is
//! stored, under `<p>/host-credentials/<name>`. The credential is worth less than the admin
//! token on purpose: it registers, renews and deregisters workloads of its own host only,
//! with addresses of its own block ([`crate::workloads_api`]), and can change nothing else.
//!
//! Joining again issues a new credential. The one before it stays valid until the join after
//! that, so workloads started with it keep renewing while the host picks up the new one.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::hosts::check_name;
use super::{Etcd, EtcdError};
use crate::tokens::hex;

/// What every host credential starts with: a bearer token that is not the admin token.
pub const PREFIX: &str = "host.";
/// Issues that may race with another join of the same host before one gives up.
const TRIES: usize = 5;

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "the host credential is malformed (expected `host.<name>.<secret>` from `weft host join`)"
    )]
    Malformed,
    #[error("host {0} has no credential: it has not joined this mesh")]
    Unknown(String),
    #[error("the credential for host {0} is not its current one (forged, or replaced by two later joins)")]
    Wrong(String),
    #[error("no secure random numbers available")]
    Random,
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// The stored digests: the credential of the latest join, and the one before it.
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Digests {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

fn key(etcd: &Etcd, name: &str) -> String {
    format!("{}host-credentials/{name}", etcd.keys.root())
}

fn digest(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// The host a credential names and its secret, or `Malformed`.
fn parse(credential: &str) -> Result<(&str, &str), CredentialError> {
    let rest = credential
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(CredentialError::Malformed)?;
    let (name, secret) = rest.rsplit_once('.').ok_or(CredentialError::Malformed)?;
    if check_name(name).is_err() || secret.len() != 64 {
        return Err(CredentialError::Malformed);
    }
    Ok((name, secret))
}

/// A new credential for host `name`; the previous one stays valid until the next issue.
pub async fn issue(etcd: &Etcd, name: &str) -> Result<String, CredentialError> {
    let mut secret = [0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| CredentialError::Random)?;
    let secret = hex(&secret);
    let k = key(etcd, name);
    let mut kv = etcd.client.kv_client();
    for _ in 0..TRIES {
        let held = kv.get(k.as_str(), None).await.map_err(EtcdError::from)?;
        let (seen, before) = match held.kvs().first() {
            Some(h) => {
                let before: Digests = serde_json::from_slice(h.value())
                    .map_err(|e| EtcdError::Value(format!("{k}: {e}")))?;
                (h.mod_revision(), Some(before.current))
            }
            None => (0, None),
        };
        let value = serde_json::to_vec(&Digests {
            current: digest(&secret),
            previous: before,
        })
        .map_err(|e| EtcdError::Value(e.to_string()))?;
        // Written only over what was read: two joins at once each keep a valid credential.
        let txn = Txn::new()
            .when([Compare::mod_revision(k.as_str(), CompareOp::Equal, seen)])
            .and_then([TxnOp::put(k.as_str(), value, None)]);
        if kv.txn(txn).await.map_err(EtcdError::from)?.succeeded() {
            return Ok(format!("{PREFIX}{name}.{secret}"));
        }
    }
    Err(EtcdError::Value(format!(
        "{k}: other joins of host {name} kept changing it; join again"
    ))
    .into())
}

/// The host `credential` belongs to, if it is that host's current or previous credential.
pub async fn verify(etcd: &Etcd, credential: &str) -> Result<String, CredentialError> {
    let (name, secret) = parse(credential)?;
    let k = key(etcd, name);
    let held = etcd
        .client
        .kv_client()
        .get(k.as_str(), None)
        .await
        .map_err(EtcdError::from)?;
    let Some(held) = held.kvs().first() else {
        return Err(CredentialError::Unknown(name.into()));
    };
    let digests: Digests =
        serde_json::from_slice(held.value()).map_err(|e| EtcdError::Value(format!("{k}: {e}")))?;
    // Digests are compared, never secrets: timing says nothing about how close a guess was.
    let given = digest(secret);
    if given == digests.current || digests.previous.as_deref() == Some(given.as_str()) {
        Ok(name.to_string())
    } else {
        Err(CredentialError::Wrong(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_name_their_host_and_carry_a_full_secret() {
        let secret = "ab".repeat(32);
        let good = format!("host.host-1.{secret}");
        assert_eq!(parse(&good).unwrap(), ("host-1", secret.as_str()));
        assert_eq!(parse(&format!(" {good}\n")).unwrap().0, "host-1");
        for bad in [
            format!("host-1.{secret}"),
            format!("host.{secret}"),
            format!("host.Host-1.{secret}"),
            format!("host.a/b.{secret}"),
            "host.host-1.abcd".to_string(),
            "0123456789ab.secret".to_string(),
            String::new(),
        ] {
            assert!(
                matches!(parse(&bad), Err(CredentialError::Malformed)),
                "{bad:?}"
            );
        }
    }
}
