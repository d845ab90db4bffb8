//! The admin endpoint's host routes, for a mesh of several hosts (the etcd store):
//!
//! - `POST /host-records/{name}` with `{"block": "10.213.N.0/24", "address": "IP"}` (both
//!   optional): the host joins, and gets its workload block ([`crate::etcd::hosts`]) and a
//!   credential for registering its workloads ([`crate::etcd::host_credentials`]); 409
//!   when the block is another host's or the host holds another, 400 for a bad name, block
//!   or address;
//! - `GET /host-records`: every host and its block;
//! - `POST /host-tokens/{name}?ttl=SECONDS`: a single-use join token for host `name` (default
//!   one hour), for a host that has no admin token: it joins with
//!   `Authorization: Bearer <join token>` instead. A used, expired, forged or other host's
//!   token is refused (401, naming which) and logged.
//!
//! The admin token is needed for everything else. (`GET /hosts` is the hosts file of every
//! Service's VIP.)

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::etcd::host_credentials;
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

/// The join tokens of hosts live among the workloads' join tokens, under a namespace no
/// workload can have (not a DNS label).
const HOST_TOKENS: &str = "weft.dev/hosts";
const DEFAULT_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Who is asking: the admin (its token checked by the caller), or a host with only a join
/// token (checked here, for its join only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    JoinToken,
}

/// Answers the host routes; `None` for other paths.
pub async fn handle(
    etcd: Option<&Etcd>,
    caller: Caller,
    req: Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix("/host-tokens/") {
        let etcd = etcd?;
        if caller != Caller::Admin || req.method() != Method::POST {
            return Some(text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST /host-tokens/{name} with the admin token\n".into(),
            ));
        }
        return Some(create_token(etcd, name, &req).await);
    }
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
        (Method::POST, Some(name)) => {
            if caller == Caller::JoinToken {
                if let Err(refusal) = redeem(etcd, &name, &req).await {
                    return Some(refusal);
                }
            }
            join(etcd, &name, req).await
        }
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
        Ok(record) => answer_join(etcd, record).await,
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

/// The host's record and a new credential for registering its workloads. The join itself is
/// done (and idempotent): when the credential cannot be stored, joining again gets one.
async fn answer_join(etcd: &Etcd, record: hosts::HostRecord) -> Response<Full<Bytes>> {
    let credential = match host_credentials::issue(etcd, &record.name).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(host = %record.name, error = %e, "host joined, but its credential could not be stored");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "host {} joined, but its credential could not be stored: {e}; join again\n",
                    record.name
                ),
            );
        }
    };
    let mut answer = serde_json::to_value(&record).unwrap_or_default();
    answer["credential"] = serde_json::Value::from(credential);
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&answer).unwrap_or_default() + "\n",
    )
}

/// `POST /host-tokens/{name}`: a single-use join token for host `name`.
async fn create_token(etcd: &Etcd, name: &str, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !weft_api::registration::is_dns_label(name) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("`{name}` is not a host name (lowercase letters, digits, '-')\n"),
        );
    }
    let ttl = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ttl=")))
        .map(|v| v.parse::<u64>().map(std::time::Duration::from_secs));
    let ttl = match ttl {
        None => DEFAULT_TOKEN_TTL,
        Some(Ok(t)) if !t.is_zero() && t.as_secs() <= 7 * 24 * 3600 => t,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "ttl: seconds, from 1 to 604800 (a week)\n".into(),
            )
        }
    };
    match crate::etcd::tokens::create(etcd, HOST_TOKENS, name, ttl, false).await {
        Ok(token) => {
            tracing::info!(host = %name, ttl_s = ttl.as_secs(), "host join token created");
            text(StatusCode::OK, format!("{token}\n"))
        }
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// Uses up the join token a host without the admin token joins with; the refusal otherwise.
async fn redeem(
    etcd: &Etcd,
    name: &str,
    req: &Request<Incoming>,
) -> Result<(), Response<Full<Bytes>>> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(token) = weft_identity::bearer(header) else {
        return Err(crate::admin::unauthorized(req));
    };
    let now = std::time::SystemTime::now();
    match crate::etcd::tokens::redeem(etcd, token, HOST_TOKENS, name, now).await {
        Ok(()) => Ok(()),
        Err(crate::tokens::TokenError::Store(e)) => {
            Err(text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")))
        }
        Err(e) => {
            tracing::warn!(host = %name, error = %e, "host join refused: its join token");
            Err(text(StatusCode::UNAUTHORIZED, format!("{e}\n")))
        }
    }
}
