//! The admin endpoint's resource routes, used by `weft apply` and `weft delete` when the
//! control plane keeps the mesh in etcd:
//!
//! - `POST /resources[?dryRun=1]` with `{"files": [{"name": ..., "text": ...}]}`: checks the
//!   stored resources with the files' as a whole, then stores each resource under its own key
//!   ([`crate::etcd::apply`]). 200 and a line per resource (`HTTPRoute shop/reviews
//!   configured`); 422 and every error (file:line) when the mesh would be invalid.
//! - `POST /resources/delete[?dryRun=1]` with `{"resources": ["HTTPRoute/shop/reviews"]}`:
//!   removes them, if what remains is valid.
//! - `GET /resources`: the stored resources' keys.
//!
//! With the directory store these answer 409: the directory is the place to edit. Changes
//! need the admin token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::etcd::apply::{self, File, Put};
use crate::etcd::Etcd;
use crate::http_response::{query, respond, text};
use crate::store::Store;

/// Largest change accepted in one request.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Tries when another change moves the resources' version between the check and the write.
const TRIES: u32 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    files: Vec<File>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    resources: Vec<String>,
}

/// Answers the resource routes; `None` when the path is not one of them. `authorized` says
/// whether the request carries the admin token.
pub async fn handle(
    store: &Arc<Store>,
    etcd: Option<&Etcd>,
    authorized: bool,
    req: Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let path = req.uri().path().to_string();
    if path != "/resources" && path != "/resources/delete" {
        return None;
    }
    if !authorized {
        return Some(text(
            StatusCode::UNAUTHORIZED,
            "send the control plane's admin token as `Authorization: Bearer <token>`\n".into(),
        ));
    }
    let Some(etcd) = etcd else {
        return Some(text(
            StatusCode::CONFLICT,
            format!(
                "this control plane reads its resources from the directory {}: edit the files there (weft apply and weft delete need `weft control --store etcd`)\n",
                store.status().config_dir
            ),
        ));
    };
    let dry_run = query(&req, "dryRun").as_deref() == Some("1");
    Some(match (req.method().clone(), path.as_str()) {
        (Method::GET, "/resources") => {
            let s = store.clone();
            let keys = tokio::task::spawn_blocking(move || s.stored_keys())
                .await
                .unwrap_or_default();
            text(StatusCode::OK, keys.join("\n") + "\n")
        }
        (Method::POST, "/resources") => match body::<ApplyBody>(req).await {
            Ok(b) => apply_files(store, etcd, b.files, dry_run).await,
            Err(resp) => resp,
        },
        (Method::POST, "/resources/delete") => match body::<DeleteBody>(req).await {
            Ok(b) => delete(store, etcd, b.resources, dry_run).await,
            Err(resp) => resp,
        },
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /resources, POST /resources or POST /resources/delete\n".into(),
        ),
    })
}

async fn body<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Full<Bytes>>> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the change (at most {MAX_BODY} bytes): {e}\n"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("malformed change: {e}\n")))
}

async fn apply_files(
    store: &Arc<Store>,
    etcd: &Etcd,
    files: Vec<File>,
    dry_run: bool,
) -> Response<Full<Bytes>> {
    let puts = match apply::puts(etcd, &files) {
        Ok(p) => p,
        Err(errors) => return invalid(&errors),
    };
    let current = {
        let s = store.clone();
        let keys: Vec<String> = puts.iter().map(|p| p.key.clone()).collect();
        match tokio::task::spawn_blocking(move || s.stored_values(&keys)).await {
            Ok(values) => values,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    };
    // What each resource becomes; unchanged ones are not written again.
    let mut lines = Vec::new();
    let mut changed: Vec<Put> = Vec::new();
    for (put, now) in puts.into_iter().zip(current) {
        let verb = match now {
            None => "created",
            Some(v) if v == put.value => "unchanged",
            Some(_) => "configured",
        };
        lines.push(format!("{} {verb}", put.what));
        if verb != "unchanged" {
            changed.push(put);
        }
    }
    commit(store, etcd, changed, Vec::new(), dry_run, lines).await
}

async fn delete(
    store: &Arc<Store>,
    etcd: &Etcd,
    resources: Vec<String>,
    dry_run: bool,
) -> Response<Full<Bytes>> {
    let stored = {
        let s = store.clone();
        tokio::task::spawn_blocking(move || s.stored_keys())
            .await
            .unwrap_or_default()
    };
    let mut keys = Vec::new();
    let mut missing = Vec::new();
    let mut lines = Vec::new();
    for r in &resources {
        let key = format!("{}{}", etcd.keys.resources(), r.trim_matches('/'));
        if stored.contains(&key) {
            lines.push(format!("{} deleted", r.replacen('/', " ", 1)));
            keys.push(key);
        } else {
            missing.push(format!(
                "{r}: no such resource is stored (GET /resources lists them)"
            ));
        }
    }
    if !missing.is_empty() {
        return text(StatusCode::NOT_FOUND, missing.join("\n") + "\n");
    }
    commit(store, etcd, Vec::new(), keys, dry_run, lines).await
}

/// Checks the change against the store and writes it, again when another change went first.
async fn commit(
    store: &Arc<Store>,
    etcd: &Etcd,
    puts: Vec<Put>,
    deletes: Vec<String>,
    dry_run: bool,
    lines: Vec<String>,
) -> Response<Full<Bytes>> {
    for attempt in 0..TRIES {
        let kv: Vec<(String, String)> = puts
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        let (s, d) = (store.clone(), deletes.clone());
        let checked = tokio::task::spawn_blocking(move || s.check_change(&kv, &d)).await;
        let (version, warnings) = match checked {
            Ok(Ok(v)) => v,
            Ok(Err(errors)) => return invalid(&errors),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        };
        let mut out = lines.join("\n") + "\n";
        for w in &warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        if dry_run {
            return text(StatusCode::OK, format!("{out}(dry run: nothing written)\n"));
        }
        if puts.is_empty() && deletes.is_empty() {
            return text(StatusCode::OK, out);
        }
        match apply::commit(etcd, version, puts.clone(), deletes.clone()).await {
            Ok(true) => return text(StatusCode::OK, out),
            // Another change went first (or this replica has not seen the last one yet).
            Ok(false) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            // A member died and etcd is electing a leader, or this replica's connection broke:
            // check again and write again in a moment (a batch that went in moved the
            // version, so the check sees it).
            Err(e) if e.is_transient() && attempt + 1 < TRIES => {
                tracing::warn!(error = %e, "etcd briefly unavailable; trying the change again");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            Err(e) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e} (nothing was written unless it says otherwise)\n"),
                )
            }
        }
    }
    text(
        StatusCode::CONFLICT,
        "the stored resources kept changing while this change was checked; apply it again\n".into(),
    )
}

fn invalid(errors: &[String]) -> Response<Full<Bytes>> {
    respond(
        StatusCode::UNPROCESSABLE_ENTITY,
        "text/plain; charset=utf-8",
        format!(
            "the mesh would be invalid with this change; nothing was written:\n{}\n",
            errors.join("\n")
        ),
    )
}
