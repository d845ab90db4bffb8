//! The HTTP ports: one hyper-util `auto` connection per accepted socket
//! (HTTP/1.1 or h2c prior knowledge), routed like the Go echo-basic server:
//! `/health`, `/status/NNN`, gRPC calls, upgrades, and the JSON echo for
//! everything else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

use crate::answer::{self, EchoResponse};
use crate::body::EchoBody;
use crate::chaos::Chaos;
use crate::shutdown::Shutdown;
use crate::{duration, grpc_server, upgrade, Identity};

/// The longest `?delay=` honoured; longer values wait this long.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The connection builder every HTTP port shares.
pub(crate) fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Serves one accepted connection until it ends or the server closes.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: Arc<auto::Builder<TokioExecutor>>,
    identity: Arc<Identity>,
    shutdown: Shutdown,
    chaos: Arc<Chaos>,
    idle_timeout: Option<Duration>,
) {
    let sd = shutdown.clone();
    let activity = Arc::new(Activity::new());
    let act = activity.clone();
    let service = service_fn(move |req| {
        let identity = identity.clone();
        let shutdown = sd.clone();
        let (chaos, act) = (chaos.clone(), act.clone());
        async move {
            let _busy = act.begin();
            if chaos.fails().await {
                return Ok::<_, Infallible>(simple(StatusCode::SERVICE_UNAVAILABLE, "chaos\n"));
            }
            Ok::<_, Infallible>(handle(req, peer, &identity, shutdown).await)
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(error) = res {
                    tracing::debug!(%peer, %error, "echo: http connection ended with an error");
                }
                return;
            }
            () = shutdown.draining(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = shutdown.closed() => return,
            () = activity.idle_for(idle_timeout) => {
                tracing::debug!(%peer, "echo: closing an idle connection");
                return;
            }
        }
    }
}

/// A connection's requests in flight and when the last one ended, for its idle timeout.
struct Activity {
    start: std::time::Instant,
    in_flight: std::sync::atomic::AtomicU32,
    last_ms: std::sync::atomic::AtomicU64,
}

/// A request in flight; its end is the connection's last activity.
struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.0
            .last_ms
            .store(self.0.start.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
            in_flight: std::sync::atomic::AtomicU32::new(0),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn begin(&self) -> Busy<'_> {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(self)
    }

    /// Resolves once the connection has been idle for `limit` (never, without one).
    async fn idle_for(&self, limit: Option<Duration>) {
        use std::sync::atomic::Ordering;
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let now = self.start.elapsed();
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let idle = now.saturating_sub(last);
            if self.in_flight.load(Ordering::Relaxed) == 0 && idle >= limit {
                return;
            }
            tokio::time::sleep(limit.saturating_sub(idle).max(Duration::from_millis(5))).await;
        }
    }
}

/// Answers one request and logs it.
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    identity: &Identity,
    shutdown: Shutdown,
) -> Response<EchoBody> {
    let method = req.method().clone();
    let version = req.version();
    let uri = req.uri().clone();
    let resp = route(req, peer, identity, shutdown).await;
    tracing::debug!(
        %peer,
        %method,
        %uri,
        proto = answer::proto(version),
        status = resp.status().as_u16(),
        "echo: request"
    );
    resp
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    identity: &Identity,
    shutdown: Shutdown,
) -> Response<EchoBody> {
    if grpc_server::is_grpc(&req) {
        return grpc_server::handle(req, identity).await;
    }
    if let Some(upgrade) = upgrade::requested(&req) {
        return upgrade::accept(req, upgrade, peer, shutdown);
    }
    // Like the Go server's mux, route on the path with `//` collapsed.
    let path = req.uri().path().replace("//", "/");
    if path == "/health" {
        drain(req.into_body()).await;
        return simple(StatusCode::OK, "OK");
    }
    if path.starts_with("/status/") {
        let (parts, body) = req.into_parts();
        drain(body).await;
        let status = status_from_target(&answer::request_target(&parts));
        return simple(status, "");
    }
    echo(req, identity).await
}

/// `^/status/(\d\d\d)$` against the request-target, like the Go server; any
/// other form is a 400.
fn status_from_target(target: &str) -> StatusCode {
    target
        .strip_prefix("/status/")
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| *code >= 200)
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::BAD_REQUEST)
}

/// The JSON echo.
async fn echo(req: Request<Incoming>, identity: &Identity) -> Response<EchoBody> {
    let (parts, body) = req.into_parts();
    let body_bytes = drain(body).await;

    let delay = form_value(parts.uri.query().unwrap_or(""), "delay").filter(|d| !d.is_empty());
    if let Some(delay) = delay {
        match duration::parse(&delay) {
            Ok(delay) => tokio::time::sleep(delay.min(MAX_DELAY)).await,
            Err(error) => return error_json(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
        }
    }

    let answer = EchoResponse::new(&parts, identity);
    let json = match serde_json::to_vec_pretty(&answer) {
        Ok(json) => json,
        Err(error) => return error_json(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let mut resp = Response::new(EchoBody::full(json));
    answer::apply_echo_set_header(&parts.headers, resp.headers_mut());
    set_json_headers(&mut resp);
    // Weft's extension: how many request body bytes arrived, so tests through a proxy can
    // tell a body was carried whole (the JSON answer stays exactly echo-basic's).
    resp.headers_mut()
        .insert(BODY_BYTES_HEADER, http::HeaderValue::from(body_bytes));
    resp
}

/// Response header carrying the number of request body bytes the echo server read.
pub const BODY_BYTES_HEADER: &str = "x-echo-body-bytes";

/// Reads a request body to its end without keeping it; returns its length.
async fn drain(mut body: Incoming) -> u64 {
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    len = len.saturating_add(data.len() as u64);
                }
            }
            Err(error) => {
                tracing::debug!(%error, "echo: reading request body failed");
                break;
            }
        }
    }
    len
}

/// The first value of `key` in a query string (`+` and `%XX` decoded), as Go's `FormValue`.
fn form_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| percent_decode(k).as_deref() == Some(key))
        .and_then(|(_, v)| percent_decode(v))
}

/// Form-decodes one query component; `None` if it is not valid.
fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn simple(status: StatusCode, body: &'static str) -> Response<EchoBody> {
    let mut resp = Response::new(EchoBody::full(body));
    *resp.status_mut() = status;
    if !body.is_empty() {
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

/// `{"message": ...}` with `status`, as the Go server's `processError`.
fn error_json(status: StatusCode, message: &str) -> Response<EchoBody> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = Response::new(EchoBody::full(body));
    *resp.status_mut() = status;
    set_json_headers(&mut resp);
    resp
}

fn set_json_headers(resp: &mut Response<EchoBody>) {
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_targets() {
        assert_eq!(
            status_from_target("/status/503"),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status_from_target("/status/204"), StatusCode::NO_CONTENT);
        for bad in [
            "/status/",
            "/status/abc",
            "/status/5030",
            "/status/503?x=1",
            "/status/101",
        ] {
            assert_eq!(status_from_target(bad), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn query_values() {
        assert_eq!(
            form_value("a=1&delay=100ms", "delay").as_deref(),
            Some("100ms")
        );
        assert_eq!(
            form_value("delay=1%2E5s&delay=2s", "delay").as_deref(),
            Some("1.5s")
        );
        assert_eq!(form_value("x=1", "delay"), None);
        assert_eq!(form_value("delay", "delay").as_deref(), Some(""));
    }
}
