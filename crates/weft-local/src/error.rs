//! [`RunError`]: why running a workload failed, at whichever step, and [`io`] to say which
//! file operation it was.

use std::net::Ipv4Addr;

use crate::command::ToolError;
use crate::control_client::ControlError;
use crate::privileges::MissingPrivileges;
use crate::records::RecordError;

/// Why `weft run` (or one of `weft up`'s replicas) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Privileges(#[from] MissingPrivileges),
    #[error("{0}")]
    Invalid(String),
    #[error("a workload named `{name}` is already running (weft run pid {pid}, address {address}); stop it first or pick another --name")]
    AlreadyRunning {
        name: String,
        pid: u32,
        address: Ipv4Addr,
    },
    #[error("cannot run `{0}`: no such program (not a file, and not found in PATH)")]
    MissingProgram(String),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("setting up the workload's network: {0}")]
    Network(ToolError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("the proxy {0}")]
    Proxy(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<ToolError> for RunError {
    fn from(e: ToolError) -> Self {
        RunError::Network(e)
    }
}

/// Wraps an I/O error with what was being done: `.map_err(io("creating the log"))`.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}
