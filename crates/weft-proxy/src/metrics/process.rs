//! The process's own resources, in the standard names every Prometheus client library uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), so dashboards made for
//! any exporter show the proxy's cost. Read from `/proc/self` at each scrape; nothing is kept.

use std::fmt::Write as _;

/// Appends the process families, in OpenMetrics text, to `out` (before its `# EOF`).
pub fn encode(out: &mut String) {
    let eof = out.rfind("# EOF");
    let mut text = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), counted from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        if ticks > 0.0 {
            family(
                &mut text,
                "process_cpu_seconds",
                "counter",
                Some("seconds"),
                "Total user and system CPU time spent in seconds.",
                (utime + stime) / ticks,
            );
        }
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let mut statm = statm
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok());
    if let (Some(size), Some(resident)) = (statm.next(), statm.next()) {
        family(
            &mut text,
            "process_virtual_memory_bytes",
            "gauge",
            Some("bytes"),
            "Virtual memory size in bytes.",
            size * page,
        );
        family(
            &mut text,
            "process_resident_memory_bytes",
            "gauge",
            Some("bytes"),
            "Resident memory size in bytes.",
            resident * page,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        family(
            &mut text,
            "process_open_fds",
            "gauge",
            None,
            "Number of open file descriptors.",
            dir.count() as f64,
        );
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        family(
            &mut text,
            "process_max_fds",
            "gauge",
            None,
            "Maximum number of open file descriptors.",
            limit.rlim_cur as f64,
        );
    }
    if let Some(threads) = field(20) {
        family(
            &mut text,
            "process_threads",
            "gauge",
            None,
            "Number of OS threads in the process.",
            threads,
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time()) {
        if ticks > 0.0 {
            family(
                &mut text,
                "process_start_time_seconds",
                "gauge",
                Some("seconds"),
                "Start time of the process since unix epoch in seconds.",
                boot + start / ticks,
            );
        }
    }
    match eof {
        Some(i) => out.insert_str(i, &text),
        None => out.push_str(&text),
    }
}

fn family(out: &mut String, name: &str, kind: &str, unit: Option<&str>, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    if let Some(u) = unit {
        let _ = writeln!(out, "# UNIT {name} {u}");
    }
    let sample = if kind == "counter" {
        format!("{name}_total")
    } else {
        name.to_string()
    };
    let _ = writeln!(out, "{sample} {value}");
}

/// When the machine booted (Unix seconds), from `/proc/stat`'s `btime`.
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn families_come_before_eof_with_values() {
        let mut out = String::from("# EOF\n");
        super::encode(&mut out);
        assert!(out.ends_with("# EOF\n"), "{out}");
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            let line = out
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {out}"));
            let v: f64 = line[name.len()..].parse().expect("a number");
            assert!(v > 0.0 || name.starts_with("process_cpu"), "{line}");
        }
    }
}
