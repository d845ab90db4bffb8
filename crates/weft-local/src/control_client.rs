//! The runner's side of the control plane's admin routes (`/workloads`, `/hosts`,
//! `/ca/bundle.pem`): small HTTP/1.1 requests, each bounded in time and size.
//!
//! With several replicas (a mesh of hosts), a request that cannot reach one goes to the next,
//! and later requests start from the one that answered: a registration is a lease renewed
//! every few seconds, and it must outlive the replica it was made through. A refusal is an
//! answer, never a reason to ask another replica; but a 502, 503 or 504 says this replica
//! cannot answer now (one cut off from etcd refuses writes with 503), and the next is asked.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    #[error("no control-plane admin address to ask")]
    NoAddress,
}

impl ControlError {
    /// Whether the failure is this replica's, so that another may answer.
    fn is_this_replica(&self) -> bool {
        match self {
            ControlError::Unreachable { .. } => true,
            ControlError::Refused { status, .. } => matches!(status.as_u16(), 502..=504),
            ControlError::NoAddress => false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ControlClient {
    /// The replicas' admin addresses, in the order given.
    admins: Arc<[SocketAddr]>,
    token: String,
    /// Which of `admins` answered last: the next request starts there.
    answered: Arc<AtomicUsize>,
}

impl ControlClient {
    /// A client of the replicas at `admins` (tried in this order, then from the one that
    /// answered last), sending `token` (the admin token, or a host credential).
    pub fn new(admins: Vec<SocketAddr>, token: String) -> ControlClient {
        ControlClient {
            admins: admins.into(),
            token,
            answered: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The replica that answered last (the first before any did).
    pub fn admin(&self) -> Option<SocketAddr> {
        let n = self.admins.len();
        (n > 0).then(|| self.admins[self.answered.load(Ordering::Relaxed) % n])
    }

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
        let answer = self.request(Method::PUT, &path, body.into()).await?;
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
        self.request(Method::DELETE, &path, Bytes::new())
            .await
            .map(|_| ())
    }

    /// The hosts file for namespace `ns`.
    pub async fn hosts(&self, namespace: &str) -> Result<String, ControlError> {
        self.request(
            Method::GET,
            &format!("/hosts?namespace={namespace}"),
            Bytes::new(),
        )
        .await
    }

    /// The roots proxies trust for the control plane.
    pub async fn trust_bundle(&self) -> Result<String, ControlError> {
        self.request(Method::GET, "/ca/bundle.pem", Bytes::new())
            .await
    }

    /// One request, to each replica in turn until one answers (a refusal is an answer).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<String, ControlError> {
        let n = self.admins.len();
        let first = self.answered.load(Ordering::Relaxed);
        let mut last = ControlError::NoAddress;
        for i in 0..n {
            let k = (first + i) % n;
            let addr = self.admins[k];
            match self
                .request_to(addr, method.clone(), path, body.clone())
                .await
            {
                Err(e) if e.is_this_replica() => {
                    if n > 1 {
                        tracing::warn!(%addr, error = %e, "a control-plane replica did not answer; asking the next");
                    }
                    last = e;
                }
                answer => {
                    if k != first % n {
                        tracing::info!(%addr, "the control plane answers through this replica now");
                        self.answered.store(k, Ordering::Relaxed);
                    }
                    return answer;
                }
            }
        }
        Err(last)
    }

    async fn request_to(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<String, ControlError> {
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
                .body(Full::new(body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A replica that answers every request with `status` and counts them.
    async fn replica(status: u16) -> (SocketAddr, Arc<AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let asked = Arc::new(AtomicU32::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        (addr, asked)
    }

    /// An address nothing listens on: connections to it are refused.
    async fn gone() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("addr")
    }

    #[tokio::test]
    async fn a_replica_that_is_gone_is_passed_over_and_the_next_is_kept() {
        let dead = gone().await;
        let (live, asked) = replica(200).await;
        let client = ControlClient::new(vec![dead, live], "t".into());
        assert_eq!(client.admin(), Some(dead));
        let reg = Registration {
            service: "w".into(),
            service_account: None,
            address: std::net::Ipv4Addr::new(10, 213, 0, 2).into(),
            ports: vec![8080],
            labels: Default::default(),
            app_protocol: None,
            owner: "me".into(),
            ttl_seconds: 15,
            host: None,
            tunnel: None,
        };
        for _ in 0..3 {
            client
                .register("ns", "w", &reg, false)
                .await
                .expect("the second replica answers");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        assert_eq!(client.admin(), Some(live), "later requests start there");
        // Its clones (the runner's tasks) share what answered.
        assert_eq!(client.clone().admin(), Some(live));
    }

    #[tokio::test]
    async fn a_refusal_is_an_answer_and_no_replica_is_an_error() {
        let (refusing, _) = replica(403).await;
        let (live, asked) = replica(200).await;
        let client = ControlClient::new(vec![refusing, live], "t".into());
        let e = client
            .deregister("ns", "w", "me")
            .await
            .expect_err("refused");
        assert!(matches!(e, ControlError::Refused { status, .. } if status == 403));
        assert_eq!(asked.load(Ordering::SeqCst), 0, "not asked again elsewhere");
        // A replica that cannot answer now (503: cut off from etcd) is passed over.
        let (unavailable, _) = replica(503).await;
        let client = ControlClient::new(vec![unavailable, live], "t".into());
        client
            .trust_bundle()
            .await
            .expect("the live replica answers");
        assert_eq!(client.admin(), Some(live));
        let e = ControlClient::new(vec![gone().await, gone().await], "t".into())
            .trust_bundle()
            .await
            .expect_err("nobody");
        assert!(matches!(e, ControlError::Unreachable { .. }), "{e}");
        let e = ControlClient::new(vec![], "t".into()).trust_bundle().await;
        assert!(matches!(e, Err(ControlError::NoAddress)));
    }
}
