//! Injecting the faults from outside the workloads' network namespaces: signals, the echo
//! servers' chaos files, links, `tc netem` where the kernel has it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// `ip netns exec <ns> <args…>`, its standard output.
pub fn in_ns(ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .with_context(|| format!("ip netns exec {ns} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ip netns exec {ns} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The network namespaces of a workload's replicas (`weft-backend-0`, …), in name order.
pub fn namespaces(prefix: &str) -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("ip netns list")?;
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// A namespace's IPv4 address on its link to the bridge.
pub fn address(ns: &str) -> Result<String> {
    let text = in_ns(ns, &["ip", "-4", "-o", "addr", "show"])?;
    text.lines()
        .filter(|l| !l.contains(" lo "))
        .find_map(|l| {
            let inet = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            inet.split('/').next().map(str::to_string)
        })
        .with_context(|| format!("no address in {ns}"))
}

/// The namespace's link to the bridge.
pub fn link(ns: &str) -> Result<String> {
    let text = in_ns(ns, &["ip", "-o", "link", "show"])?;
    text.lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .find(|n| n != "lo")
        .with_context(|| format!("no link in {ns}"))
}

/// Makes the namespace's proxy look dead to its peers: every packet to its inbound port is
/// answered with a reset, as a port whose process died is. (Killing the processes would end
/// the workload: `weft up`, its supervisor, deregisters it at once, and peers would never try
/// it again; a crash the supervisor has not noticed yet is the harder case.)
pub fn refuse(ns: &str) -> Result<()> {
    in_ns(
        ns,
        &[
            "iptables",
            "-I",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "4143",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ],
    )
    .map(|_| ())
}

/// Tells an echo server (by its pod name) to misbehave: `{"failPercent": 50}`,
/// `{"delayMs": 500}`. It reads the file within a fifth of a second.
pub fn chaos_file(dir: &Path, pod: &str, json: &str) -> Result<()> {
    let tmp = dir.join(format!("{pod}.json.tmp"));
    std::fs::write(&tmp, json).context("chaos file")?;
    std::fs::rename(&tmp, dir.join(format!("{pod}.json"))).context("chaos file")
}

/// Delays every packet leaving the namespace by `ms` with `tc netem`; false when the kernel
/// has no netem (then the caller slows the application instead).
pub fn netem_delay(ns: &str, ms: u32) -> bool {
    let Ok(dev) = link(ns) else { return false };
    in_ns(
        ns,
        &[
            "tc",
            "qdisc",
            "add",
            "dev",
            &dev,
            "root",
            "netem",
            "delay",
            &format!("{ms}ms"),
        ],
    )
    .is_ok()
}

/// Takes the namespace's link down: packets to and from it are lost.
pub fn cut(ns: &str) -> Result<()> {
    let dev = link(ns)?;
    in_ns(ns, &["ip", "link", "set", "dev", &dev, "down"]).map(|_| ())
}
