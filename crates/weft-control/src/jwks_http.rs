//! One bounded HTTP(S) GET, for key sets and OpenID Connect discovery documents: a deadline
//! for the whole exchange, a cap on the body, no redirects followed. HTTPS checks the server
//! against the system's CA certificates (Debian's `ca-certificates`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The largest document accepted.
const MAX_BODY: usize = 1024 * 1024;
/// Where Debian keeps the system's CA certificates.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// GETs `uri` within `timeout`; the body as text, or why not.
pub async fn get(uri: &str, timeout: Duration) -> Result<String, String> {
    match tokio::time::timeout(timeout, fetch(uri)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn fetch(uri: &str) -> Result<String, String> {
    let parsed: Uri = uri.parse().map_err(|e| format!("not a URL: {e}"))?;
    let https = match parsed.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http and https URLs are fetched".into()),
    };
    let host = parsed.host().ok_or("the URL has no host")?.to_string();
    let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let path = parsed
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let authority = parsed.authority().map_or(host.clone(), |a| a.to_string());
    if https {
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("`{host}`: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(client_config()?);
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        exchange(TokioIo::new(tls), &authority, &path).await
    } else {
        exchange(TokioIo::new(tcp), &authority, &path).await
    }
}

async fn exchange<I>(io: I, authority: &str, path: &str) -> Result<String, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, "weft-control")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("answered {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8 text".to_string())
}

/// A TLS client trusting the system's CA certificates.
fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(SYSTEM_ROOTS)
        .map_err(|e| format!("reading {SYSTEM_ROOTS} (install ca-certificates): {e}"))?;
    for cert in certs.flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("no CA certificates in {SYSTEM_ROOTS}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
