//! Running meshed workloads on a plain Linux host (`weft run`, `weft up`).
//!
//! Each workload gets a network namespace of its own, joined by a veth pair to a bridge Weft
//! manages on the host ([`network`]); iptables NAT rules inside the namespace send its TCP
//! traffic through the workload's proxy ([`capture`]); Service names resolve through the
//! namespace's hosts file ([`hosts`]); the proxy registers the workload with the control plane
//! and gets its join token ([`control_client`]); [`runner`] starts the proxy, then the
//! application once the proxy is ready, and tears everything down when the application
//! exits. What was created is written down first ([`records`]), so that a crash leaves
//! nothing that `weft run --cleanup` (or the next `weft run`) cannot find and remove.
//!
//! Needs CAP_NET_ADMIN and CAP_SYS_ADMIN ([`privileges`]), `ip` (iproute2) and `iptables`.

pub mod capture;
pub mod cleanup;
pub mod command;
pub mod control_client;
mod error;
pub mod hosts;
pub mod joined;
mod lease;
pub mod network;
pub mod privileges;
pub mod records;
pub mod restart;
pub mod runner;
pub mod spawn;
mod spec;
mod start;
mod supervise;
pub mod tunnel;
pub mod up;

pub use error::RunError;
pub use network::HostNet;
pub use spec::{AppOutput, Outcome, RunSpec};
