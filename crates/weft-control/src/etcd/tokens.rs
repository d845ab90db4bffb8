//! Join tokens in etcd, so that a token minted through one replica (at a registration, or by
//! `weft token create --control`) is redeemed by whichever replica the proxy reaches. Each
//! token is a key `<p>/tokens/<id>` holding the same record the directory store keeps (only
//! the secret's SHA-256), attached to a lease that ends a minute after the token expires: etcd
//! removes spent and expired tokens by itself, with no replica having to sweep them. A
//! single-use token is used up in a transaction conditioned on the version that was checked,
//! so two replicas redeeming it at the same moment cannot both succeed.

use std::time::{Duration, SystemTime};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};

use super::Etcd;
use crate::tokens::{check, mint, parse, Record, TokenError};

/// How long a token's key outlives the token (a clock a little behind still sees "expired",
/// not "unknown").
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(60);
/// Redeem attempts when another replica changes the record in between.
const TRIES: u32 = 3;

fn key(etcd: &Etcd, id: &str) -> String {
    format!("{}tokens/{id}", etcd.keys.root())
}

fn failed(e: impl std::fmt::Display) -> TokenError {
    TokenError::Store(format!("etcd: {e}"))
}

/// Mints a token for `namespace/workload`, valid for `ttl`.
pub async fn create(
    etcd: &Etcd,
    namespace: &str,
    workload: &str,
    ttl: Duration,
    reusable: bool,
) -> Result<String, TokenError> {
    let (record, token) = mint(namespace, workload, ttl, reusable)?;
    let value = serde_json::to_vec(&record).map_err(failed)?;
    let lease_s = (ttl + KEEP_AFTER_EXPIRY).as_secs().max(1) as i64;
    let lease = etcd
        .client
        .lease_client()
        .grant(lease_s, None)
        .await
        .map_err(failed)?
        .id();
    let k = key(etcd, &record.id);
    // A fresh id: written only if no such key exists.
    let txn = Txn::new()
        .when([Compare::create_revision(k.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            k.as_str(),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let done = etcd.client.kv_client().txn(txn).await.map_err(failed)?;
    if !done.succeeded() {
        return Err(TokenError::Store(
            "a token id was drawn twice; try again".into(),
        ));
    }
    Ok(token)
}

/// Checks `token` for `namespace/workload` and uses it up.
pub async fn redeem(
    etcd: &Etcd,
    token: &str,
    namespace: &str,
    workload: &str,
    now: SystemTime,
) -> Result<(), TokenError> {
    let (id, secret) = parse(token)?;
    let k = key(etcd, id);
    let mut kv = etcd.client.kv_client();
    for _ in 0..TRIES {
        let answer = kv.get(k.as_str(), None).await.map_err(failed)?;
        let Some(held) = answer.kvs().first() else {
            return Err(TokenError::Unknown { id: id.to_string() });
        };
        let mut record: Record = serde_json::from_slice(held.value())
            .map_err(|e| TokenError::Store(format!("token record {k} is corrupt: {e}")))?;
        check(&record, id, secret, namespace, workload, now)?;
        record.uses = record.uses.saturating_add(1);
        let value = serde_json::to_vec(&record).map_err(failed)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                k.as_str(),
                CompareOp::Equal,
                held.mod_revision(),
            )])
            .and_then([TxnOp::put(
                k.as_str(),
                value,
                Some(PutOptions::new().with_ignore_lease()),
            )]);
        if kv.txn(txn).await.map_err(failed)?.succeeded() {
            return Ok(());
        }
        // Another replica redeemed it in between: look again (a single-use token is spent).
    }
    Err(TokenError::Store(format!(
        "token {id} kept changing while it was redeemed; try again"
    )))
}
