//! The runner's side of the control plane's admin routes (`/workloads`, `/hosts`,
//! `/ca/bundle.pem`): small HTTP/1.1 requests on loopback, each bounded in time and size.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
pub use weft_api::registration::Registration;

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ANSWER: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the control plane's admin endpoint at {addr}: {reason} (is `weft control` running? `weft up` starts one)")]
    Unreachable { addr: SocketAddr, reason: String },
    #[error("the control plane refused ({status}): {body}")]
    Refused { status: StatusCode, body: String },
}

#[derive(Clone, Debug)]
pub struct ControlClient {
    pub admin: SocketAddr,
    pub token: String,
}

impl ControlClient {
    /// Registers (or renews) the workload; with `want_token`, returns a join token.
    pub async fn register(
        &self,
        namespace: &str,
        name: &str,
        registration: &Registration,
        want_token: bool,
    ) -> Result<Option<String>, ControlError> {
        let body = serde_json::to_vec(registration).unwrap_or_default();
        let path = format!(
            "/workloads/{namespace}/{name}{}",
            if want_token { "?token=1" } else { "" }
        );
        let answer = self.request(Method::PUT, &path, body).await?;
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        Ok(v["joinToken"].as_str().map(str::to_string))
    }

    pub async fn deregister(
        &self,
        namespace: &str,
        name: &str,
        owner: &str,
    ) -> Result<(), ControlError> {
        let path = format!("/workloads/{namespace}/{name}?owner={owner}");
        self.request(Method::DELETE, &path, Vec::new())
            .await
            .map(|_| ())
    }

    /// The hosts file for namespace `ns`.
    pub async fn hosts(&self, namespace: &str) -> Result<String, ControlError> {
        self.request(
            Method::GET,
            &format!("/hosts?namespace={namespace}"),
            Vec::new(),
        )
        .await
    }

    /// The roots proxies trust for the control plane.
    pub async fn trust_bundle(&self) -> Result<String, ControlError> {
        self.request(Method::GET, "/ca/bundle.pem", Vec::new())
            .await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<String, ControlError> {
        let addr = self.admin;
        let unreachable = |reason: String| ControlError::Unreachable { addr, reason };
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, addr.to_string())
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", self.token),
                )
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| unreachable(e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status.is_success() {
                Ok(text)
            } else {
                Err(ControlError::Refused {
                    status,
                    body: text.trim().to_string(),
                })
            }
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {TIMEOUT:?}")))?
    }
}
