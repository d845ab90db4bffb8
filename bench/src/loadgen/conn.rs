//! One keep-alive HTTP/1.1 client connection (hyper's `client::conn::http1`), connected
//! lazily and re-established after an error. It carries one request at a time.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request failed, in a small set of kinds (for counting) plus the first detail.
#[derive(Debug, Clone)]
pub struct ReqError {
    pub kind: &'static str,
    pub detail: String,
}

impl ReqError {
    fn new(kind: &'static str, err: impl std::fmt::Display) -> ReqError {
        ReqError {
            kind,
            detail: err.to_string(),
        }
    }
}

/// A client connection to the setup's entry point.
pub struct Conn {
    target: SocketAddr,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Conn {
    /// A connection that connects on first use.
    pub fn new(target: SocketAddr) -> Conn {
        Conn {
            target,
            sender: None,
        }
    }

    /// Forgets the underlying connection (after an error or timeout), closing it.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    /// Sends `GET /` with `Host: host`, reads the whole body, and returns the status code.
    pub async fn get(&mut self, host: &str) -> Result<u16, ReqError> {
        let sender = self.ready().await?;
        let req = Request::get("/")
            .header(HOST, host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| ReqError::new("request", e))?;
        let resp = match sender.send_request(req).await {
            Ok(resp) => resp,
            Err(e) => {
                self.reset();
                return Err(ReqError::new("send", e));
            }
        };
        let status = resp.status().as_u16();
        if let Err(e) = resp.into_body().collect().await {
            self.reset();
            return Err(ReqError::new("body", e));
        }
        Ok(status)
    }

    /// A sender ready for a request. A connection the server closed while idle is replaced
    /// (nothing was sent on it yet, so this retries no request).
    async fn ready(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, ReqError> {
        if let Some(sender) = self.sender.as_mut() {
            if sender.is_closed() || sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        Ok(self.sender.insert(sender))
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, ReqError> {
        let stream = TcpStream::connect(self.target)
            .await
            .map_err(|e| ReqError::new("connect", format!("{}: {e}", self.target)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ReqError::new("connect", e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ReqError::new("handshake", e))?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes; errors
            // surface to the request that was using it.
            let _ = conn.await;
        });
        Ok(sender)
    }
}
