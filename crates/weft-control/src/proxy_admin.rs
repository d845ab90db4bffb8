//! The control plane as a client of proxies' admin endpoints: `weft proxy-config`, `tap` and
//! `stat` reach proxies through the control plane, which knows where they are and holds the
//! admin token their protected routes ask for.
//!
//! Every exchange has a deadline for its answer's head; whole bodies are capped.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest document read whole from a proxy (`/config`, `/metrics`).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Opens `GET path` on the admin endpoint at `addr` (with the admin token, when the route
/// needs it); the answer's head
/// within `timeout`, its body left to the caller (a tap streams).
pub async fn open(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<http::Response<Incoming>, String> {
    let exchange = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                .await
                .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::get(path)
            .header(header::HOST, addr.to_string())
            .header(header::USER_AGENT, "weft-control");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("asking {addr}: {e}"))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("{addr} did not answer within {timeout:?}")),
    }
}

/// `GET path` read whole (within `timeout` overall): the status and the body as text.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, String), String> {
    let whole = async {
        let resp = open(addr, path, token, timeout).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading {addr}'s answer: {e}"))?
            .to_bytes();
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| format!("{addr} answered with something other than UTF-8 text"))?;
        Ok((status, text))
    };
    match tokio::time::timeout(timeout, whole).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{addr} did not finish answering within {timeout:?}"
        )),
    }
}
