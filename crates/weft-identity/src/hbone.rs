//! How HBONE connections name the workload they are for, and how a host's tunnel reads that
//! name without terminating the TLS.
//!
//! A proxy dialling a workload on another host sends, as the TLS server name, the workload's
//! address in a DNS form ([`server_name`]: `10-213-1-5.hbone.weft`). The host's tunnel reads
//! the ClientHello with rustls's own parser ([`read_client_hello`]), splices the connection
//! to that workload's proxy, and replays the bytes it read: the handshake is between the two
//! proxies, and the tunnel never holds a workload's key.
//!
//! The control plane reaches a proxy's admin port the same way, naming it
//! [`admin_server_name`] (`10-213-1-5.admin.weft`): the admin port speaks mutual TLS too, so
//! its `/metrics`, `/config` and `/tap` cross hosts encrypted, between the control plane's
//! certificate and the proxy's, through the one port each host opens.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The domain of tunnel server names for a workload's inbound (HBONE) port.
const SUFFIX: &str = ".hbone.weft";
/// The domain of tunnel server names for a workload proxy's admin port.
const ADMIN_SUFFIX: &str = ".admin.weft";

/// Which of a workload's proxy's ports a tunnel server name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The inbound port, where HBONE connections from other proxies arrive.
    Inbound,
    /// The admin port (mutual TLS): the control plane's reads of a proxy on another host.
    Admin,
}

/// What a tunnel server name asks for: a workload's address, and which port of its proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub port: Port,
}

/// A ClientHello is at most one record of 16 KiB plus its header; a client that sends more
/// before its hello is complete is not a TLS client.
const MAX_HELLO: usize = 16 * 1024 + 5;

/// The server name that asks a host's tunnel for the workload at `ip`: a DNS name, since TLS
/// sends no IP addresses as names.
pub fn server_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}{SUFFIX}")
}

/// The server name that asks a host's tunnel for the admin port of the proxy at `ip`.
pub fn admin_server_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}{ADMIN_SUFFIX}")
}

/// The workload a tunnel server name asks for, or `None` when it is not one.
pub fn parse_server_name(name: &str) -> Option<Ipv4Addr> {
    dashed_address(name.strip_suffix(SUFFIX)?)
}

/// What a tunnel server name asks for, either kind; `None` when it is neither.
pub fn parse_target(name: &str) -> Option<Target> {
    if let Some(ip) = parse_server_name(name) {
        return Some(Target {
            ip,
            port: Port::Inbound,
        });
    }
    let ip = dashed_address(name.strip_suffix(ADMIN_SUFFIX)?)?;
    Some(Target {
        ip,
        port: Port::Admin,
    })
}

/// `10-213-1-5` as an address: canonical decimal only, so one name per address.
fn dashed_address(dashed: &str) -> Option<Ipv4Addr> {
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
    #[error(
        "server name `{0}` does not name a workload (`a-b-c-d.hbone.weft` or `a-b-c-d.admin.weft`)"
    )]
    NotHbone(String),
}

/// A ClientHello read as it arrives: fed bytes until it names a workload or fails. The
/// part of [`read_client_hello`] that sees the bytes (and what the fuzz target drives).
#[derive(Default)]
pub struct HelloReader {
    acceptor: rustls::server::Acceptor,
    seen: Vec<u8>,
    done: bool,
}

impl HelloReader {
    /// Takes the next bytes that arrived: the target once the hello is complete and names
    /// one, `None` while more bytes are needed. After an answer or an error it takes no more.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Target>, HelloError> {
        if self.done {
            return Err(HelloError::NotTls(
                "bytes after the ClientHello was read".into(),
            ));
        }
        if self.seen.len() + bytes.len() > MAX_HELLO {
            self.done = true;
            return Err(HelloError::TooLarge);
        }
        self.seen.extend_from_slice(bytes);
        let mut fresh = bytes;
        while !fresh.is_empty() {
            if let Err(e) = self.acceptor.read_tls(&mut fresh) {
                self.done = true;
                return Err(e.into());
            }
        }
        let answer = match self.acceptor.accept() {
            Ok(None) => return Ok(None),
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let name = hello.server_name().ok_or(HelloError::NoServerName)?;
                parse_target(name)
                    .map(Some)
                    .ok_or_else(|| HelloError::NotHbone(name.into()))
            }
            Err((e, _alert)) => Err(HelloError::NotTls(e.to_string())),
        };
        self.done = true;
        answer
    }

    /// Every byte fed so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.seen
    }
}

/// Reads a ClientHello from `io` within `wait`: the workload and port it asks for, and every
/// byte read (to be replayed to that workload's proxy).
pub async fn read_client_hello<I: AsyncRead + Unpin>(
    io: &mut I,
    wait: Duration,
) -> Result<(Target, Vec<u8>), HelloError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut reader = HelloReader::default();
    let mut buf = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Err(_) => return Err(HelloError::Timeout(wait)),
            Ok(Ok(0)) => return Err(HelloError::Closed),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
        };
        if let Some(target) = reader.feed(&buf[..n])? {
            return Ok((target, reader.into_bytes()));
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
        assert_eq!(admin_server_name(ip), "10-213-1-5.admin.weft");
        let admin = Target {
            ip,
            port: Port::Admin,
        };
        assert_eq!(parse_target(&admin_server_name(ip)), Some(admin));
        assert_eq!(
            parse_server_name(&admin_server_name(ip)),
            None,
            "an admin name is not an HBONE name"
        );
        for bad in [
            "10-213-1-5.admin.weft.evil",
            "10-213-01-5.admin.weft",
            "10-213-1-5.hbone.admin.weft",
            "10-213-1-5.hbone.weft.evil",
            "10-213-1.hbone.weft",
            "10-213-1-5-6.hbone.weft",
            "10-213-01-5.hbone.weft",
            "10-213-1-256.hbone.weft",
            "-213-1-5.hbone.weft",
            "weft.mesh",
            "",
        ] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }

    /// A real ClientHello (rustls's, as a proxy sends it) for the server name `name`.
    fn client_hello(name: String) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(name).expect("name");
        let mut conn =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).expect("hello");
        hello
    }

    #[test]
    fn a_client_hello_in_pieces_names_its_workload_once_complete() {
        let ip = Ipv4Addr::new(10, 213, 1, 5);
        let hello = client_hello(server_name(ip));
        let inbound = Some(Target {
            ip,
            port: Port::Inbound,
        });
        let mut reader = HelloReader::default();
        let (last, head) = hello.split_last().expect("bytes");
        for byte in head {
            assert_eq!(reader.feed(&[*byte]).expect("so far so good"), None);
        }
        assert_eq!(reader.feed(&[*last]).expect("complete"), inbound);
        assert!(reader.feed(b"more").is_err(), "nothing after the answer");
        let mut whole = HelloReader::default();
        assert_eq!(whole.feed(&hello).expect("whole"), inbound);
        assert_eq!(whole.into_bytes(), hello, "every byte kept for the replay");
        let mut admin = HelloReader::default();
        let asks = admin.feed(&client_hello(admin_server_name(ip)));
        assert_eq!(
            asks.expect("admin"),
            Some(Target {
                ip,
                port: Port::Admin
            })
        );
        let mut big = HelloReader::default();
        assert!(matches!(
            big.feed(&vec![0x16; MAX_HELLO + 1]),
            Err(HelloError::TooLarge)
        ));
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
