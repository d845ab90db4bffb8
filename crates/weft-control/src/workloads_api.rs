//! The admin endpoint's workload routes, used by `weft run` and `weft up`:
//!
//! - `PUT /workloads/{namespace}/{name}[?token=1]`: register or renew a workload (a JSON
//!   [`Registration`]); with `token=1` the answer carries a single-use join token for the
//!   workload's proxy. A registration that would make the mesh invalid gets 409 and the
//!   validator's errors.
//! - `DELETE /workloads/{namespace}/{name}[?owner=ID]`: deregister.
//! - `GET /workloads`: the registrations.
//! - `GET /hosts?namespace=NS`: a hosts file naming every Service's VIP (`svc.ns`,
//!   `svc.ns.svc.<domain>`, and the short `svc` for Services of NS), for network namespaces'
//!   `/etc/netns/<name>/hosts`.
//!
//! Changing routes need the admin token (the state directory's `admin-token`, readable only by
//! its owner) as `Authorization: Bearer <token>`: the admin listener is on loopback, but any
//! local user can reach loopback, and a registration mints join tokens. A joined host may
//! send its host credential instead ([`crate::etcd::host_credentials`]); it changes only that
//! host's workloads: registrations name the host (and must have addresses of its block), and
//! a workload another host registered is refused (403).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::etcd::hosts::{self, HostError};
use crate::etcd::leases::{self, LeaseError};
use crate::etcd::Etcd;
use crate::http_response::{query, respond, text};
use crate::registry::Registration;
use crate::store::{RegisterError, Store};
use crate::tokens::Tokens;

/// Largest registration body accepted.
const MAX_BODY: usize = 64 * 1024;
/// Tries of a registration that meets a transient etcd error.
const REGISTER_TRIES: u32 = 3;
/// How long a join token minted at registration stays usable.
const JOIN_TOKEN_TTL: Duration = Duration::from_secs(600);

/// Who asks for a change, as the admin endpoint authenticated them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The admin token: any workload.
    Admin,
    /// A joined host's credential: that host's workloads only.
    Host(String),
}

impl Caller {
    /// The host whose workloads alone this caller may change; `None` for the admin.
    fn host(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Host(h) => Some(h),
        }
    }
}

