//! The original destination of a connection redirected by iptables (`SO_ORIGINAL_DST`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use tokio::net::TcpStream;

/// The address the client dialed before NAT redirected it here. `None` when the connection
/// was not redirected (the client dialed the proxy itself) or the kernel cannot tell.
pub fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    let local = stream.local_addr().ok()?;
    let fd = stream.as_raw_fd();
    let orig = match local {
        SocketAddr::V4(_) => ipv4(fd),
        SocketAddr::V6(_) => ipv6(fd).or_else(|| ipv4(fd)),
    }?;
    (orig != local).then_some(orig)
}

fn ipv4(fd: i32) -> Option<SocketAddr> {
    // SAFETY: getsockopt writes at most `len` bytes into a zeroed sockaddr_in we own.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in).cast(),
            &mut len,
        );
        if rc != 0 || i32::from(addr.sin_family) != libc::AF_INET {
            return None;
        }
        let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        Some(SocketAddr::V4(SocketAddrV4::new(
            ip,
            u16::from_be(addr.sin_port),
        )))
    }
}

fn ipv6(fd: i32) -> Option<SocketAddr> {
    // IP6T_SO_ORIGINAL_DST has the same value as SO_ORIGINAL_DST, at the IPv6 level.
    // SAFETY: as above, with a sockaddr_in6.
    unsafe {
        let mut addr: libc::sockaddr_in6 = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::SOL_IPV6,
            libc::SO_ORIGINAL_DST,
            (&mut addr as *mut libc::sockaddr_in6).cast(),
            &mut len,
        );
        if rc != 0 || i32::from(addr.sin6_family) != libc::AF_INET6 {
            return None;
        }
        let ip = Ipv6Addr::from(addr.sin6_addr.s6_addr);
        Some(SocketAddr::V6(SocketAddrV6::new(
            ip,
            u16::from_be(addr.sin6_port),
            0,
            0,
        )))
    }
}
