//! Registrations as etcd leases: `weft run` and `weft up` register a workload with whichever
//! replica they reach; the replica checks that the mesh stays valid with it, then writes it
//! under `<p>/workloads/<namespace>/<name>` attached to a lease of the registration's TTL.
//! A renewal (the same registration again) only keeps the lease alive, through any replica:
//! the lease lives in etcd, so a replica's restart loses no registration, and a runner that
//! stops renewing leaves the mesh when etcd expires its lease. Every replica learns of both
//! through its watch ([`super::sync`]).

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};

use super::keys::Keys;
use super::EtcdError;
use crate::registry::{Registration, RegistryError, Upsert};
use crate::store::RegisterError;

/// Shortest and longest lease (as the in-memory registry clamps them).
const MIN_TTL: Duration = Duration::from_secs(3);
const MAX_TTL: Duration = Duration::from_secs(600);

/// Why a registration could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Refused(#[from] RegisterError),
    /// A host's credential asked to change a workload of another host (or of none).
    #[error("{0}")]
    OtherHost(String),
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// Refuses a change by host `only` to a held registration that is not that host's.
fn check_host(
    only: Option<&str>,
    held: Option<&Registration>,
    namespace: &str,
    name: &str,
) -> Result<(), LeaseError> {
    let (Some(only), Some(held)) = (only, held) else {
        return Ok(());
    };
    match held.host.as_deref() {
        Some(h) if h == only => Ok(()),
        Some(h) => Err(LeaseError::OtherHost(format!(
            "workload {namespace}/{name} is host {h}'s; host {only} may change only its own"
        ))),
        None => Err(LeaseError::OtherHost(format!(
            "workload {namespace}/{name} is on no joined host; host {only} may change only its own"
        ))),
    }
}

/// Writes (or renews) a registration already checked against the mesh; with `only`, a
/// registration held now must be that host's.
pub async fn register(
    client: &Client,
    keys: &Keys,
    namespace: &str,
    name: &str,
    registration: &Registration,
    only: Option<&str>,
) -> Result<Upsert, LeaseError> {
    let key = keys.workload(namespace, name);
    let mut kv = client.kv_client();
    let current = kv.get(key.as_str(), None).await.map_err(EtcdError::from)?;
    let held = current.kvs().first();
    let ttl = Duration::from_secs(registration.ttl_seconds).clamp(MIN_TTL, MAX_TTL);
    if let Some(held) = held {
        let theirs: Option<Registration> = serde_json::from_slice(held.value()).ok();
        check_host(only, theirs.as_ref(), namespace, name)?;
        if let Some(theirs) = &theirs {
            if theirs.owner != registration.owner {
                return Err(RegisterError::Registry(RegistryError::Taken(
                    format!("{namespace}/{name}"),
                    theirs.owner.clone(),
                ))
                .into());
            }
        }
        if theirs.as_ref() == Some(registration) && held.lease() != 0 {
            // A renewal: the lease again, through this replica.
            if keep_alive(client, held.lease()).await? {
                return Ok(Upsert::Renewed);
            }
            // The lease ended between the read and the keep-alive: written anew below.
        }
    }
    let value = serde_json::to_vec(registration).map_err(|e| EtcdError::Value(e.to_string()))?;
    let lease = client
        .lease_client()
        .grant(ttl.as_secs() as i64, None)
        .await
        .map_err(EtcdError::from)?
        .id();
    // Written only if nobody else wrote the key since it was read (another runner's claim).
    let seen = held.map_or(0, |h| h.mod_revision());
    let txn = Txn::new()
        .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, seen)])
        .and_then([TxnOp::put(
            key.as_str(),
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let done = kv.txn(txn).await.map_err(EtcdError::from)?;
    if !done.succeeded() {
        let _ = client.lease_client().revoke(lease).await;
        return Err(RegisterError::Invalid(vec![format!(
            "workload {namespace}/{name} was registered by someone else at the same moment; try again"
        )])
        .into());
    }
    // The old lease (a changed registration) is let go.
    if let Some(old) = held.map(|h| h.lease()).filter(|l| *l != 0) {
        let _ = client.lease_client().revoke(old).await;
    }
    Ok(Upsert::Changed)
}

/// Removes a registration; `owner` (when given) must hold it, and host `only` (when given)
/// must be where it runs.
pub async fn deregister(
    client: &Client,
    keys: &Keys,
    namespace: &str,
    name: &str,
    owner: Option<&str>,
    only: Option<&str>,
) -> Result<(), LeaseError> {
    let key = keys.workload(namespace, name);
    let mut kv = client.kv_client();
    let current = kv.get(key.as_str(), None).await.map_err(EtcdError::from)?;
    let Some(held) = current.kvs().first() else {
        return Err(
            RegisterError::Registry(RegistryError::Unknown(format!("{namespace}/{name}"))).into(),
        );
    };
    let theirs: Option<Registration> = serde_json::from_slice(held.value()).ok();
    check_host(only, theirs.as_ref(), namespace, name)?;
    if let Some(owner) = owner {
        if let Some(theirs) = theirs.filter(|t| t.owner != owner) {
            return Err(RegisterError::Registry(RegistryError::Taken(
                format!("{namespace}/{name}"),
                theirs.owner,
            ))
            .into());
        }
    }
    let txn = Txn::new()
        .when([Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            held.mod_revision(),
        )])
        .and_then([TxnOp::delete(key.as_str(), None)]);
    kv.txn(txn).await.map_err(EtcdError::from)?;
    if held.lease() != 0 {
        let _ = client.lease_client().revoke(held.lease()).await;
    }
    Ok(())
}

/// One keep-alive of `lease`, on a stream of its own (a stream kept open would be ended by
/// the client's request timeout); false when etcd no longer has it.
pub(super) async fn keep_alive(client: &Client, lease: i64) -> Result<bool, EtcdError> {
    let (mut keeper, mut answers) = client.lease_client().keep_alive(lease).await?;
    keeper.keep_alive().await?;
    match answers.message().await? {
        Some(answer) => Ok(answer.ttl() > 0),
        None => Ok(false),
    }
}
