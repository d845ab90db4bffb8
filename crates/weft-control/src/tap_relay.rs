//! Taps relayed to `weft tap`: `GET /proxies/{namespace}/{workload}/tap?...` streams one
//! proxy's tap, `GET /services/{namespace}/{name}/tap?...` the taps of every proxy in front of
//! the Service's workloads, merged line by line. The query (filters and limits) goes to each
//! proxy as it came; the proxies enforce the limits, and each proxy's stream ends with its own
//! `{"end": ...}` line. A proxy that cannot be reached adds an `{"error": ...}` line instead
//! of failing the rest.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::admin::Admin;
use crate::http_response::{boxed, text, AdminResponse};
use crate::proxies_api::PROXY_TIMEOUT;
use crate::proxy_route::ProxyRoute;

/// Lines buffered between the proxies and a slow reader; past it the proxies' streams wait.
const QUEUE: usize = 256;

/// Relays the taps of `proxies` (`namespace/workload` and how to reach its admin endpoint)
/// as one stream.
pub async fn relay(
    admin: &Admin,
    proxies: Vec<(String, ProxyRoute)>,
    req: &Request<Incoming>,
) -> AdminResponse {
    let path = match req.uri().query() {
        Some(q) => format!("/tap?{q}"),
        None => "/tap".to_string(),
    };
    if proxies.is_empty() {
        return boxed(text(
            StatusCode::NOT_FOUND,
            "no meshed workload to tap\n".into(),
        ));
    }
    let mut opened = Vec::new();
    for (node, route) in &proxies {
        match open(admin, route, &path).await {
            Ok(body) => opened.push((node.clone(), body)),
            // One proxy: its refusal is the answer. Several: the others still stream.
            Err((status, why)) if proxies.len() == 1 => {
                return boxed(text(status, format!("{node} ({route}): {why}\n")))
            }
            Err((_, why)) => {
                tracing::warn!(%node, %route, %why, "cannot tap a proxy");
                opened.push((node.clone(), error_body(node, &why)));
            }
        }
    }
    tracing::info!(
        proxies = opened.len(),
        query = req.uri().query().unwrap_or(""),
        "tap relayed"
    );
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(QUEUE);
    for (_, mut body) in opened {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                if tx.send(frame).await.is_err() {
                    return; // the caller went away
                }
            }
        });
    }
    let mut out = http::Response::new(StreamBody::new(ReceiverStream::new(rx)).boxed_unsync());
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    out
}

type Lines = crate::http_response::AdminBody;

async fn open(
    admin: &Admin,
    route: &ProxyRoute,
    path: &str,
) -> Result<Lines, (StatusCode, String)> {
    let token = Some(admin.admin_token.as_str());
    let resp = crate::proxy_admin::open(&admin.dialer, route, path, token, PROXY_TIMEOUT)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let status = resp.status();
    if status == StatusCode::OK {
        return Ok(resp.into_body().boxed_unsync());
    }
    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
    let why = body
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    // The proxy's refusal of the query (400, 429) passes on; anything else is a gateway error.
    let status = if status.is_client_error() && status != StatusCode::UNAUTHORIZED {
        status
    } else {
        StatusCode::BAD_GATEWAY
    };
    Err((status, format!("the proxy answered: {why}")))
}

/// A one-line stream saying why a proxy is missing from the tap.
fn error_body(node: &str, why: &str) -> Lines {
    let line = serde_json::json!({"workload": node, "error": why}).to_string() + "\n";
    http_body_util::Full::new(Bytes::from(line))
        .map_err(|never| match never {})
        .boxed_unsync()
}
