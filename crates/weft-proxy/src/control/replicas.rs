//! Which control-plane replica to talk to.
//!
//! A proxy is given one or more addresses (`--control A,B,C`), each an `IP:port` or a
//! `name:port` that may resolve to several replicas (re-resolved at every connection, so a
//! DNS change is followed). It stays with the replica that answered last. When a stream to
//! it breaks, the next connection tries the others first and that one last, so a dead
//! replica costs one connection attempt, not a timeout per reconnect. A round in which no
//! replica answers ends in the caller's jittered backoff. Meanwhile the proxy serves on
//! what it holds (static stability): no request depends on which replica, if any, answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::channel::{self, Channel};

/// The replicas' addresses and which of them to prefer.
#[derive(Debug)]
pub struct Replicas {
    targets: Vec<String>,
    /// The replica that answered last, and the one whose stream broke last (tried last).
    /// Only the control tasks touch it, a few times per connection: never a request path.
    memory: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    preferred: Option<SocketAddr>,
    failed: Option<SocketAddr>,
}

impl Replicas {
    /// Checks each target is `host:port` (an IP address or a DNS name, and a port).
    pub fn new(targets: &[String]) -> Result<Arc<Replicas>, String> {
        if targets.is_empty() {
            return Err("no control plane address".into());
        }
        for target in targets {
            let port = target
                .rsplit_once(':')
                .and_then(|(host, port)| (!host.is_empty()).then_some(port))
                .and_then(|port| port.parse::<u16>().ok());
            if port.is_none() {
                return Err(format!(
                    "control plane address {target:?}: expected HOST:PORT"
                ));
            }
        }
        Ok(Arc::new(Replicas {
            targets: targets.to_vec(),
            memory: Mutex::new(Memory::default()),
        }))
    }

    /// The addresses as given, for messages.
    pub fn describe(&self) -> String {
        self.targets.join(",")
    }

    /// Connects to a replica: the preferred one first, the one that failed last, last.
    pub async fn connect(
        &self,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<(Channel, SocketAddr), String> {
        let order = self.order(self.resolve(timeout).await?);
        let mut errors = Vec::with_capacity(order.len());
        for addr in order {
            match channel::connect(addr, tls.clone(), timeout).await {
                Ok(channel) => {
                    self.remember(|m| {
                        m.preferred = Some(addr);
                        if m.failed == Some(addr) {
                            m.failed = None;
                        }
                    });
                    return Ok((channel, addr));
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "control plane replica unreachable");
                    errors.push(e.to_string());
                }
            }
        }
        Err(errors.join("; "))
    }

    /// The stream to `addr` broke: prefer any other replica next time.
    pub fn failed(&self, addr: SocketAddr) {
        self.remember(|m| {
            m.failed = Some(addr);
            if m.preferred == Some(addr) {
                m.preferred = None;
            }
        });
    }

    fn remember(&self, change: impl FnOnce(&mut Memory)) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut memory);
    }

    /// Every address of every target, in the order given, without repeats.
    async fn resolve(&self, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
        let mut addrs = Vec::new();
        let mut errors = Vec::new();
        for target in &self.targets {
            if let Ok(addr) = target.parse::<SocketAddr>() {
                addrs.push(addr);
                continue;
            }
            match tokio::time::timeout(timeout, tokio::net::lookup_host(target.as_str())).await {
                Ok(Ok(found)) => addrs.extend(found),
                Ok(Err(e)) => errors.push(format!("resolving {target}: {e}")),
                Err(_) => errors.push(format!("resolving {target}: timed out after {timeout:?}")),
            }
        }
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(*a));
        if addrs.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(addrs)
    }

    /// `addrs` with the preferred first and the last to fail at the end.
    fn order(&self, mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(failed) = memory.failed {
            if let Some(i) = addrs.iter().position(|a| *a == failed) {
                let a = addrs.remove(i);
                addrs.push(a);
            }
        }
        if let Some(preferred) = memory.preferred {
            if let Some(i) = addrs.iter().position(|a| *a == preferred) {
                let a = addrs.remove(i);
                addrs.insert(0, a);
            }
        }
        addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn targets_must_name_a_port() {
        assert!(Replicas::new(&[]).is_err());
        assert!(Replicas::new(&["10.0.0.1".into()]).is_err());
        assert!(Replicas::new(&[":4180".into()]).is_err());
        assert!(Replicas::new(&["control.weft:4180".into(), "10.0.0.2:4180".into()]).is_ok());
        assert!(Replicas::new(&["[::1]:4180".into()]).is_ok());
    }

    #[test]
    fn the_replica_that_failed_is_tried_last_and_the_one_that_answered_first() {
        let r = Replicas::new(&["10.0.0.1:1".into()]).unwrap();
        let all = vec![addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1")];
        assert_eq!(r.order(all.clone()), all);
        r.remember(|m| m.preferred = Some(addr("10.0.0.2:1")));
        assert_eq!(r.order(all.clone())[0], addr("10.0.0.2:1"));
        r.failed(addr("10.0.0.2:1"));
        let order = r.order(all.clone());
        assert_eq!(
            order,
            vec![addr("10.0.0.1:1"), addr("10.0.0.3:1"), addr("10.0.0.2:1")]
        );
    }

    #[tokio::test]
    async fn names_resolve_to_every_address_once() {
        let r = Replicas::new(&["localhost:4180".into(), "127.0.0.1:4180".into()]).unwrap();
        let addrs = r.resolve(Duration::from_secs(2)).await.unwrap();
        assert!(addrs.contains(&addr("127.0.0.1:4180")), "{addrs:?}");
        assert_eq!(
            addrs
                .iter()
                .filter(|a| **a == addr("127.0.0.1:4180"))
                .count(),
            1
        );
        let r = Replicas::new(&["no-such-host.invalid:4180".into()]).unwrap();
        assert!(r.resolve(Duration::from_secs(2)).await.is_err());
    }
}
