//! A host joined to a mesh of hosts (`weft host join`): its name, workload block, address and
//! the control plane it joined, kept in `<state-dir>/host.json` so that `weft run`, `weft up`
//! and the host's tunnel use them without being told again; and its host credential, kept in
//! `<state-dir>/host-credential` (readable by its owner only), which registers the host's
//! workloads and nothing else.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::network::HostNet;

/// The file under the state directory.
pub const FILE: &str = "host.json";
/// The host credential's file under the state directory.
pub const CREDENTIAL_FILE: &str = "host-credential";

/// This host, as the control plane recorded its join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinedHost {
    pub name: String,
    /// Its workload block (`10.213.N.0/24`).
    pub block: String,
    /// Where other hosts reach its tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The control-plane replica it joined through: its workloads register there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_admin: Option<SocketAddr>,
    /// Every replica's admin address, the one joined through first: registrations fail over
    /// between them (`weft host join --control-admins`). Empty: only `control_admin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control_admins: Vec<SocketAddr>,
    /// The replicas' gRPC addresses its proxies dial (`A,B,C`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_grpc: Option<String>,
}

impl JoinedHost {
    /// The replicas its workloads register with, in order.
    pub fn admins(&self) -> Vec<SocketAddr> {
        if self.control_admins.is_empty() {
            self.control_admin.into_iter().collect()
        } else {
            self.control_admins.clone()
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE)
    }

    /// The joined host, `None` when this host has not joined; a file that is not one is an
    /// error (naming it), never a silent single-host mesh.
    pub fn read(state_dir: &Path) -> Result<Option<JoinedHost>, String> {
        let path = Self::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let host: JoinedHost = serde_json::from_str(&text)
            .map_err(|e| format!("{}: {e} (join again with `weft host join`)", path.display()))?;
        host.net("weft0")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(host))
    }

    /// Writes the file whole (a temporary file renamed over it).
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let path = Self::path(state_dir);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, &path)
    }

    /// Keeps the host credential, readable by its owner only (written whole, then renamed).
    pub fn write_credential(state_dir: &Path, credential: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join(CREDENTIAL_FILE);
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(format!("{}\n", credential.trim()).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// The host credential, `None` when the host joined before credentials existed (or the
    /// file was removed).
    pub fn credential(state_dir: &Path) -> Result<Option<String>, String> {
        let path = state_dir.join(CREDENTIAL_FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
            Ok(_) => Err(format!("{} is empty: join again", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// The bridge on this host's block: its first address is the gateway, and its workloads
    /// reach other hosts' tunnels through this host (forwarded and masqueraded).
    pub fn net(&self, bridge: &str) -> Result<HostNet, String> {
        let (ip, len) = self
            .block
            .split_once('/')
            .ok_or_else(|| format!("block `{}` is not a CIDR", self.block))?;
        let base: Ipv4Addr = ip
            .parse()
            .map_err(|e| format!("block `{}`: {e}", self.block))?;
        let gateway = Ipv4Addr::from(u32::from(base) | 1);
        let mut net = HostNet::parse_gateway(bridge, &format!("{gateway}/{len}"))?;
        net.uplink = true;
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_host_round_trips_and_gets_its_blocks_bridge() {
        let dir = std::env::temp_dir().join(format!("weft-joined-{}", std::process::id()));
        assert_eq!(JoinedHost::read(&dir), Ok(None));
        let host = JoinedHost {
            name: "h1".into(),
            block: "10.213.7.0/24".into(),
            address: Some("192.0.2.1".parse().expect("ip")),
            control_admin: Some("192.0.2.1:4181".parse().expect("addr")),
            control_admins: vec![
                "192.0.2.1:4181".parse().expect("addr"),
                "192.0.2.2:4181".parse().expect("addr"),
            ],
            control_grpc: Some("192.0.2.1:4180,192.0.2.2:4180".into()),
        };
        host.write(&dir).expect("write");
        assert_eq!(JoinedHost::read(&dir), Ok(Some(host.clone())));
        assert_eq!(
            host.admins(),
            host.control_admins,
            "every replica, in order"
        );
        let older = JoinedHost {
            control_admins: Vec::new(),
            ..host.clone()
        };
        assert_eq!(older.admins(), vec![host.control_admin.expect("set")]);
        let net = host.net("weft0").expect("net");
        assert_eq!(net.gateway, Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(net.prefix_len, 24);
        assert!(net.uplink);
        assert_eq!(net.address(0), Some(Ipv4Addr::new(10, 213, 7, 2)));
        std::fs::write(JoinedHost::path(&dir), "{\"name\": 1}").expect("write");
        let err = JoinedHost::read(&dir).expect_err("malformed");
        assert!(err.contains("host.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_credential_is_kept_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("weft-joined-cred-{}", std::process::id()));
        assert_eq!(JoinedHost::credential(&dir), Ok(None));
        JoinedHost::write_credential(&dir, "host.h1.abc\n").expect("write");
        assert_eq!(JoinedHost::credential(&dir), Ok(Some("host.h1.abc".into())));
        let mode = std::fs::metadata(dir.join(CREDENTIAL_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join(CREDENTIAL_FILE), "\n").expect("write");
        assert!(JoinedHost::credential(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
