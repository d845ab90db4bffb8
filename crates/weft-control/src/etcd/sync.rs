//! Keeping a replica's view of etcd current: one read of everything under the prefix, then a
//! watch from the revision after it. Each batch of events (one etcd revision or a few) goes
//! to the store as one change, validated as a whole; an invalid change (a resource written by
//! hand that fails validation) is refused and logged, and the model in effect stays. When the
//! watch breaks (etcd unreachable, the revision compacted away) the replica reads everything
//! again, after a jittered wait, and carries on: proxies keep their configuration meanwhile.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use futures_util::FutureExt;

use super::keys::Keys;
use super::EtcdError;
use crate::store::{Store, StoredChange};

/// The first wait after a failure; doubled up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(5);
/// Watch answers that arrived together and go into one rebuild, at most.
const MAX_COALESCED: usize = 256;

/// Everything under the prefix now, and the revision it was read at.
pub async fn read_all(client: &Client, keys: &Keys) -> Result<(Vec<StoredChange>, i64), EtcdError> {
    let answer = client
        .kv_client()
        .get(keys.root(), Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = answer.header().map_or(0, |h| h.revision());
    let mut changes = Vec::with_capacity(answer.kvs().len());
    for kv in answer.kvs() {
        let Ok(key) = kv.key_str() else { continue };
        changes.push(StoredChange::Put {
            key: key.to_string(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
            mod_revision: kv.mod_revision(),
        });
    }
    Ok((changes, revision))
}

/// Follows etcd from `revision` (what [`read_all`] saw) until the task is dropped.
pub async fn follow(client: Client, keys: Keys, store: Arc<Store>, mut revision: i64) {
    let mut failures = 0u32;
    loop {
        match watch_from(&client, &keys, &store, revision).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                store.set_etcd_healthy(false);
                tracing::warn!(error = %e, "the etcd watch broke; reading everything again");
            }
        }
        tokio::time::sleep(backoff(failures)).await;
        match read_all(&client, &keys).await {
            Ok((changes, at)) => {
                revision = at;
                apply(&store, changes, true).await;
                store.set_etcd_healthy(true);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot read etcd; the model in effect stays");
            }
        }
    }
}

/// Watches from after `revision`; returns when the watch ends.
async fn watch_from(
    client: &Client,
    keys: &Keys,
    store: &Arc<Store>,
    revision: i64,
) -> Result<(), EtcdError> {
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let mut stream = client
        .watch_client()
        .watch(keys.root(), Some(options))
        .await?;
    while let Some(first) = stream.message().await? {
        // What else has already arrived goes into the same rebuild: a large `weft apply`
        // writes several transactions, and rebuilding the mesh once per transaction would
        // leave this replica further behind with each one.
        let mut answers = vec![first];
        while answers.len() < MAX_COALESCED {
            match stream.message().now_or_never() {
                Some(Ok(Some(more))) => answers.push(more),
                Some(Ok(None)) | None => break,
                Some(Err(e)) => return Err(e.into()),
            }
        }
        let mut changes = Vec::new();
        for answer in &answers {
            if answer.canceled() {
                return Err(EtcdError::Value(format!(
                    "the watch was cancelled (compacted at revision {}): {}",
                    answer.compact_revision(),
                    answer.cancel_reason()
                )));
            }
            collect(answer, &mut changes);
        }
        if !changes.is_empty() {
            apply(store, changes, false).await;
        }
    }
    Err(EtcdError::Value("the watch stream ended".into()))
}

/// The puts and deletes of one watch answer, in order.
fn collect(answer: &etcd_client::WatchResponse, changes: &mut Vec<StoredChange>) {
    for event in answer.events() {
        let Some(kv) = event.kv() else { continue };
        let Ok(key) = kv.key_str() else { continue };
        changes.push(match event.event_type() {
            EventType::Put => StoredChange::Put {
                key: key.to_string(),
                value: String::from_utf8_lossy(kv.value()).into_owned(),
                mod_revision: kv.mod_revision(),
            },
            EventType::Delete => StoredChange::Delete {
                key: key.to_string(),
            },
        });
    }
}

/// Hands a batch to the store (off the async threads: a rebuild is CPU work).
pub async fn apply(store: &Arc<Store>, changes: Vec<StoredChange>, full: bool) {
    let s = store.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || s.apply_stored(changes, full)).await {
        tracing::error!(error = %e, "applying etcd changes failed");
    }
}

/// The wait after `failures` failures in a row: doubled each time, jittered by half.
fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let full = FIRST_WAIT
        .saturating_mul(1 << (failures - 1).min(6))
        .min(MAX_WAIT);
    jittered(full)
}

/// Between half of `full` and all of it, at random: replicas that failed together do not
/// all try again in step.
pub fn jittered(full: Duration) -> Duration {
    full / 2 + (full / 2).mul_f64(fastrand::f64())
}
