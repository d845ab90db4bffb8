//! The capture rules inside a workload's namespace (iptables NAT, the way Istio's
//! sidecar init does it):
//!
//! - inbound: every TCP connection arriving for the workload goes to the proxy's inbound
//!   port, except connections to the proxy's own ports (peers dial the inbound port itself;
//!   the admin port is for the host) and the ports the user excludes;
//! - outbound: every TCP connection the workload makes goes to the proxy's outbound port,
//!   except on loopback, from the proxy itself (its uid), and to excluded ports and CIDRs.
//!
//! The rules are loaded with one `iptables-restore`, so the namespace never has half of them.

use crate::command::{run, ToolError};

#[derive(Clone, Debug)]
pub struct CaptureSpec {
    pub outbound_port: u16,
    pub inbound_port: u16,
    pub admin_port: u16,
    /// The uid the proxy runs as: its own connections are never captured.
    pub proxy_uid: u32,
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
    pub exclude_outbound_cidrs: Vec<String>,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        Self {
            outbound_port: 4140,
            inbound_port: 4143,
            admin_port: 4191,
            proxy_uid: 1337,
            exclude_inbound_ports: Vec::new(),
            exclude_outbound_ports: Vec::new(),
            exclude_outbound_cidrs: Vec::new(),
        }
    }
}

/// The nat table as `iptables-restore` reads it.
pub fn rules(spec: &CaptureSpec) -> String {
    let mut out = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:WEFT_INBOUND - [0:0]\n:WEFT_OUTBOUND - [0:0]\n",
    );
    out.push_str("-A PREROUTING -p tcp -j WEFT_INBOUND\n");
    let mut inbound_exempt = vec![spec.inbound_port, spec.admin_port];
    inbound_exempt.extend(&spec.exclude_inbound_ports);
    for port in inbound_exempt {
        out.push_str(&format!(
            "-A WEFT_INBOUND -p tcp --dport {port} -j RETURN\n"
        ));
    }
    out.push_str(&format!(
        "-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports {}\n",
        spec.inbound_port
    ));
    out.push_str("-A OUTPUT -p tcp -j WEFT_OUTBOUND\n");
    out.push_str("-A WEFT_OUTBOUND -o lo -j RETURN\n");
    out.push_str(&format!(
        "-A WEFT_OUTBOUND -m owner --uid-owner {} -j RETURN\n",
        spec.proxy_uid
    ));
    for cidr in &spec.exclude_outbound_cidrs {
        out.push_str(&format!("-A WEFT_OUTBOUND -d {cidr} -j RETURN\n"));
    }
    for port in &spec.exclude_outbound_ports {
        out.push_str(&format!(
            "-A WEFT_OUTBOUND -p tcp --dport {port} -j RETURN\n"
        ));
    }
    out.push_str(&format!(
        "-A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports {}\nCOMMIT\n",
        spec.outbound_port
    ));
    out
}

/// Loads the rules into namespace `ns`.
pub fn install(ns: &str, spec: &CaptureSpec) -> Result<(), ToolError> {
    run(
        "ip",
        &["netns", "exec", ns, "iptables-restore"],
        Some(&rules(spec)),
    )?;
    Ok(())
}

/// Checks a CIDR the user wants excluded, before it reaches iptables.
pub fn parse_cidr(text: &str) -> Result<String, String> {
    let (ip, len) = text.split_once('/').unwrap_or((text, "32"));
    let _: std::net::Ipv4Addr = ip.parse().map_err(|e| format!("`{text}`: {e}"))?;
    match len.parse::<u8>() {
        Ok(l) if l <= 32 => Ok(format!("{ip}/{l}")),
        _ => Err(format!("`{text}`: the prefix length must be 0 to 32")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_loopback_and_exclusions_are_exempt_before_the_redirects() {
        let spec = CaptureSpec {
            exclude_inbound_ports: vec![22],
            exclude_outbound_ports: vec![5432],
            exclude_outbound_cidrs: vec!["10.0.0.0/8".into()],
            ..CaptureSpec::default()
        };
        let text = rules(&spec);
        let lines: Vec<&str> = text.lines().collect();
        let pos = |needle: &str| {
            lines
                .iter()
                .position(|l| *l == needle)
                .unwrap_or_else(|| panic!("missing `{needle}` in\n{text}"))
        };
        let redirect_in = pos("-A WEFT_INBOUND -p tcp -j REDIRECT --to-ports 4143");
        for exempt in [
            "-A WEFT_INBOUND -p tcp --dport 4143 -j RETURN",
            "-A WEFT_INBOUND -p tcp --dport 4191 -j RETURN",
            "-A WEFT_INBOUND -p tcp --dport 22 -j RETURN",
        ] {
            assert!(pos(exempt) < redirect_in, "{exempt}");
        }
        let redirect_out = pos("-A WEFT_OUTBOUND -p tcp -j REDIRECT --to-ports 4140");
        for exempt in [
            "-A WEFT_OUTBOUND -o lo -j RETURN",
            "-A WEFT_OUTBOUND -m owner --uid-owner 1337 -j RETURN",
            "-A WEFT_OUTBOUND -d 10.0.0.0/8 -j RETURN",
            "-A WEFT_OUTBOUND -p tcp --dport 5432 -j RETURN",
        ] {
            assert!(pos(exempt) < redirect_out, "{exempt}");
        }
        assert_eq!(lines.last(), Some(&"COMMIT"));
    }

    #[test]
    fn cidrs_are_checked() {
        assert_eq!(parse_cidr("10.1.2.3").as_deref(), Ok("10.1.2.3/32"));
        assert_eq!(parse_cidr("10.0.0.0/8").as_deref(), Ok("10.0.0.0/8"));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("-j ACCEPT").is_err());
    }
}
