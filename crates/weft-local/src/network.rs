//! The host side of local workloads: one bridge Weft manages, and per workload a network
//! namespace joined to it by a veth pair.
//!
//! ```text
//!  host: bridge weft0 10.213.0.1/16 ── veth wv<hash> ══ eth0 10.213.0.N/16 :netns weft-<name>
//! ```
//!
//! The namespace's default route goes to the bridge, so its proxy reaches the control plane
//! (on the bridge address) and peer workloads (on the same bridge). On a single host nothing
//! is routed off the host: Weft turns on no forwarding and no masquerading. On hosts whose
//! FORWARD chain drops (Docker sets that, and bridged packets traverse it when br_netfilter
//! is loaded), one rule lets the bridge's own traffic pass; it is removed with the bridge.
//!
//! A host joined to a mesh of hosts has an uplink ([`HostNet::uplink`]): its workloads'
//! proxies reach the control plane's replicas and other hosts' tunnels through it, so
//! forwarding is on and what leaves the bridge for elsewhere is masqueraded as the host
//! (Docker's and the CNI bridge plugin's way). Nothing comes in that way: other hosts reach
//! this host's workloads through its tunnel only.

use std::net::Ipv4Addr;

use crate::command::{run, ToolError};

/// The host network Weft manages for local workloads.
#[derive(Clone, Debug)]
pub struct HostNet {
    pub bridge: String,
    /// The bridge's address: the namespaces' gateway, where the control plane listens.
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
    /// A joined host's bridge: its workloads reach other hosts (forwarded, masqueraded).
    pub uplink: bool,
}

impl Default for HostNet {
    fn default() -> Self {
        Self {
            bridge: "weft0".into(),
            gateway: Ipv4Addr::new(10, 213, 0, 1),
            prefix_len: 16,
            uplink: false,
        }
    }
}

impl HostNet {
    /// Parses `10.213.0.1/16` (the bridge's address and the subnet's length).
    pub fn parse_gateway(bridge: &str, cidr: &str) -> Result<Self, String> {
        let (ip, len) = cidr.split_once('/').ok_or_else(|| {
            format!("`{cidr}`: give the bridge address with a prefix, e.g. 10.213.0.1/16")
        })?;
        let gateway: Ipv4Addr = ip.parse().map_err(|e| format!("`{ip}`: {e}"))?;
        let prefix_len: u8 = len.parse().map_err(|e| format!("`{len}`: {e}"))?;
        if !(8..=28).contains(&prefix_len) {
            return Err(format!("/{prefix_len}: use a prefix between /8 and /28"));
        }
        if bridge.is_empty()
            || bridge.len() > 15
            || !bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "`{bridge}` is not an interface name (at most 15 letters, digits, '-', '_')"
            ));
        }
        Ok(Self {
            bridge: bridge.into(),
            gateway,
            prefix_len,
            uplink: false,
        })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix_len))
    }

    /// Whether `ip` is in the bridge's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.gateway) & self.mask()
    }

    /// The `index`th workload address of the subnet (index 0 is the first after the
    /// gateway), or `None` past the end.
    pub fn address(&self, index: u32) -> Option<Ipv4Addr> {
        let base = u32::from(self.gateway) & self.mask();
        let size = !self.mask();
        let gw_offset = u32::from(self.gateway) - base;
        // Offsets 1..size-1 (not the network or broadcast address), skipping the gateway's.
        let mut offset = index.checked_add(1)?;
        if offset >= gw_offset {
            offset = offset.checked_add(1)?;
        }
        (offset < size).then(|| Ipv4Addr::from(base + offset))
    }

    /// The namespace Weft makes for a workload.
    pub fn netns_name(workload: &str) -> String {
        format!("weft-{workload}")
    }

    /// The host end of a workload's veth pair. Interface names are at most 15 bytes, so the
    /// workload's address (unique among live workloads: it is allocated under the records'
    /// lock) names it, not its name.
    pub fn host_veth(address: Ipv4Addr) -> String {
        format!("wv{:08x}", u32::from(address))
    }
}

fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name], None).is_ok()
}

/// The alias Weft gives the bridge it creates: a link without it is not Weft's to adopt or
/// delete (a `--bridge br0` must never take over, or remove, the host's own bridge).
const BRIDGE_ALIAS: &str = "weft-managed-bridge";

fn is_weft_bridge(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifalias"))
        .is_ok_and(|a| a.trim() == BRIDGE_ALIAS)
}

/// The iptables rules the bridge needs, as (table, chain, rule): the bridge's own traffic
/// passes a dropping FORWARD chain; with an uplink, what leaves for other hosts passes too
/// (and its answers), masqueraded as the host.
fn rules(net: &HostNet) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let own = |args: &[&str]| -> Vec<String> {
        let mut rule: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        rule.extend(["-m", "comment", "--comment", "weft"].map(String::from));
        rule
    };
    let b = net.bridge.as_str();
    let mut all = vec![(
        "filter",
        "FORWARD",
        own(&["-i", b, "-o", b, "-j", "ACCEPT"]),
    )];
    if net.uplink {
        let subnet = format!(
            "{}/{}",
            Ipv4Addr::from(u32::from(net.gateway) & net.mask()),
            net.prefix_len
        );
        all.push((
            "filter",
            "FORWARD",
            own(&["-i", b, "!", "-o", b, "-j", "ACCEPT"]),
        ));
        all.push((
            "filter",
            "FORWARD",
            own(&[
                "-o",
                b,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ]),
        ));
        all.push((
            "nat",
            "POSTROUTING",
            own(&["-s", &subnet, "!", "-o", b, "-j", "MASQUERADE"]),
        ));
    }
    all
}

fn iptables(table: &str, op: &str, chain: &str, rule: &[String]) -> Result<String, ToolError> {
    // -w: wait for the xtables lock instead of failing when Docker or another run holds it.
    let mut args = vec!["-w", "-t", table, op, chain];
    args.extend(rule.iter().map(String::as_str));
    run("iptables", &args, None)
}

/// Creates the bridge (and its rules) unless it exists.
pub fn ensure_bridge(net: &HostNet) -> Result<(), ToolError> {
    let cidr = format!("{}/{}", net.gateway, net.prefix_len);
    if !link_exists(&net.bridge) {
        run("ip", &["link", "add", &net.bridge, "type", "bridge"], None)?;
        let made = run(
            "ip",
            &["link", "set", "dev", &net.bridge, "alias", BRIDGE_ALIAS],
            None,
        );
        if let Err(e) = made {
            let _ = run("ip", &["link", "del", &net.bridge], None);
            return Err(e);
        }
    } else if !is_weft_bridge(&net.bridge) {
        return Err(ToolError::Failed {
            command: format!("ip link show {}", net.bridge),
            status: "exists".into(),
            stderr: format!(
                "interface {} exists and is not a bridge Weft made; pick another --bridge",
                net.bridge
            ),
        });
    }
    // `replace` is idempotent: a bridge left half set up by a crash gets its address back.
    run("ip", &["addr", "replace", &cidr, "dev", &net.bridge], None)?;
    run("ip", &["link", "set", &net.bridge, "up"], None)?;
    if net.uplink {
        // Per network namespace; left on when the bridge goes (other things may need it).
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| ToolError::Failed {
            command: "write /proc/sys/net/ipv4/ip_forward".into(),
            status: "failed".into(),
            stderr: e.to_string(),
        })?;
    }
    for (table, chain, rule) in rules(net) {
        if iptables(table, "-C", chain, &rule).is_err() {
            iptables(table, "-I", chain, &rule)?;
        }
    }
    Ok(())
}

