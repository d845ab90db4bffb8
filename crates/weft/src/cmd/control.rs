//! `weft control`: the control plane, on a watched directory of mesh resources, or on etcd
//! (`--store etcd`) shared with other replicas.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use weft_control::{CaFiles, ControlConfig, EtcdConfig, EtcdTls, StoreConfig};

#[derive(clap::Args)]
pub struct Args {
    /// Directory of mesh resources (YAML), watched; an invalid change is rejected whole
    /// (the `dir` store).
    #[arg(long, env = "WEFT_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Where the mesh is kept: `dir` (--config-dir, one host) or `etcd` (--etcd-endpoints;
    /// replicas on several hosts share it, and `weft apply` writes to it).
    #[arg(long, env = "WEFT_STORE", value_enum, default_value_t = Store::Dir)]
    store: Store,
    /// etcd's client URLs, comma-separated (`http://10.0.0.1:2379,...`; https with --etcd-ca).
    #[arg(long, env = "WEFT_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Every key Weft keeps in etcd starts with this.
    #[arg(long, env = "WEFT_ETCD_PREFIX", default_value = "/weft")]
    etcd_prefix: String,
    /// The CA that signed etcd's serving certificate (PEM): etcd over TLS.
    #[arg(long, env = "WEFT_ETCD_CA")]
    etcd_ca: Option<PathBuf>,
    /// A client certificate for etcd's --client-cert-auth (PEM), with --etcd-key.
    #[arg(long, env = "WEFT_ETCD_CERT", requires_all = ["etcd_key", "etcd_ca"])]
    etcd_cert: Option<PathBuf>,
    #[arg(long, env = "WEFT_ETCD_KEY", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// Where the CA key and join tokens live (private to the user, survives restarts).
    #[arg(long, env = "WEFT_STATE_DIR", default_value = "/var/lib/weft")]
    state_dir: PathBuf,
    /// gRPC listener for proxies (delta xDS and certificates, over TLS).
    #[arg(long, env = "WEFT_GRPC_ADDR", default_value = "0.0.0.0:4180")]
    grpc_addr: SocketAddr,
    /// Admin listener: /ready, /status, /metrics, CA rotation. Keep it on loopback.
    #[arg(
        long,
        env = "WEFT_CONTROL_ADMIN_ADDR",
        default_value = "127.0.0.1:4181"
    )]
    admin_addr: SocketAddr,
    /// Lifetime of proxies' certificates (renewed at half-life).
    #[arg(long, env = "WEFT_CERT_TTL", default_value = "24h", value_parser = super::proxy::parse_duration)]
    cert_ttl: std::time::Duration,
    /// Use this CA certificate (a root or an intermediate, PEM) instead of generating a root.
    #[arg(long, env = "WEFT_CA_CERT", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The CA's private key (PEM).
    #[arg(long, env = "WEFT_CA_KEY", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Roots to trust (PEM), when --ca-cert is an intermediate (cert-manager's ca.crt).
    #[arg(long, env = "WEFT_CA_BUNDLE", requires = "ca_cert")]
    ca_bundle: Option<PathBuf>,
    /// With --store etcd: the key (64 hex characters; `weft ca seal-key` makes one) that seals
    /// the CA every replica shares in etcd. The same file on every replica.
    #[arg(long, env = "WEFT_CA_SEAL_KEY", conflicts_with = "ca_cert")]
    ca_seal_key: Option<PathBuf>,
    /// Keep every proxy's scrape target in this file, for Prometheus's `file_sd_configs`
    /// (the same list `GET /prometheus/targets` serves for `http_sd_configs`).
    #[arg(long, env = "WEFT_PROMETHEUS_FILE_SD")]
    prometheus_file_sd: Option<PathBuf>,
    /// How often every proxy's golden metrics are scraped for `weft stat` (which scrapes once
    /// more when asked, so its window always ends now).
    #[arg(long, env = "WEFT_STAT_INTERVAL", default_value = "10s", value_parser = super::proxy::parse_duration)]
    stat_interval: std::time::Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Store {
    Dir,
    Etcd,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = match args.store {
        Store::Dir => StoreConfig::Dir(
            args.config_dir
                .context("--config-dir is needed with the dir store (or --store etcd)")?,
        ),
        Store::Etcd => {
            if args.etcd_endpoints.is_empty() {
                anyhow::bail!("--store etcd needs --etcd-endpoints URL[,URL...]");
            }
            if args.config_dir.is_some() {
                anyhow::bail!("--config-dir is for the dir store; with etcd, `weft apply -f DIR` writes the resources");
            }
            StoreConfig::Etcd(EtcdConfig {
                endpoints: args.etcd_endpoints,
                prefix: args.etcd_prefix,
                tls: args.etcd_ca.map(|ca| EtcdTls {
                    ca,
                    cert: args.etcd_cert,
                    key: args.etcd_key,
                }),
            })
        }
    };
    let config = ControlConfig {
        store,
        state_dir: args.state_dir,
        grpc_addr: args.grpc_addr,
        admin_addr: args.admin_addr,
        cert_ttl: args.cert_ttl,
        ca: args.ca_cert.map(|cert| CaFiles {
            cert,
            key: args.ca_key.unwrap_or_default(),
            bundle: args.ca_bundle,
        }),
        ca_seal_key: args.ca_seal_key,
        file_sd: args.prometheus_file_sd,
        stat_interval: args
            .stat_interval
            .max(std::time::Duration::from_millis(500)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(weft_control::run(config, super::shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}
