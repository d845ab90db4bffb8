//! One keep-alive HTTP/1.1 client connection (hyper's `client::conn::http1`), connected
//! lazily and re-established after an error. It carries one request at a time.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::request::RequestShape;

/// A [`RequestShape`] parsed into what hyper takes, once per run.
pub struct Prepared {
    path: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Prepared {
    pub fn new(shape: &RequestShape) -> anyhow::Result<Prepared> {
        let field = |name: &str, value: &str| -> anyhow::Result<(HeaderName, HeaderValue)> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("invalid header name {name:?}"))?;
            let v = HeaderValue::from_str(value)
                .with_context(|| format!("invalid value of header {name}"))?;
            Ok((n, v))
        };
        let mut headers = vec![field(HOST.as_str(), &shape.host)?];
        for (name, value) in &shape.headers {
            headers.push(field(name, value)?);
        }
        let path = shape
            .path
            .parse()
            .with_context(|| format!("invalid request path {:?}", shape.path))?;
        Ok(Prepared { path, headers })
    }
}

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

    /// Sends the request, reads the whole body, and returns the status code.
    pub async fn get(&mut self, request: &Prepared) -> Result<u16, ReqError> {
        let sender = self.ready().await?;
        let mut req = Request::get(request.path.clone())
            .body(Empty::<Bytes>::new())
            .map_err(|e| ReqError::new("request", e))?;
        let headers = req.headers_mut();
        for (name, value) in &request.headers {
            headers.append(name.clone(), value.clone());
        }
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
