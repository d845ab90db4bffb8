//! `weft.dev/v1alpha1 LocalWorkload`: a process `weft up` runs on this host, meshed.
//!
//! A local convenience, not an orchestrator: a name, the Service it serves, the command, and
//! how many replicas. Each replica runs as `weft run` would run it (its own network namespace,
//! capture rules and proxy) and registers as a WorkloadEntry. The control plane and proxies
//! ignore this kind; only `weft up` reads it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalWorkloadSpec {
    /// The Service the workload serves (its `app` label); default: the object's name.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub service_account: Option<String>,
    /// The port the application listens on.
    pub port: Spanned<u32>,
    /// `appProtocol` of the port when the Service is implicit (no Service declared).
    #[serde(default)]
    pub app_protocol: Option<String>,
    /// Labels besides `app` (e.g. `version: v2`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How many copies to run (1 to 16); replica `i` is named `<name>-<i>`.
    #[serde(default)]
    pub replicas: Option<Spanned<u32>>,
    /// The program and its arguments; a leading `weft` means this `weft` binary.
    pub command: Spanned<Vec<String>>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}
