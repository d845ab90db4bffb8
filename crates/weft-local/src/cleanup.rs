//! Removing what crashed runners left: `weft run --cleanup`, and the bridge holder that
//! `weft up` keeps while its control plane listens on the bridge.

use std::path::Path;

use crate::error::RunError;
use crate::network::{self, HostNet};
use crate::records::{process_start, Record, RecordError, Records};

/// Removes the namespaces, links, hosts files and records of every runner that is no longer
/// alive, and the bridge when no live runner remains. Returns the records it cleaned (their
/// registrations expire on their own, or the caller deregisters them).
pub fn cleanup_stale(run_dir: &Path, net: &HostNet) -> Result<Vec<Record>, RecordError> {
    let records = Records::open(run_dir)?;
    let lock = records.lock()?;
    let mut cleaned = Vec::new();
    for r in records.list(&lock) {
        if r.runner_alive() {
            continue;
        }
        if !r.bridge_only {
            network::delete_namespace(&r.name, r.address);
        }
        records.remove(&lock, &r.name);
        cleaned.push(r);
    }
    if records.list(&lock).is_empty() {
        network::remove_bridge(net);
    }
    Ok(cleaned)
}

/// Creates the bridge and records this process as holding it, so that it stays up while the
/// process runs even when no workload does.
pub fn hold_bridge(run_dir: &Path, net: &HostNet) -> Result<(Records, Record), RunError> {
    let records = Records::open(run_dir)?;
    let lock = records.lock()?;
    network::ensure_bridge(net)?;
    let me = std::process::id();
    let record = Record {
        // Not a DNS label, so it can never be a workload's name.
        name: format!("_bridge-{me}"),
        namespace: String::new(),
        address: net.gateway,
        pid: me,
        pid_start: process_start(me).unwrap_or(0),
        bridge_only: true,
        owner: String::new(),
    };
    records.write(&lock, &record)?;
    drop(lock);
    Ok((records, record))
}
