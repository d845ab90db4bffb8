//! `weft demo`: the shop example's frontend, a small traffic app. It knows nothing about
//! the mesh: it resolves `reviews` and `ratings` through `/etc/hosts` and dials them
//! directly, and the mesh routes, splits and encrypts underneath.
//!
//! At a fixed rate it sends, in turn: plain `GET`s to reviews (split 90/10 by the example's
//! HTTPRoute), `GET`s with `x-canary: 1` (pinned to v2), and gRPC `GrpcEcho/Echo` calls to
//! ratings. Every report period it prints who answered, and serves the last report on its
//! listen address.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_ANSWER: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// `host:port` of the HTTP service (reviews).
    pub reviews: String,
    /// `host:port` of the gRPC service (ratings).
    pub ratings: String,
    /// Requests per second, over all three kinds.
    pub rate: u32,
    pub report_every: Duration,
    /// Stop after this many requests (none: until shut down).
    pub requests: Option<u64>,
    /// Serve the last report here.
    pub listen: Option<SocketAddr>,
}

/// Counts of one report period.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Plain reviews requests, by the pod that answered.
    pub reviews: BTreeMap<String, u64>,
    /// `x-canary: 1` requests, by the pod that answered.
    pub canary: BTreeMap<String, u64>,
    pub ratings_ok: u64,
    pub ratings_total: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl Tally {
    pub fn report(&self) -> String {
        let share = |m: &BTreeMap<String, u64>| {
            let total: u64 = m.values().sum();
            let parts: Vec<String> = m
                .iter()
                .map(|(pod, n)| {
                    format!(
                        "{pod} {n} ({:.0}%)",
                        *n as f64 * 100.0 / total.max(1) as f64
                    )
                })
                .collect();
            if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            }
        };
        let mut line = format!(
            "reviews: {} | x-canary: 1 → {} | ratings (gRPC): {}/{} OK | errors: {}",
            share(&self.reviews),
            share(&self.canary),
            self.ratings_ok,
            self.ratings_total,
            self.errors
        );
        if let Some(e) = &self.last_error {
            line.push_str(&format!(" (last: {e})"));
        }
        line
    }
}

/// Runs until `shutdown` or the request budget is spent; returns the whole run's tally.
pub async fn run(config: DemoConfig, shutdown: impl Future<Output = ()>) -> Tally {
    let last_report = Arc::new(Mutex::new(String::from("no report yet\n")));
    if let Some(addr) = config.listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tokio::spawn(serve_report(l, last_report.clone()));
            }
            Err(e) => tracing::warn!(%addr, error = %e, "cannot serve the report"),
        }
    }
    let mut total = Tally::default();
    let mut window = Tally::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / config.rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut report = tokio::time::interval(config.report_every);
    report.tick().await;
    tokio::pin!(shutdown);
    let mut sent: u64 = 0;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = report.tick() => {
                let line = window.report();
                println!("demo: {line}");
                if let Ok(mut l) = last_report.lock() {
                    *l = line + "\n";
                }
                window = Tally::default();
            }
            _ = tick.tick() => {
                if config.requests.is_some_and(|n| sent >= n) {
                    break;
                }
                let kind = sent % 10;
                sent += 1;
                let outcome = one(&config, kind).await;
                for t in [&mut window, &mut total] {
                    record(t, kind, &outcome);
                }
            }
        }
    }
    if window.errors + window.ratings_total + window.reviews.values().sum::<u64>() > 0 {
        println!("demo: {}", window.report());
    }
    total
}

/// What one request came back with: the answering pod (or `ok` for gRPC), or an error.
type Outcome = Result<String, String>;

async fn one(config: &DemoConfig, kind: u64) -> Outcome {
    let call = async {
        match kind {
            8 => grpc_echo(&config.ratings).await,
            9 => http_get(&config.reviews, true).await,
            _ => http_get(&config.reviews, false).await,
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
}

fn record(t: &mut Tally, kind: u64, outcome: &Outcome) {
    match (kind, outcome) {
        (8, Ok(_)) => {
            t.ratings_ok += 1;
            t.ratings_total += 1;
        }
        (8, Err(e)) => {
            t.ratings_total += 1;
            t.errors += 1;
            t.last_error = Some(format!("ratings: {e}"));
        }
        (9, Ok(pod)) => *t.canary.entry(pod.clone()).or_default() += 1,
        (_, Ok(pod)) => *t.reviews.entry(pod.clone()).or_default() += 1,
        (_, Err(e)) => {
            t.errors += 1;
            t.last_error = Some(format!("reviews: {e}"));
        }
    }
}

async fn connect(target: &str) -> Result<tokio::net::TcpStream, String> {
    let addr = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} resolves to nothing"))?;
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {target} ({addr}): {e}"))
}

async fn http_get(target: &str, canary: bool) -> Outcome {
    let stream = connect(target).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = Request::get("/").header(http::header::HOST, target);
    if canary {
        req = req.header("x-canary", "1");
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let weft_error = resp
        .headers()
        .get("weft-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}{}",
            weft_error
                .map(|e| format!(" (weft-error: {e})"))
                .unwrap_or_default()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("not an echo answer: {e}"))?;
    Ok(v["pod"].as_str().unwrap_or("?").to_string())
}

async fn grpc_echo(target: &str) -> Outcome {
    let stream = connect(target).await?;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let body = crate::grpc::encode(&crate::grpc::EchoRequest {}).map_err(|e| e.to_string())?;
    let req = Request::post(format!("http://{target}{}", crate::grpc::ECHO_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let collected = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    if status != "0" {
        return Err(format!("grpc-status {status}"));
    }
    let msg: crate::grpc::EchoResponse =
        crate::grpc::decode(&collected.to_bytes()).map_err(|e| e.to_string())?;
    Ok(msg
        .assertions
        .and_then(|a| a.context)
        .map(|c| c.pod)
        .unwrap_or_default())
}

async fn serve_report(listener: tokio::net::TcpListener, last: Arc<Mutex<String>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let last = last.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |_req| {
                let text = last.lock().map(|l| l.clone()).unwrap_or_default();
                async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                        text,
                    ))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
