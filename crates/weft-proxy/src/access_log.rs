//! JSON access log lines (off by default), one per HTTP request, written by a task of its
//! own through a bounded queue: a slow stdout drops lines (counted) instead of slowing
//! requests. At shutdown the proxy [flushes](AccessLog::flush) the queue, so no line already
//! queued is lost at exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Request, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::error::{Synthesized, WEFT_ERROR};
use crate::metrics::Metrics;

const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
}

enum Message {
    Line(String),
    /// Answered once every line queued before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl AccessLog {
    /// Starts the writer task; lines go to stdout.
    pub fn stdout(metrics: Arc<Metrics>) -> AccessLog {
        Self::to(tokio::io::stdout(), metrics)
    }

    /// Starts the writer task; lines go to `out`.
    pub fn to<W>(mut out: W, metrics: Arc<Metrics>) -> AccessLog
    where
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                match message {
                    Message::Line(line) => {
                        if out.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                        // Write lines as they come, but flush once per burst.
                        if rx.is_empty() {
                            let _ = out.flush().await;
                        }
                    }
                    Message::Flush(done) => {
                        let _ = out.flush().await;
                        let _ = done.send(());
                    }
                }
            }
        });
        AccessLog { tx, metrics }
    }

    pub fn write(&self, line: String) {
        if self.tx.try_send(Message::Line(line)).is_err() {
            self.metrics.access_log_dropped.inc();
        }
    }

    /// Waits (at most `limit`) until every line queued so far is written out.
    pub async fn flush(&self, limit: Duration) -> bool {
        let (done, written) = tokio::sync::oneshot::channel();
        let flushed =
            async { self.tx.send(Message::Flush(done)).await.is_ok() && written.await.is_ok() };
        tokio::time::timeout(limit, flushed).await.unwrap_or(false)
    }
}

/// One request's log line, filled in as the request goes.
#[derive(Serialize)]
pub struct Entry {
    timestamp: f64,
    direction: &'static str,
    client: String,
    method: String,
    authority: String,
    path: String,
    protocol: String,
    destination_service: String,
    route: String,
    status: u16,
    duration_ms: f64,
    weft_error: Option<String>,
    /// The reason of an answer this proxy made itself (the `weft_proxy_errors_total` label);
    /// absent when the answer came from upstream (whose `weft-error`, if any, is above).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<&'static str>,
    /// Inbound, with AuthorizationPolicies: the policy and rule that allowed the request (a
    /// denial's are in `weft_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    authz: Option<String>,
    /// Inbound: the client's SPIFFE id (`unknown` without mTLS) and whether it used mTLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtls: Option<bool>,
    /// Outbound: the workload (`namespace/name`) of the endpoint that answered, and the
    /// identity its proxy proved.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_principal: Option<String>,
}

impl Entry {
    pub fn outbound<B>(req: &Request<B>, client: SocketAddr) -> Entry {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Entry {
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            direction: crate::metrics::OUTBOUND,
            client: client.to_string(),
            method: req.method().to_string(),
            authority,
            path: req.uri().path().to_string(),
            protocol: format!("{:?}", req.version()),
            destination_service: String::new(),
            route: String::new(),
            status: 0,
            duration_ms: 0.0,
            weft_error: None,
            error_reason: None,
            authz: None,
            peer_principal: None,
            mtls: None,
            destination_workload: None,
            destination_principal: None,
        }
    }

    /// A request arriving from a peer (or a plaintext client) for the local application.
    pub fn inbound<B>(req: &Request<B>, client: SocketAddr, principal: &str, mtls: bool) -> Entry {
        let mut e = Entry::outbound(req, client);
        e.direction = crate::metrics::INBOUND;
        e.peer_principal = Some(principal.to_string());
        e.mtls = Some(mtls);
        e
    }

    /// What allowed the request (the policy and rule).
    pub fn authz(&mut self, decided: String) {
        self.authz = Some(decided);
    }

    pub fn route(&mut self, service: &str, route: &str) {
        self.destination_service = service.to_string();
        self.route = route.to_string();
    }

    /// The endpoint that answered (outbound): its workload and its proxy's identity.
    pub fn upstream(&mut self, workload: String, principal: Option<String>) {
        self.destination_workload = Some(workload);
        self.mtls = Some(principal.is_some());
        self.destination_principal = principal;
    }

    /// Fills in the answer. Taken by reference: an entry is large, and moving it into this
    /// call would copy it.
    pub fn complete<B>(&mut self, resp: &Response<B>, elapsed: Duration) {
        self.status = resp.status().as_u16();
        self.duration_ms = elapsed.as_secs_f64() * 1000.0;
        self.weft_error = crate::h1::verbatim::header(resp, WEFT_ERROR)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string);
        self.error_reason = resp.extensions().get::<Synthesized>().map(|s| s.0.label());
    }

    /// The completed entry as a log line, newline-terminated.
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    pub fn direction(&self) -> &'static str {
        self.direction
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// One line for a finished TCP connection.
pub fn tcp_line(
    direction: &'static str,
    client: SocketAddr,
    port: u16,
    principal: &str,
    mtls: bool,
) -> String {
    let line = serde_json::json!({
        "timestamp": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "direction": direction,
        "client": client.to_string(),
        "protocol": "tcp",
        "port": port,
        "peer_principal": principal,
        "mtls": mtls,
    });
    let mut s = line.to_string();
    s.push('\n');
    s
}
