//! The admin endpoint's host routes, for a mesh of several hosts (the etcd store):
//!
//! - `POST /host-records/{name}` with `{"block": "10.213.N.0/24", "address": "IP"}` (both
//!   optional): the host joins, and gets its workload block ([`crate::etcd::hosts`]); 409
//!   when the block is another host's or the host holds another, 400 for a bad name, block
//!   or address;
//! - `GET /host-records`: every host and its block.
//!
//! Both need the admin token. (`GET /hosts` is the hosts file of every Service's VIP.)

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::etcd::hosts::{self, Block, HostError};
use crate::etcd::Etcd;
use crate::http_response::{respond, text};

const MAX_BODY: usize = 4096;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    #[serde(default)]
    block: Option<String>,
    #[serde(default)]
    address: Option<std::net::IpAddr>,
}

/// Answers the host routes (the caller checked the admin token); `None` for other paths.
pub async fn handle(etcd: Option<&Etcd>, req: Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path().to_string();
    let name = match path.strip_prefix("/host-records") {
        Some("") => None,
        Some(rest) => Some(rest.strip_prefix('/')?.to_string()),
        None => return None,
    };
    let Some(etcd) = etcd else {
        return Some(text(
            StatusCode::CONFLICT,
            "hosts join a mesh whose control plane keeps it in etcd (`weft control --store etcd`)\n".into(),
        ));
    };
    Some(match (req.method().clone(), name) {
        (Method::GET, None) => match hosts::list(etcd).await {
            Ok(list) => respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
            ),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        },
        (Method::POST, Some(name)) => join(etcd, &name, req).await,
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /host-records or POST /host-records/{name}\n".into(),
        ),
    })
}

async fn join(etcd: &Etcd, name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request (at most {MAX_BODY} bytes): {e}\n"),
            )
        }
    };
    let asked: JoinRequest = if body.iter().all(u8::is_ascii_whitespace) {
        JoinRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("the request: {e}\n")),
        }
    };
    let block = match asked.block.as_deref().map(Block::parse).transpose() {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    match hosts::join(etcd, name, block, asked.address).await {
        Ok(record) => respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&record).unwrap_or_default() + "\n",
        ),
        Err(e) => {
            let status = match &e {
                HostError::Invalid(_) => StatusCode::BAD_REQUEST,
                HostError::Taken { .. }
                | HostError::AlreadyHolds { .. }
                | HostError::Full(_)
                | HostError::Outside { .. } => StatusCode::CONFLICT,
                HostError::Etcd(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::warn!(host = %name, error = %e, "host join refused");
            text(status, format!("{e}\n"))
        }
    }
}
