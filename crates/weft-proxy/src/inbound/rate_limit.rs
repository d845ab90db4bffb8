//! The rate-limit stage: HTTPLocalRateLimitPolicies on the workload's port admit the request
//! or refuse it with 429 and `Retry-After` (gRPC: RESOURCE_EXHAUSTED). After authorization,
//! so that a denied caller spends no one's tokens.

use std::sync::Arc;

use crate::error::ProxyError;
use crate::state::Snapshot;

pub fn check(snapshot: &Snapshot, port: u16, principal: &Arc<str>) -> Result<(), ProxyError> {
    // Most workloads have no rate limit: not even a clock read then.
    if snapshot.rate_limits.is_empty() {
        return Ok(());
    }
    let now = crate::balance::now_nanos();
    snapshot.rate_limits.check(port, principal, now)
}
