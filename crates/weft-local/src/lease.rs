//! The workload's registration with the control plane is a lease: `supervise` renews it every
//! third of [`LEASE_TTL`] while the application runs, and [`deregister`] ends it early when
//! the workload stops (else it expires on its own).

use std::time::Duration;

use crate::control_client::ControlError;
use crate::spec::RunSpec;

/// Registration lease; renewed every third of it.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// Removes the registration; a second call (or one after the lease expired) is harmless.
pub(crate) async fn deregister(spec: &RunSpec, owner: &str) {
    match spec
        .control
        .deregister(&spec.namespace, &spec.name, owner)
        .await
    {
        Ok(()) => {}
        Err(ControlError::Refused { status, .. }) if status == http::StatusCode::NOT_FOUND => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not deregister (the registration expires on its own)")
        }
    }
}
