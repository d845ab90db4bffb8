//! `weft-hosts-bench`: what crossing hosts costs. Two hosts as network namespaces on a
//! network between them (a bridge, 198.18.92.0/24), etcd and a control-plane replica on that
//! network, each host joined with its tunnel; an echo workload on each host and a client on
//! host A, all started with `weft run` (STRICT mutual TLS). From inside the client's network
//! namespace, one keep-alive connection per target sends requests one at a time, in
//! alternating blocks: to the echo on host A (the mesh hop on one host: client proxy → echo
//! proxy over mutual TLS) and to the echo on host B (the same hop across hosts: client proxy
//! → host B's tunnel → echo proxy, HBONE). Prints medians, p90, p99 and the ratio, and writes
//! `bench/HOSTS-RESULTS.md`. Needs root, iproute2, iptables and etcd; `--smoke` is CI's run.

mod setup;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Requests per target (after 200 warm-up requests each).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// A short run (CI): 500 requests per target, no file written.
    #[arg(long)]
    smoke: bool,
    /// The weft binary (a release build).
    #[arg(long, default_value = "target/release/weft")]
    weft: PathBuf,
    /// Where to write the Markdown results ("" for nowhere).
    #[arg(long, default_value = "bench/HOSTS-RESULTS.md")]
    out: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the hosts benchmark needs root (network namespaces, iptables)");
    }
    let requests = if args.smoke { 500 } else { args.requests };
    let weft = std::fs::canonicalize(&args.weft).with_context(|| {
        format!(
            "{} (build it: cargo build --release -p weft)",
            args.weft.display()
        )
    })?;
    let mesh = setup::Mesh::start(&weft)?;
    let result = measure(&mesh, requests);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}", mesh.logs());
            return Err(e);
        }
    };
    let table = summary.table(requests);
    println!("{table}");
    if !args.smoke && !args.out.is_empty() {
        std::fs::write(&args.out, summary.markdown(requests, &table))
            .with_context(|| format!("writing {}", args.out))?;
        println!("wrote {}", args.out);
    }
    Ok(())
}

/// Latencies in microseconds, sorted.
struct Latencies(Vec<u64>);

impl Latencies {
    fn quantile(&self, q: f64) -> u64 {
        let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
        self.0.get(i).copied().unwrap_or_default()
    }
}

struct Summary {
    same_host: Latencies,
    cross_host: Latencies,
}

impl Summary {
    fn table(&self, requests: usize) -> String {
        let row = |name: &str, l: &Latencies| {
            format!(
                "| {name} | {} | {} | {} | {:.2}× |",
                l.quantile(0.5),
                l.quantile(0.9),
                l.quantile(0.99),
                l.quantile(0.5) as f64 / self.same_host.quantile(0.5).max(1) as f64
            )
        };
        format!(
            "{requests} requests per target, one at a time on one keep-alive connection each (µs)\n\n\
             | hop | p50 | p90 | p99 | p50 vs same host |\n|---|---|---|---|---|\n{}\n{}",
            row("same host (client proxy → echo proxy, mutual TLS)", &self.same_host),
            row("across hosts (client proxy → tunnel → echo proxy, HBONE)", &self.cross_host),
        )
    }

    fn markdown(&self, requests: usize, table: &str) -> String {
        let _ = requests;
        format!(
            "# Crossing hosts: the mesh hop over HBONE vs on one host\n\n\
             `weft-hosts-bench` (`cargo run --release -p weft-bench --bin weft-hosts-bench`), \
             {}: two hosts as network namespaces on one machine (2 cores), an echo on each, a \
             client on host A; STRICT mutual TLS. The cross-host path adds HBONE (one HTTP/2 \
             `CONNECT` stream inside the mutual TLS, through host B's tunnel, which splices \
             the bytes) and the hosts' network (veth, bridge, forwarding and masquerading on \
             host A).\n\n{table}\n",
            date()
        )
    }
}

fn date() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Runs the load from inside the client's network namespace, on a thread of its own.
fn measure(mesh: &setup::Mesh, requests: usize) -> Result<Summary> {
    let (pid, same, cross) = (mesh.client_pid()?, mesh.vip("echo-a")?, mesh.vip("echo-b")?);
    let handle = std::thread::spawn(move || -> Result<Summary> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        // SAFETY: setns on a namespace descriptor we hold open; it affects this thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        let mut a = Keepalive::connect(same)?;
        let mut b = Keepalive::connect(cross)?;
        for _ in 0..200 {
            a.get()?;
            b.get()?;
        }
        let (mut la, mut lb) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
        // Alternating blocks, so that both see the same machine.
        while la.len() < requests {
            for _ in 0..100.min(requests - la.len()) {
                la.push(a.get()?);
                lb.push(b.get()?);
            }
        }
        la.sort_unstable();
        lb.sort_unstable();
        Ok(Summary {
            same_host: Latencies(la),
            cross_host: Latencies(lb),
        })
    });
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}

/// One keep-alive HTTP/1.1 connection to an echo.
struct Keepalive {
    stream: TcpStream,
    target: SocketAddr,
    buf: Vec<u8>,
}

impl Keepalive {
    fn connect(target: SocketAddr) -> Result<Keepalive> {
        let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .with_context(|| format!("connecting to {target}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Keepalive {
            stream,
            target,
            buf: Vec::with_capacity(4096),
        })
    }

    /// One request; its latency in microseconds.
    fn get(&mut self) -> Result<u64> {
        let began = Instant::now();
        write!(
            self.stream,
            "GET /bench HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.target
        )?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("{} closed the connection", self.target);
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(done) = complete(&self.buf) {
                if !self.buf.starts_with(b"HTTP/1.1 200") {
                    bail!(
                        "{}: {}",
                        self.target,
                        String::from_utf8_lossy(&self.buf[..done])
                    );
                }
                break;
            }
        }
        Ok(began.elapsed().as_micros() as u64)
    }
}

/// The length of a complete answer in `buf` (head and a Content-Length body), if it is.
fn complete(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= head_end + len).then_some(head_end + len)
}
