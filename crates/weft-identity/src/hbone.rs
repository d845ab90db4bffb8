//! How HBONE connections name the workload they are for, and how a host's tunnel reads that
//! name without terminating the TLS.
//!
//! A proxy dialling a workload on another host sends, as the TLS server name, the workload's
//! address in a DNS form ([`server_name`]: `10-213-1-5.hbone.weft`). The host's tunnel reads
//! the ClientHello with rustls's own parser ([`read_client_hello`]), splices the connection
//! to that workload's proxy, and replays the bytes it read: the handshake is between the two
//! proxies, and the tunnel never holds a workload's key.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The domain of tunnel server names.
const SUFFIX: &str = ".hbone.weft";

/// A ClientHello is at most one record of 16 KiB plus its header; a client that sends more
/// before its hello is complete is not a TLS client.
const MAX_HELLO: usize = 16 * 1024 + 5;

/// The server name that asks a host's tunnel for the workload at `ip`: a DNS name, since TLS
/// sends no IP addresses as names.
pub fn server_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}{SUFFIX}")
}

/// The workload a tunnel server name asks for, or `None` when it is not one.
pub fn parse_server_name(name: &str) -> Option<Ipv4Addr> {
    let dashed = name.strip_suffix(SUFFIX)?;
    let mut octets = [0u8; 4];
    let mut parts = dashed.split('-');
    for o in &mut octets {
        let part = parts.next()?;
        // Canonical decimal only: one name per address.
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *o = part.parse().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// Why a connection to a tunnel is not an HBONE client's.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("reading the ClientHello: {0}")]
    Io(#[from] std::io::Error),
    #[error("no complete ClientHello within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before its ClientHello was complete")]
    Closed,
    #[error("not a TLS ClientHello: {0}")]
    NotTls(String),
    #[error("the ClientHello is larger than a TLS record")]
    TooLarge,
    #[error("the ClientHello names no server")]
    NoServerName,
    #[error("server name `{0}` does not name a workload (`a-b-c-d.hbone.weft`)")]
    NotHbone(String),
}

/// Reads a ClientHello from `io` within `wait`: the workload it asks for, and every byte
/// read (to be replayed to that workload's proxy).
pub async fn read_client_hello<I: AsyncRead + Unpin>(
    io: &mut I,
    wait: Duration,
) -> Result<(Ipv4Addr, Vec<u8>), HelloError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = Vec::with_capacity(1024);
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buf = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Err(_) => return Err(HelloError::Timeout(wait)),
            Ok(Ok(0)) => return Err(HelloError::Closed),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
        };
        if seen.len() + n > MAX_HELLO {
            return Err(HelloError::TooLarge);
        }
        seen.extend_from_slice(&buf[..n]);
        let mut fresh = &buf[..n];
        while !fresh.is_empty() {
            acceptor.read_tls(&mut fresh)?;
        }
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let name = hello.server_name().ok_or(HelloError::NoServerName)?;
                let ip =
                    parse_server_name(name).ok_or_else(|| HelloError::NotHbone(name.into()))?;
                return Ok((ip, seen));
            }
            Err((e, _alert)) => return Err(HelloError::NotTls(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_round_trip_and_refuse_anything_else() {
        let ip = Ipv4Addr::new(10, 213, 1, 5);
        assert_eq!(server_name(ip), "10-213-1-5.hbone.weft");
        assert_eq!(parse_server_name(&server_name(ip)), Some(ip));
        for bad in [
            "10-213-1-5.hbone.weft.evil",
            "10-213-1.hbone.weft",
            "10-213-1-5-6.hbone.weft",
            "10-213-01-5.hbone.weft",
            "10-213-1-256.hbone.weft",
            "-213-1-5.hbone.weft",
            "weft.mesh",
            "",
        ] {
            assert_eq!(parse_server_name(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn garbage_is_refused_and_a_silent_client_times_out() {
        let mut http = &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..];
        let e = read_client_hello(&mut http, Duration::from_secs(1)).await;
        assert!(matches!(e, Err(HelloError::NotTls(_))), "{e:?}");
        let (mut silent, _keep) = tokio::io::duplex(64);
        let e = read_client_hello(&mut silent, Duration::from_millis(50)).await;
        assert!(matches!(e, Err(HelloError::Timeout(_))), "{e:?}");
        let mut cut = &[0x16u8, 3, 1, 0, 200, 1][..];
        let e = read_client_hello(&mut cut, Duration::from_secs(1)).await;
        assert!(matches!(e, Err(HelloError::Closed)), "{e:?}");
    }
}
