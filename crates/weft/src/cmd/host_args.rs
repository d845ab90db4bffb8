//! Where a host's workloads run and whom they register with, shared by `weft run` and
//! `weft up`: the bridge, the state and run directories, and the control plane. On a joined
//! host (`weft host join`) the defaults come from its join: its block's bridge, the replica
//! it joined through, and its host credential.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::Context as _;
use weft_local::control_client::ControlClient;
use weft_local::joined::JoinedHost;
use weft_local::HostNet;

/// A single host's bridge.
const DEFAULT_BRIDGE_CIDR: &str = "10.213.0.1/16";
/// A single host's control plane's admin address.
const DEFAULT_CONTROL_ADMIN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4181));

#[derive(clap::Args, Clone)]
pub struct HostArgs {
    /// The control plane's admin address (registrations, hosts files, its CA bundle);
    /// replicas' addresses comma-separated, for registrations to fail over between them.
    /// Default: 127.0.0.1:4181, or on a joined host the replicas it joined with.
    #[arg(
        long,
        env = "WEFT_CONTROL_ADMIN",
        value_name = "ADDR[,ADDR...]",
        value_delimiter = ','
    )]
    pub control_admin: Option<Vec<SocketAddr>>,
    /// The control plane's gRPC address as proxies dial it; replicas' addresses
    /// comma-separated, or a name with several addresses, for proxies to fail over between
    /// them. Default: the bridge address, port 4180, or on a joined host the addresses it
    /// joined with.
    #[arg(long, env = "WEFT_CONTROL_GRPC", value_name = "ADDR[,ADDR...]", value_parser = parse_control)]
    pub control: Option<String>,
    /// The state directory: the control plane's `admin-token`, or a joined host's
    /// `host.json` and `host-credential`.
    #[arg(long, env = "WEFT_STATE_DIR", default_value = "/var/lib/weft")]
    pub state_dir: PathBuf,
    /// The bridge Weft manages for workload namespaces.
    #[arg(long, env = "WEFT_BRIDGE", default_value = "weft0")]
    pub bridge: String,
    /// The bridge's address and prefix; workloads get the next addresses of the subnet.
    /// Default: 10.213.0.1/16, or on a joined host (`weft host join`) its block's first
    /// address.
    #[arg(long, env = "WEFT_BRIDGE_CIDR", value_name = "CIDR")]
    pub bridge_cidr: Option<String>,
    /// Records of what runs created (for cleanup after a crash) and proxies' logs.
    #[arg(long, env = "WEFT_RUN_DIR", default_value = "/run/weft")]
    pub run_dir: PathBuf,
}

impl HostArgs {
    pub fn net(&self) -> anyhow::Result<HostNet> {
        match (&self.bridge_cidr, self.joined()?) {
            (Some(cidr), Some(host)) => anyhow::bail!(
                "this host joined the mesh as {} with block {}: its workloads' addresses come from that block, not --bridge-cidr {cidr}",
                host.name,
                host.block
            ),
            (Some(cidr), None) => HostNet::parse_gateway(&self.bridge, cidr),
            (None, Some(host)) => host.net(&self.bridge),
            (None, None) => HostNet::parse_gateway(&self.bridge, DEFAULT_BRIDGE_CIDR),
        }
        .map_err(anyhow::Error::msg)
    }

    /// This host as it joined a mesh of hosts (`<state-dir>/host.json`), if it did.
    pub fn joined(&self) -> anyhow::Result<Option<JoinedHost>> {
        JoinedHost::read(&self.state_dir).map_err(anyhow::Error::msg)
    }

    /// The admin addresses registrations go to, in order (never empty).
    pub fn control_admins(&self) -> anyhow::Result<Vec<SocketAddr>> {
        if let Some(addrs) = self.control_admin.as_ref().filter(|a| !a.is_empty()) {
            return Ok(addrs.clone());
        }
        let joined = self.joined()?.map(|h| h.admins()).unwrap_or_default();
        Ok(if joined.is_empty() {
            vec![DEFAULT_CONTROL_ADMIN]
        } else {
            joined
        })
    }

    /// The first of them: where `weft up` on a single host starts its control plane.
    pub fn control_admin(&self) -> anyhow::Result<SocketAddr> {
        let admins = self.control_admins()?;
        Ok(admins.first().copied().unwrap_or(DEFAULT_CONTROL_ADMIN))
    }

    /// The gRPC addresses proxies dial, for workloads on `net`.
    pub fn control_grpc(&self, net: &HostNet) -> anyhow::Result<String> {
        if let Some(list) = &self.control {
            return Ok(list.clone());
        }
        let joined = self.joined()?.and_then(|h| h.control_grpc);
        Ok(joined.unwrap_or_else(|| SocketAddr::new(net.gateway.into(), 4180).to_string()))
    }

    /// The client registrations go through: with a joined host's credential when it has one
    /// (it registers that host's workloads and nothing else), else with the admin token.
    pub fn control(&self) -> anyhow::Result<ControlClient> {
        let admins = self.control_admins()?;
        if self.joined()?.is_some() {
            if let Some(credential) =
                JoinedHost::credential(&self.state_dir).map_err(anyhow::Error::msg)?
            {
                return Ok(ControlClient::new(admins, credential));
            }
        }
        let path = self.state_dir.join(weft_control::state::ADMIN_TOKEN_FILE);
        let token = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading the control plane's admin token {} (is `weft control --state-dir {}` running on this host? `weft up` starts one; a joined host registers with the credential `weft host join` kept)",
                path.display(),
                self.state_dir.display()
            )
        })?;
        Ok(ControlClient::new(admins, token.trim().to_string()))
    }
}

/// `A,B,C`: each a `host:port` (an address, or a name resolved by the proxy).
pub fn parse_control(s: &str) -> Result<String, String> {
    for item in s.split(',') {
        let ok = item.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if !ok {
            return Err(format!("`{item}` is not a host:port"));
        }
    }
    Ok(s.to_string())
}
