//! Whether this process may build network namespaces and capture rules, and what to do when
//! it may not.

/// Capability bits (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

#[derive(Debug, thiserror::Error)]
#[error("weft run needs CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces, links and capture rules, and this process lacks {missing}.\n  Run it as root (e.g. `sudo weft run ...`).\n  Without root, use the proxy's explicit mode instead: run `weft proxy --control ADDR ...` beside the application and point the application at it (`http_proxy=http://127.0.0.1:4140`); nothing is captured then.")]
pub struct MissingPrivileges {
    pub missing: String,
}

/// Checks the effective capabilities of this process.
pub fn check() -> Result<(), MissingPrivileges> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    check_mask(effective)
}

fn check_mask(effective: u64) -> Result<(), MissingPrivileges> {
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1u64 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingPrivileges {
            missing: missing.join(" and "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing_and_what_to_do() {
        assert!(check_mask(u64::MAX).is_ok());
        let e = check_mask(1 << CAP_SYS_ADMIN).expect_err("no NET_ADMIN");
        assert_eq!(e.missing, "CAP_NET_ADMIN");
        let text = check_mask(0).expect_err("nothing").to_string();
        assert!(text.contains("CAP_NET_ADMIN and CAP_SYS_ADMIN"), "{text}");
        assert!(text.contains("http_proxy=http://127.0.0.1:4140"), "{text}");
    }
}
