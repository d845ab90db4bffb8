//! HTTP/1.1 Upgrade: a WebSocket handshake (`Upgrade: websocket` with
//! `Sec-WebSocket-Key`) or any other protocol token answers `101 Switching
//! Protocols`, then the connection echoes raw bytes. Frames are not parsed:
//! a client's masked WebSocket frame comes back byte for byte. A `CONNECT`
//! request likewise answers `200` and echoes the tunnel's bytes.

use std::net::SocketAddr;

use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;

use crate::body::EchoBody;
use crate::shutdown::Shutdown;
use crate::{tcp, ws_accept};

/// The protocol a request asks to switch to.
#[derive(Debug)]
pub(crate) enum Upgrade {
    /// `CONNECT host:port`: a `200` and the tunnel echoes.
    Connect,
    WebSocket,
    /// Any other token (except `h2c`, which is ignored like most servers do).
    Other(HeaderValue),
}

/// Whether `req` asks for an upgrade this server performs.
pub(crate) fn requested<B>(req: &Request<B>) -> Option<Upgrade> {
    if req.method() == Method::CONNECT {
        return Some(Upgrade::Connect);
    }
    if req.version() != Version::HTTP_11 || !has_token(req.headers(), CONNECTION, "upgrade") {
        return None;
    }
    let value = req.headers().get(UPGRADE)?;
    let first = value.to_str().ok()?.split(',').next()?.trim();
    if first.is_empty() || first.eq_ignore_ascii_case("h2c") {
        return None;
    }
    if first.eq_ignore_ascii_case("websocket") {
        return Some(Upgrade::WebSocket);
    }
    HeaderValue::from_str(first).ok().map(Upgrade::Other)
}

/// Answers the upgrade and, once hyper hands the connection over, echoes on it.
pub(crate) fn accept<B>(
    mut req: Request<B>,
    upgrade: Upgrade,
    peer: SocketAddr,
    shutdown: Shutdown,
) -> Response<EchoBody> {
    let mut resp = Response::new(EchoBody::empty());
    let headers = resp.headers_mut();
    let switching = !matches!(upgrade, Upgrade::Connect);
    let what = match upgrade {
        Upgrade::Connect => "connect",
        Upgrade::WebSocket => {
            let Some(key) = req
                .headers()
                .get(SEC_WEBSOCKET_KEY)
                .and_then(|k| k.to_str().ok())
            else {
                return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
            };
            if req
                .headers()
                .get(SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v.as_bytes() != b"13")
            {
                let mut resp = plain(
                    StatusCode::UPGRADE_REQUIRED,
                    "unsupported WebSocket version\n",
                );
                resp.headers_mut()
                    .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
                return resp;
            }
            let Ok(accept) = HeaderValue::from_str(&ws_accept::accept_key(key)) else {
                return plain(StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key\n");
            };
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
            "websocket"
        }
        Upgrade::Other(token) => {
            headers.insert(UPGRADE, token);
            "upgrade"
        }
    };
    if switching {
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => tcp::echo_stream(TokioIo::new(upgraded), peer, what, shutdown).await,
            Err(error) => tracing::debug!(%peer, %error, "echo: upgrade failed"),
        }
    });
    resp
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn plain(status: StatusCode, body: &'static str) -> Response<EchoBody> {
    let mut resp = Response::new(EchoBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
