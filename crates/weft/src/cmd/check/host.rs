//! Host checks: what transparent capture needs (`weft run`, `weft up`).

use super::Outcome;

pub fn checks(out: &mut Vec<Outcome>) {
    let privileged = weft_local::privileges::check();
    out.push(match &privileged {
        Ok(()) => Outcome::ok("privileges", "CAP_NET_ADMIN and CAP_SYS_ADMIN (capture can be set up)"),
        Err(e) => Outcome::fail(
            "privileges",
            format!("this process lacks {}", e.missing),
            "run `sudo weft check`, `sudo weft up`/`weft run`; without root use the proxy's explicit mode (--skip-host skips these checks)",
        ),
    });
    let missing: Vec<&str> = ["ip", "iptables"]
        .into_iter()
        .filter(|tool| weft_local::runner::find_program(tool).is_none())
        .collect();
    out.push(if missing.is_empty() {
        Outcome::ok("tools", "ip and iptables found")
    } else {
        Outcome::fail(
            "tools",
            format!("not found: {}", missing.join(", ")),
            "apt-get install -y iproute2 iptables",
        )
    });
    out.push(if std::path::Path::new("/proc/self/ns/net").exists() {
        Outcome::ok("network namespaces", "supported by the kernel")
    } else {
        Outcome::fail(
            "network namespaces",
            "/proc/self/ns/net is missing",
            "use a kernel with CONFIG_NET_NS (every distribution kernel has it); in a container, run it privileged",
        )
    });
    if privileged.is_ok() && missing.is_empty() {
        out.push(
            match weft_local::command::run("iptables", &["-t", "nat", "-S", "OUTPUT"], None) {
                Ok(_) => Outcome::ok("iptables nat", "the nat table is usable (REDIRECT capture)"),
                Err(e) => Outcome::fail(
                    "iptables nat",
                    format!("cannot read the nat table: {e}"),
                    "load the modules (modprobe iptable_nat, or nf_tables with iptables-nft) or install iptables",
                ),
            },
        );
    }
}
