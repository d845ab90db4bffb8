//! The tunnel's one plaintext request: `GET /metrics/<workload address>`, the control plane's
//! scrape of a workload's proxy on this host. Workload blocks are not routed between hosts,
//! so a replica on another host reaches a proxy's `/metrics` (open on the proxy's admin port
//! to anyone who can route there) only through the host's one open port. Nothing else is
//! relayed: only that path, only to addresses of this host's block, only the proxy's
//! `/metrics`, bounded in time and size.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a metrics request starts with (a ClientHello starts with 0x16).
pub const PREFIX: &[u8] = b"GET /metrics/";
/// The longest request head read.
const MAX_HEAD: usize = 1024;
/// How long the whole relay may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest answer relayed.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Whether the connection starts with a metrics request rather than a ClientHello: decided
/// on the first bytes, waiting (bounded by `within`) only while they could still be one.
pub async fn is_metrics_request(stream: &TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; PREFIX.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false,
        };
        if !PREFIX.starts_with(&buf[..n]) {
            return false;
        }
        if n == PREFIX.len() {
            return true;
        }
        // Part of the prefix so far: wait for the rest.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The workload address a request head asks for, or why it is not a metrics request.
pub fn requested(head: &[u8]) -> Result<Ipv4Addr, String> {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .ok_or("a request line that is not text")?
        .trim_end();
    let mut parts = line.split(' ');
    let (Some("GET"), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a metrics request: {line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not HTTP/1: {line:?}"));
    }
    target
        .strip_prefix("/metrics/")
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| format!("not /metrics/<IPv4 address>: {target:?}"))
}

/// Serves one metrics request: reads its head, checks the address with `serves`, asks the
/// proxy at `admin_port` for `/metrics`, and relays its answer. The proxy's address.
pub async fn relay(
    stream: &mut TcpStream,
    admin_port: u16,
    serves: impl Fn(Ipv4Addr) -> bool,
) -> Result<SocketAddr, String> {
    let work = async {
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return Err(format!("a request head longer than {MAX_HEAD} bytes"));
            }
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return Err("the request ended before its head did".to_string()),
            }
        }
        let ip = requested(&head)?;
        if !serves(ip) {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return Err(format!("{ip} is not a workload address of this host"));
        }
        let target = SocketAddr::new(ip.into(), admin_port);
        let mut upstream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("connecting to {target}: {e}"))?;
        let ask = format!("GET /metrics HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        upstream
            .write_all(ask.as_bytes())
            .await
            .map_err(|e| format!("writing to {target}: {e}"))?;
        let mut answer = (&mut upstream).take(MAX_ANSWER);
        tokio::io::copy(&mut answer, stream)
            .await
            .map_err(|e| format!("relaying {target}'s answer: {e}"))?;
        let _ = stream.shutdown().await;
        Ok(target)
    };
    tokio::time::timeout(RELAY_TIMEOUT, work)
        .await
        .map_err(|_| format!("not done within {RELAY_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metrics_of_an_address_are_asked_for() {
        assert_eq!(
            requested(b"GET /metrics/10.213.2.5 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(Ipv4Addr::new(10, 213, 2, 5))
        );
        for bad in [
            &b"GET /metrics/10.213.2.5/../admin HTTP/1.1\r\n\r\n"[..],
            b"GET /metrics/host-2 HTTP/1.1\r\n\r\n",
            b"POST /metrics/10.213.2.5 HTTP/1.1\r\n\r\n",
            b"GET /metrics/10.213.2.5 HTTP/2\r\n\r\n",
            b"GET /metrics/10.213.2.5 HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                requested(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
