//! `weft proxy`: the data plane.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use weft_proxy::ProxyConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Directory of mesh resources (YAML), watched for changes (static mode, no control
    /// plane). Either this or --control.
    #[arg(
        long,
        env = "WEFT_CONFIG_DIR",
        required_unless_present = "control",
        conflicts_with = "control"
    )]
    config_dir: Option<PathBuf>,
    /// The control plane's gRPC address (`weft control`): it configures this proxy over delta
    /// xDS and issues its certificate; traffic between proxies is then mutual TLS. Several
    /// replicas, comma-separated (`10.0.0.1:4180,10.0.0.2:4180`), or a DNS name that
    /// resolves to several (`control.weft:4180`): the proxy moves to another when its
    /// stream breaks.
    #[arg(long, env = "WEFT_CONTROL_GRPC", value_delimiter = ',', value_name = "HOST:PORT[,...]", requires_all = ["control_ca", "workload"])]
    control: Vec<String>,
    /// PEM roots to trust for the control plane (its state directory's `ca/bundle.pem`).
    #[arg(long, env = "WEFT_CONTROL_CA")]
    control_ca: Option<PathBuf>,
    /// Join token for the first certificate (`weft token create --workload NAME`).
    #[arg(long, env = "WEFT_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Read the join token from this file instead (keeps it out of the process list).
    #[arg(long, env = "WEFT_JOIN_TOKEN_FILE", conflicts_with = "join_token")]
    join_token_file: Option<PathBuf>,
    /// The WorkloadEntry this proxy runs beside.
    #[arg(long, env = "WEFT_WORKLOAD")]
    workload: Option<String>,
    /// The proxy's namespace (decides which consumer routes apply; short names resolve in it).
    #[arg(long, env = "WEFT_NAMESPACE", default_value = weft_api::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Outbound listener (captured or explicit-proxy traffic from the workload).
    #[arg(long, env = "WEFT_OUTBOUND_ADDR", default_value = "0.0.0.0:4140")]
    outbound_addr: SocketAddr,
    /// Inbound listener (traffic to the workload).
    #[arg(long, env = "WEFT_INBOUND_ADDR", default_value = "0.0.0.0:4143")]
    inbound_addr: SocketAddr,
    /// Admin listener: /ready, /live, /metrics (open); /config, /tap (the admin token).
    #[arg(long, env = "WEFT_ADMIN_ADDR", default_value = "127.0.0.1:4191")]
    admin_addr: SocketAddr,
    /// A file holding the admin token that /config and /tap accept (besides the one whose
    /// digest the control plane sends). Only its digest is kept.
    #[arg(long, env = "WEFT_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Where the local application listens (inbound traffic goes to APP_IP:<port>).
    #[arg(long, env = "WEFT_APP_IP", default_value = "127.0.0.1")]
    app_ip: IpAddr,
    /// Write a JSON access log line per request to stdout.
    #[arg(long, env = "WEFT_ACCESS_LOG")]
    access_log: bool,
    /// How long in-flight requests may take to finish after SIGTERM (e.g. 10s).
    #[arg(long, env = "WEFT_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: std::time::Duration,
    /// How long a client may take to send a request head, from its first bytes, before the
    /// connection is closed (nginx's `client_header_timeout`: 60s).
    #[arg(long, env = "WEFT_HEADER_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    header_read_timeout: std::time::Duration,
    /// How long an HTTP/1 client connection idle between requests stays open (nginx's
    /// `keepalive_timeout`: 75s). Keep clients' own pool idle timeouts shorter.
    #[arg(long, env = "WEFT_KEEP_ALIVE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    keep_alive_timeout: std::time::Duration,
    /// Largest request head accepted, in bytes (larger gets 431).
    #[arg(long, env = "WEFT_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    max_header_bytes: usize,
    /// Most request headers accepted (more gets 431).
    #[arg(long, env = "WEFT_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,
    /// Worker threads (0: one per CPU).
    #[arg(long, env = "WEFT_THREADS", default_value_t = 1)]
    threads: usize,
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    weft_api::duration::parse(s)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ProxyConfig::new(args.config_dir.clone().unwrap_or_default());
    if !args.control.is_empty() {
        config.control = Some(control_settings(&args)?);
    }
    config.workload = args.workload;
    config.namespace = args.namespace;
    config.outbound_addr = args.outbound_addr;
    config.inbound_addr = args.inbound_addr;
    config.admin_addr = args.admin_addr;
    config.app_ip = args.app_ip;
    config.access_log = args.access_log;
    config.drain_timeout = args.drain_timeout;
    config.header_read_timeout = args.header_read_timeout;
    config.keep_alive_timeout = args.keep_alive_timeout;
    config.max_header_bytes = args.max_header_bytes;
    config.max_headers = args.max_headers;
    if let Some(file) = &args.admin_token_file {
        let token = std::fs::read_to_string(file)
            .with_context(|| format!("reading the admin token {}", file.display()))?;
        anyhow::ensure!(
            token.trim().len() >= 16,
            "{}: an admin token needs at least 16 characters",
            file.display()
        );
        config.admin_digest = Some(weft_identity::AdminDigest::of_token(&token));
    }
    let mut builder = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if args.threads > 1 {
            b.worker_threads(args.threads);
        }
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(weft_proxy::run(config, super::shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

fn control_settings(args: &Args) -> anyhow::Result<weft_proxy::control::ControlSettings> {
    let replicas =
        weft_proxy::control::replicas::Replicas::new(&args.control).map_err(anyhow::Error::msg)?;
    let ca = args
        .control_ca
        .as_ref()
        .context("--control needs --control-ca (the control plane's ca/bundle.pem)")?;
    let pem = std::fs::read_to_string(ca).with_context(|| format!("reading {}", ca.display()))?;
    let trust_bundle = weft_identity::parse_pem_certs(&pem)
        .with_context(|| format!("{} holds no usable certificate", ca.display()))?;
    let join_token = match (&args.join_token, &args.join_token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(weft_proxy::control::ControlSettings {
        replicas,
        trust_bundle,
        join_token,
        namespace: args.namespace.clone(),
        workload: args
            .workload
            .clone()
            .context("--control needs --workload")?,
        connect_timeout: std::time::Duration::from_secs(2),
    })
}