/// Removes the bridge and its rules (when they exist).
pub fn remove_bridge(net: &HostNet) {
    if link_exists(&net.bridge) && is_weft_bridge(&net.bridge) {
        if let Err(e) = run("ip", &["link", "del", &net.bridge], None) {
            tracing::warn!(error = %e, "cannot remove the bridge");
        }
    }
    // With or without an uplink now: a joined host's rules go even if it left.
    let uplinked = HostNet {
        uplink: true,
        ..net.clone()
    };
    for (table, chain, rule) in rules(&uplinked) {
        while iptables(table, "-C", chain, &rule).is_ok() {
            if iptables(table, "-D", chain, &rule).is_err() {
                break;
            }
        }
    }
}

/// Creates the workload's namespace and veth pair, addresses it and routes it to the bridge.
pub fn create_namespace(net: &HostNet, workload: &str, address: Ipv4Addr) -> Result<(), ToolError> {
    let ns = HostNet::netns_name(workload);
    let veth = HostNet::host_veth(address);
    let cidr = format!("{address}/{}", net.prefix_len);
    let gateway = net.gateway.to_string();
    run("ip", &["netns", "add", &ns], None)?;
    run(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
        None,
    )?;
    run(
        "ip",
        &["link", "set", &veth, "master", &net.bridge, "up"],
        None,
    )?;
    run(
        "ip",
        &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"],
        None,
    )?;
    run("ip", &["-n", &ns, "link", "set", "eth0", "up"], None)?;
    run("ip", &["-n", &ns, "link", "set", "lo", "up"], None)?;
    run(
        "ip",
        &["-n", &ns, "route", "add", "default", "via", &gateway],
        None,
    )?;
    Ok(())
}

/// Deletes what [`create_namespace`] made, whatever part of it exists: the processes still
/// inside, the namespace (its end of the veth goes with it), the host end, the hosts file.
pub fn delete_namespace(workload: &str, address: Ipv4Addr) {
    let ns = HostNet::netns_name(workload);
    if namespace_exists(&ns) {
        if let Ok(pids) = run("ip", &["netns", "pids", &ns], None) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) with a pid read from `ip netns pids`; no memory involved.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Err(e) = run("ip", &["netns", "del", &ns], None) {
            tracing::warn!(error = %e, "cannot delete the network namespace");
        }
    }
    let veth = HostNet::host_veth(address);
    if link_exists(&veth) {
        let _ = run("ip", &["link", "del", &veth], None);
    }
    crate::hosts::remove(&ns);
}

pub fn namespace_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_the_gateway_and_stop_at_the_subnet_end() {
        let net = HostNet::default();
        assert_eq!(net.address(0), Some(Ipv4Addr::new(10, 213, 0, 2)));
        assert_eq!(net.address(253), Some(Ipv4Addr::new(10, 213, 0, 255)));
        assert_eq!(net.address(254), Some(Ipv4Addr::new(10, 213, 1, 0)));
        assert_eq!(net.address(65_532), Some(Ipv4Addr::new(10, 213, 255, 254)));
        assert_eq!(net.address(65_533), None, "no broadcast address");
        let small = HostNet::parse_gateway("br", "192.168.7.9/28").expect("valid");
        assert_eq!(small.address(0), Some(Ipv4Addr::new(192, 168, 7, 1)));
        assert_eq!(small.address(7), Some(Ipv4Addr::new(192, 168, 7, 8)));
        assert_eq!(
            small.address(8),
            Some(Ipv4Addr::new(192, 168, 7, 10)),
            "skips .9"
        );
        assert_eq!(small.address(13), None);
    }

    #[test]
    fn names_fit_interface_limits() {
        // Named by address, unique among live workloads, and within the 15-byte limit.
        let veth = HostNet::host_veth(Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(veth, "wv0ad50002");
        assert_ne!(veth, HostNet::host_veth(Ipv4Addr::new(10, 213, 1, 2)));
        assert!(HostNet::parse_gateway("weft0", "10.0.0.1").is_err());
        assert!(HostNet::parse_gateway("a-name-far-too-long", "10.0.0.1/16").is_err());
    }
}