/// Answers the workload routes; `None` when the path is not one of them. Registrations go
/// into `store`, join tokens come from `tokens`, and changes need a `caller` (`None`: the
/// request had no valid credential).
pub async fn handle(
    store: &Arc<Store>,
    tokens: &Tokens,
    etcd: Option<&Etcd>,
    caller: Option<Caller>,
    req: Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path().to_string();
    if path == "/hosts" && req.method() == Method::GET {
        let ns = query(&req, "namespace").unwrap_or_else(|| weft_api::DEFAULT_NAMESPACE.into());
        return Some(text(
            StatusCode::OK,
            hosts_file(&store.current().model, &ns),
        ));
    }
    if path == "/workloads" && req.method() == Method::GET {
        // The registry shares a lock with rebuilds: read it off the async threads.
        let store = store.clone();
        let list = tokio::task::spawn_blocking(move || store.registrations())
            .await
            .unwrap_or_default();
        let list = serde_json::Value::from(list);
        return Some(respond(
            StatusCode::OK,
            "application/json",
            list.to_string() + "\n",
        ));
    }
    let rest = path.strip_prefix("/workloads/")?;
    let Some((ns, name)) = rest.split_once('/').filter(|(_, n)| !n.contains('/')) else {
        return Some(text(
            StatusCode::NOT_FOUND,
            "use /workloads/{namespace}/{name}\n".into(),
        ));
    };
    let (ns, name) = (ns.to_string(), name.to_string());
    let Some(caller) = caller else {
        return Some(crate::admin::unauthorized(&req));
    };
    Some(match req.method().clone() {
        Method::PUT => register(store, tokens, etcd, &caller, req, ns, name).await,
        Method::DELETE if etcd.is_some() => {
            let owner = query(&req, "owner");
            let etcd = etcd?;
            let only = caller.host();
            match leases::deregister(&etcd.client, &etcd.keys, &ns, &name, owner.as_deref(), only)
                .await
            {
                Ok(()) => text(StatusCode::OK, "deregistered\n".into()),
                Err(LeaseError::OtherHost(e)) => refuse_other_host(&ns, &name, &e),
                Err(LeaseError::Refused(e)) => text(error_status(&e), format!("{e}\n")),
                Err(LeaseError::Etcd(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
            }
        }
        Method::DELETE => {
            let owner = query(&req, "owner");
            let store = store.clone();
            let result =
                tokio::task::spawn_blocking(move || store.deregister(&ns, &name, owner.as_deref()))
                    .await;
            match result {
                Ok(Ok(())) => text(StatusCode::OK, "deregistered\n".into()),
                Ok(Err(e)) => text(error_status(&e), format!("{e}\n")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "use PUT or DELETE\n".into()),
    })
}

/// 403 for a host changing a workload that is not its own, logged.
fn refuse_other_host(ns: &str, name: &str, why: &str) -> Response<Full<Bytes>> {
    tracing::warn!(workload = %format!("{ns}/{name}"), reason = %why, "refused a host's change to a workload");
    text(StatusCode::FORBIDDEN, format!("{why}\n"))
}

async fn register(
    store: &Arc<Store>,
    tokens: &Tokens,
    etcd: Option<&Etcd>,
    caller: &Caller,
    req: Request<Incoming>,
    ns: String,
    name: String,
) -> Response<Full<Bytes>> {
    let want_token = query(&req, "token").as_deref() == Some("1");
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the registration (at most {MAX_BODY} bytes): {e}\n"),
            )
        }
    };
    let mut registration: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("invalid registration: {e}\n"),
            )
        }
    };
    // A host registers its own workloads: the registration names it, whatever was sent.
    if let Some(host) = caller.host() {
        match &registration.host {
            Some(named) if named != host => {
                let why =
                    format!("host {host} may register only its own workloads, not host {named}'s");
                return refuse_other_host(&ns, &name, &why);
            }
            _ => registration.host = Some(host.to_string()),
        }
    }
    // With etcd: checked here, written there (the watch brings it to every replica).
    if let Some(etcd) = etcd {
        // A workload of a joined host must have an address of that host's block, and its
        // tunnel is the host's, as the host's record says, whatever the runner sent.
        registration.tunnel = None;
        if let Some(host) = &registration.host {
            match hosts::check_address(etcd, host, registration.address).await {
                Ok(record) => {
                    registration.tunnel = record
                        .address
                        .map(|a| std::net::SocketAddr::new(a, weft_api::TUNNEL_PORT));
                }
                Err(e) => {
                    tracing::warn!(workload = %format!("{ns}/{name}"), error = %e, "registration refused");
                    let status = match e {
                        HostError::Etcd(_) => StatusCode::SERVICE_UNAVAILABLE,
                        _ => StatusCode::CONFLICT,
                    };
                    return text(status, format!("{e}\n"));
                }
            }
        }
        let (s, n, w, r) = (
            store.clone(),
            ns.clone(),
            name.clone(),
            registration.clone(),
        );
        let checked = tokio::task::spawn_blocking(move || s.check_registration(&n, &w, r)).await;
        match checked {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return text(error_status(&e), format!("{e}\n")),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
        // A member that died (a leader election, a broken connection) fails one try; the
        // next, a moment later, usually goes through. Trying again is safe: a registration
        // that went in the first time is found and renewed.
        let mut tries = 0u32;
        loop {
            tries += 1;
            let only = caller.host();
            match leases::register(&etcd.client, &etcd.keys, &ns, &name, &registration, only).await
            {
                Ok(_) => break,
                Err(LeaseError::OtherHost(e)) => return refuse_other_host(&ns, &name, &e),
                Err(LeaseError::Refused(e)) => return text(error_status(&e), format!("{e}\n")),
                Err(LeaseError::Etcd(e)) if e.is_transient() && tries < REGISTER_TRIES => {
                    tracing::warn!(error = %e, workload = %format!("{ns}/{name}"), "etcd briefly unavailable; registering again");
                    tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                }
                Err(LeaseError::Etcd(e)) => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
                }
            }
        }
    }
    if etcd.is_none() {
        registration.tunnel = None;
        if let Some(host) = &registration.host {
            return text(
                StatusCode::CONFLICT,
                format!("host {host}: hosts join a mesh whose control plane keeps it in etcd (`weft control --store etcd`)\n"),
            );
        }
        let (s, n, w) = (store.clone(), ns.clone(), name.clone());
        match tokio::task::spawn_blocking(move || s.register(&n, &w, registration)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return text(error_status(&e), format!("{e}\n")),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
    let token = if want_token {
        match tokens.create(&ns, &name, JOIN_TOKEN_TTL, false).await {
            Ok(t) => Some(t),
            Err(e) => {
                let e = RegisterError::Invalid(vec![format!("cannot create a join token: {e}")]);
                return text(error_status(&e), format!("{e}\n"));
            }
        }
    } else {
        None
    };
    let body = serde_json::json!({
        "generation": store.status().generation,
        "joinToken": token,
    });
    respond(StatusCode::OK, "application/json", body.to_string() + "\n")
}

fn error_status(e: &RegisterError) -> StatusCode {
    use crate::registry::RegistryError as R;
    match e {
        RegisterError::Registry(R::Invalid(_)) => StatusCode::BAD_REQUEST,
        RegisterError::Registry(R::Unknown(_)) => StatusCode::NOT_FOUND,
        RegisterError::Registry(R::Full) => StatusCode::SERVICE_UNAVAILABLE,
        RegisterError::Registry(R::Taken(..))
        | RegisterError::Invalid(_)
        | RegisterError::Config(_) => StatusCode::CONFLICT,
    }
}

/// `/etc/hosts` lines for every Service with a VIP, as seen from namespace `ns`.
pub fn hosts_file(model: &weft_api::model::Model, ns: &str) -> String {
    let domain = &model.mesh.cluster_domain;
    let mut out = String::from(
        "# Written by Weft: the mesh's Services. Changes are overwritten.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for svc in model.services.values() {
        let Some(vip) = svc.vip else { continue };
        let (name, svc_ns) = (&svc.name, &svc.namespace);
        let _ = write!(
            out,
            "{vip}\t{name}.{svc_ns}.svc.{domain} {name}.{svc_ns}.svc {name}.{svc_ns}"
        );
        if svc_ns == ns {
            let _ = write!(out, " {name}");
        }
        out.push('\n');
    }
    out
}
