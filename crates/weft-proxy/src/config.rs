//! The proxy's own settings: where it listens and how it behaves, from the command line.
//! What the mesh looks like comes from the view instead.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Directory of YAML resources (static mode: no control plane). Unused with `control`.
    pub config_dir: PathBuf,
    /// The control plane that configures this proxy and issues its certificate.
    pub control: Option<crate::control::ControlSettings>,
    /// The WorkloadEntry this proxy runs beside, if any.
    pub workload: Option<String>,
    /// The proxy's namespace: decides which consumer routes apply.
    pub namespace: String,
    pub outbound_addr: SocketAddr,
    pub inbound_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Where the local application listens; inbound traffic goes to `app_ip:<port>`.
    pub app_ip: IpAddr,
    /// Write a JSON line per request / connection to stdout.
    pub access_log: bool,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub drain_timeout: Duration,
    /// How long a client may take to send a request head, from its first bytes.
    pub header_read_timeout: Duration,
    /// How long an HTTP/1 client connection idle between requests stays open.
    pub keep_alive_timeout: Duration,
    /// Upper bound on the size of a request head (bytes) and the number of headers.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// The admin token's digest, for `/config` and `/tap` (`--admin-token-file`); with a
    /// control plane, the digest it sends is accepted as well.
    pub admin_digest: Option<weft_identity::AdminDigest>,
}

impl ProxyConfig {
    pub fn new(config_dir: PathBuf) -> Self {
        let any = IpAddr::from([0, 0, 0, 0]);
        Self {
            config_dir,
            control: None,
            workload: None,
            namespace: weft_api::DEFAULT_NAMESPACE.to_string(),
            outbound_addr: SocketAddr::new(any, 4140),
            inbound_addr: SocketAddr::new(any, 4143),
            admin_addr: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 4191),
            app_ip: IpAddr::from([127, 0, 0, 1]),
            access_log: false,
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(75),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            admin_digest: None,
        }
    }
}
