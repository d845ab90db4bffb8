//! The chaos benchmark's load generator, run as the client workload of the mesh (inside its
//! network namespace, so its traffic is captured by its proxy like any application's).
//!
//! Open loop: request `i` is due at `t0 + i / rate`; it takes one of `connections`
//! keep-alive HTTP/1.1 connections (waiting for one counts in its latency, so a slow mesh
//! shows as latency, not as a lower rate). `bursts` instead sends ten requests every ~3.9 s,
//! which leaves pooled connections idle for about as long as the proxy keeps them.
//!
//! Every request has a 3 s timeout and the run a fixed length. Records (due time, latency,
//! status or error, the endpoint that answered) go to a CSV file at the end; the
//! orchestrator outside reads it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(clap::Args, Clone)]
pub struct LoadArgs {
    /// `host:port` of the Service (resolved in the namespace's hosts file).
    #[arg(long)]
    pub target: String,
    #[arg(long, default_value = "/")]
    pub path: String,
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// `steady` (the rate) or `bursts` (ten requests every ~3.9 s).
    #[arg(long, default_value = "steady")]
    pub pattern: String,
    /// Records go here (CSV), and `<out>.started` when the first request is due.
    #[arg(long)]
    pub out: PathBuf,
    /// The port `weft up` expects the workload to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
}

/// One request's outcome.
struct Record {
    due_ms: u64,
    latency_us: u64,
    /// From the moment the request went out (not its due time) to its answer: the proxy's
    /// and the service's time alone, without the load generator's timer slop.
    service_us: u64,
    status: u16,
    pod: String,
    error: String,
}

pub fn run(args: LoadArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("runtime")?;
    runtime.block_on(generate(args))
}

async fn generate(args: LoadArgs) -> Result<()> {
    let listener = TcpListener::bind(args.listen).await.context("listen")?;
    tokio::spawn(serve_ok(listener));
    let target = resolve(&args.target).await?;
    let host = args.target.split(':').next().unwrap_or("").to_string();
    let (conns_tx, mut conns_rx) = mpsc::channel::<Conn>(args.connections);
    for _ in 0..args.connections {
        let _ = conns_tx.try_send(Conn::new(target, host.clone()));
    }
    let total = match args.pattern.as_str() {
        "steady" => u64::from(args.rate) * args.seconds,
        "bursts" => (args.seconds * 10) / 4 + 10,
        other => bail!("unknown pattern {other}"),
    };
    let (done_tx, mut done_rx) = mpsc::channel::<Record>(total as usize + 1);
    let t0 = Instant::now();
    let t0_ms = epoch_ms();
    std::fs::write(args.out.with_extension("started"), t0_ms.to_string()).context("started")?;
    let end = t0 + Duration::from_secs(args.seconds);
    let path: Arc<str> = Arc::from(args.path.as_str());
    let mut sent = 0u64;
    let mut burst_at = t0;
    while sent < total {
        let due = match args.pattern.as_str() {
            "steady" => t0 + Duration::from_nanos(sent * 1_000_000_000 / u64::from(args.rate)),
            _ => {
                if sent.is_multiple_of(10) && sent > 0 {
                    // 3.85 s to 3.95 s: around the moment the servers close idle connections.
                    burst_at += Duration::from_millis(3850 + fastrand_u64(100));
                }
                burst_at + Duration::from_millis(2 * (sent % 10))
            }
        };
        // Past the end of the run (every connection was busy for long): what was not sent
        // counts as failed below.
        if due >= end || Instant::now() >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Some(mut conn) = conns_rx.recv().await else {
            break;
        };
        let (conns_tx, done_tx, path) = (conns_tx.clone(), done_tx.clone(), path.clone());
        let due_ms = t0_ms + due.duration_since(t0).as_millis() as u64;
        tokio::spawn(async move {
            let went = Instant::now();
            let outcome = tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&path)).await;
            let latency_us = due.elapsed().as_micros() as u64;
            let service_us = went.elapsed().as_micros() as u64;
            let record = match outcome {
                Ok(Ok((status, pod))) => Record {
                    due_ms,
                    latency_us,
                    service_us,
                    status,
                    pod,
                    error: String::new(),
                },
                Ok(Err(e)) => {
                    conn.reset();
                    Record {
                        due_ms,
                        latency_us,
                        service_us,
                        status: 0,
                        pod: String::new(),
                        error: e,
                    }
                }
                Err(_) => {
                    conn.reset();
                    Record {
                        due_ms,
                        latency_us,
                        service_us,
                        status: 0,
                        pod: String::new(),
                        error: "timeout".into(),
                    }
                }
            };
            let _ = done_tx.send(record).await;
            let _ = conns_tx.send(conn).await;
        });
        sent += 1;
    }
    drop(done_tx);
    let mut records = Vec::with_capacity(sent as usize);
    let collect = async {
        while let Some(r) = done_rx.recv().await {
            records.push(r);
        }
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(2), collect).await;
    // Requests the schedule called for that never got a free connection: failures.
    let scheduled = match args.pattern.as_str() {
        "steady" => total,
        _ => sent,
    };
    for i in sent..scheduled {
        records.push(Record {
            due_ms: t0_ms + i * 1000 / u64::from(args.rate.max(1)),
            latency_us: 0,
            service_us: 0,
            status: 0,
            pod: String::new(),
            error: "not sent: no free connection before the run ended".into(),
        });
    }
    records.sort_by_key(|r| r.due_ms);
    let mut csv = String::from("due_ms,latency_us,status,pod,error,service_us\n");
    for r in &records {
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.due_ms,
            r.latency_us,
            r.status,
            r.pod,
            r.error.replace([',', '\n'], " "),
            r.service_us
        ));
    }
    let tmp = args.out.with_extension("tmp");
    std::fs::write(&tmp, csv).context("records")?;
    std::fs::rename(&tmp, &args.out).context("records")?;
    Ok(())
}

/// The Service's address, once the control plane has written the namespace's hosts file.
async fn resolve(target: &str) -> Result<SocketAddr> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(addr) = target.to_socket_addrs().ok().and_then(|mut a| a.next()) {
            return Ok(addr);
        }
        if Instant::now() > deadline {
            bail!("{target} does not resolve");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn serve_ok(listener: TcpListener) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                .await;
        });
    }
}

pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn fastrand_u64(below: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos % below.max(1)
}

/// A keep-alive connection to the Service, made on first use and after an error.
struct Conn {
    target: SocketAddr,
    host: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Conn {
    fn new(target: SocketAddr, host: String) -> Conn {
        Conn {
            target,
            host,
            sender: None,
        }
    }

    fn reset(&mut self) {
        self.sender = None;
    }

    /// The status and the answering pod (from the echo's JSON).
    async fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.target)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("no connection".into());
        };
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, pod_of(&body)))
    }
}

/// The `"pod"` of an echo answer.
fn pod_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split("\"pod\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("")
        .to_string()
}
