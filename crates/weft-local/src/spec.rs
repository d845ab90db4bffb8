//! What a run is given and what it gives back: the workload to run ([`RunSpec`]), where its
//! application's output goes ([`AppOutput`]), and how the application ended ([`Outcome`]).
//! `weft up` builds a spec per replica; `runner` and the steps it takes (`start`,
//! `supervise`) read it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::capture::CaptureSpec;
use crate::control_client::ControlClient;
use crate::network::HostNet;

/// Everything `weft run` needs to know.
pub struct RunSpec {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub service_account: Option<String>,
    pub port: u16,
    pub app_protocol: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub net: HostNet,
    pub capture: CaptureSpec,
    /// Where records and logs go (`/run/weft`).
    pub run_dir: PathBuf,
    /// The control plane's gRPC address, as the proxy inside the namespace dials it; its
    /// replicas' (`A,B,C`, or a name with several addresses) to fail over between them.
    pub control_grpc: String,
    pub control: ControlClient,
    /// The joined host this runs on (`weft host join`), named in its registration.
    pub host: Option<String>,
    /// The `weft` binary the proxy runs from.
    pub weft_exe: PathBuf,
    /// Where the application's output goes (the proxy's goes to `<run_dir>/logs/`).
    pub app_output: AppOutput,
    pub access_log: bool,
    /// How long the proxy may drain after the application exits.
    pub drain_timeout: Duration,
    /// How long the proxy has to become ready.
    pub ready_timeout: Duration,
}

/// Where the application's output goes.
pub enum AppOutput {
    Inherit,
    File(PathBuf),
    /// Each line printed with this prefix (`[name] ...`), as `weft up` shows its workloads.
    Prefixed(String),
}

/// How the application ended.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit code (128 + signal when a signal ended it).
    pub code: i32,
    pub ran_for: Duration,
    /// Whether the runner stopped it (a shutdown request) rather than it exiting.
    pub stopped: bool,
}
