//! Work only one replica may do, on the replica etcd's election API elects.
//!
//! Each replica campaigns under `<p>/election/singleton` with a lease it keeps alive; etcd
//! makes the oldest campaigner the leader. The leader runs the singleton work until its
//! lease is lost (the replica died, froze, or lost etcd): then etcd deletes its campaign key
//! and the next replica's campaign succeeds, within the lease's TTL. Work done by the
//! leader is written with compare-and-swap transactions, so a leader that has lost its
//! lease but does not know yet can never overwrite the new leader's step.
//!
//! The work: the CA root rotation schedule ([`rotation_schedule`]). Join tokens need no
//! collector: each is written on a lease that ends after the token does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ca::{SharedCa, Step};
use super::{Etcd, EtcdError};

/// The campaign lease: a dead leader is replaced within this.
const LEASE_TTL_SECS: i64 = 10;
/// How often the leader's lease is renewed (a third of its TTL, so two renewals may fail).
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often the leader looks at the rotation schedule (one etcd read).
const SCHEDULE_EVERY: Duration = Duration::from_secs(5);
/// A root with less life than this left is rotated.
pub const ROTATE_WITHIN: Duration = Duration::from_secs(365 * 24 * 3600);
/// Margin past the longest certificate lifetime before a rotation is finished (clock
/// skew, a renewal that was retrying); never more than the lifetime itself.
const FINISH_MARGIN: Duration = Duration::from_secs(120);

/// Whether this replica is the elected one (shown in `/status`).
#[derive(Clone, Default)]
pub struct Leadership(Arc<AtomicBool>);

impl Leadership {
    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Campaigns forever; while elected, runs the rotation schedule.
pub async fn run(
    etcd: Etcd,
    replica: String,
    leadership: Leadership,
    ca: Option<SharedCa>,
    cert_ttl: Duration,
) {
    let mut wait = Duration::from_millis(500);
    loop {
        match lead_once(&etcd, &replica, &leadership, ca.as_ref(), cert_ttl).await {
            Ok(()) => wait = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(error = %e, "singleton election: trying again");
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
        leadership.0.store(false, Ordering::Relaxed);
        tokio::time::sleep(super::sync::jittered(wait)).await;
    }
}

/// One term: a lease, a campaign won, then the work until the lease is lost.
async fn lead_once(
    etcd: &Etcd,
    replica: &str,
    leadership: &Leadership,
    ca: Option<&SharedCa>,
    cert_ttl: Duration,
) -> Result<(), EtcdError> {
    let mut leases = etcd.client.lease_client();
    let lease = leases.grant(LEASE_TTL_SECS, None).await?.id();
    // Each renewal on a stream of its own: one stream held open would be cut by the client's
    // request timeout, and the lease (and the leadership) with it.
    let renew = async {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match super::leases::keep_alive(&etcd.client, lease).await {
                Ok(true) => {}
                Ok(false) => return Ok::<(), EtcdError>(()),
                Err(e) => return Err(e),
            }
        }
    };
    let campaign_and_work = async {
        let name = etcd.keys.election();
        let mut election = etcd.client.election_client();
        // A campaign waits until this replica is the oldest campaigner. The client's request
        // timeout ends each wait (etcd then withdraws the candidacy) and the next campaign
        // queues again: the leader, which does not campaign again, is never displaced, and
        // when it is gone the oldest waiting candidate wins.
        loop {
            match election.campaign(name.as_str(), replica, lease).await {
                Ok(_) => break,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(EtcdError::from(e)),
            }
        }
        leadership.0.store(true, Ordering::Relaxed);
        tracing::info!(%replica, "elected to run the singleton work (CA rotation schedule)");
        loop {
            if let Some(ca) = ca {
                rotation_schedule(ca, cert_ttl).await;
            }
            tokio::time::sleep(SCHEDULE_EVERY).await;
        }
    };
    let result = tokio::select! {
        renewed = renew => renewed.map(|()| tracing::warn!(%replica, "the singleton lease ended; no longer elected")),
        worked = campaign_and_work => worked,
    };
    if leadership.is_leader() {
        tracing::warn!(%replica, "stepping down from the singleton work");
    }
    // Best effort: a revoked lease lets the next replica take over now rather than at TTL.
    let _ = leases.revoke(lease).await;
    result
}

/// Starts a rotation when the root nears its end, finishes one once every certificate
/// issued before it has expired.
async fn rotation_schedule(ca: &SharedCa, cert_ttl: Duration) {
    let current = match ca.read().await {
        Ok(Some(current)) => current,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "rotation schedule: cannot read the CA");
            return;
        }
    };
    let now = SystemTime::now();
    let step = match current.rotation_started_at {
        Some(started) => {
            let due =
                UNIX_EPOCH + Duration::from_secs(started) + cert_ttl + FINISH_MARGIN.min(cert_ttl);
            (now >= due).then_some(Step::Finish)
        }
        None => {
            let left = current
                .authority
                .not_after()
                .duration_since(now)
                .unwrap_or_default();
            (left < ROTATE_WITHIN && current.authority.is_managed()).then_some(Step::Start)
        }
    };
    let Some(step) = step else { return };
    match ca.rotate(step).await {
        Ok(_) => tracing::info!(?step, "CA rotation schedule: step taken"),
        Err(e) => {
            tracing::warn!(error = %e, ?step, "CA rotation schedule: step failed; trying again later")
        }
    }
}

fn is_timeout(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if matches!(s.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled))
}
