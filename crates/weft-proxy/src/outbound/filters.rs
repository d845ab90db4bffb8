//! The filter stage: a rule's Gateway API filters, then the chosen backend's, applied to the
//! request in order. A redirect answers the request itself; response header modifiers are
//! collected and applied to whatever answer comes back; mirrors send a copy of the head.

use std::net::SocketAddr;

use http::header::HeaderValue;
use http::{Request, Response};
use weft_api::view::{FilterView, HeaderModifierView};

use super::mirror;
use super::plan::authority_of;
use crate::h1::verbatim;
use crate::http::{filters, Body};
use crate::state::{Filter, ServicePort};

/// Response header modifiers to apply to the answer, in the order the filters named them.
#[derive(Default)]
pub struct ResponseMods(Vec<HeaderModifierView>);

impl ResponseMods {
    pub fn apply(&self, resp: &mut Response<Body>) {
        if self.0.is_empty() {
            return;
        }
        verbatim::materialize(resp);
        for m in &self.0 {
            filters::modify_headers(resp.headers_mut(), m);
        }
    }
}

/// Applies a rule's filters; returns the answer when one of them (a redirect) answers.
pub fn apply_rule(
    list: &[Filter],
    port: &ServicePort,
    req: &mut Request<Body>,
    prefix: Option<&str>,
    mods: &mut ResponseMods,
    client: SocketAddr,
) -> Option<Response<Body>> {
    for f in list {
        match f {
            Filter::Plain(FilterView::RequestRedirect(r)) => {
                let authority =
                    authority_of(req).map_or_else(|| port.authority.clone(), str::to_string);
                let host = crate::state::split_authority(&authority)
                    .map(|(h, _)| h.to_string())
                    .unwrap_or(authority);
                return Some(filters::redirect(req.uri(), &host, port.port, r, prefix));
            }
            Filter::Plain(FilterView::UrlRewrite(r)) => {
                let (uri, host) = filters::rewrite(req.uri(), r, prefix);
                if let Some(uri) = uri {
                    *req.uri_mut() = uri;
                }
                if let Some(host) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
                    set_authority(req, host);
                }
            }
            other => apply_common(other, req, mods, client),
        }
    }
    None
}

/// Applies a backend's own filters (header modifiers and mirrors only, per the spec).
pub fn apply_backend(
    list: &[Filter],
    req: &mut Request<Body>,
    mods: &mut ResponseMods,
    client: SocketAddr,
) {
    for f in list {
        apply_common(f, req, mods, client);
    }
}

fn apply_common(f: &Filter, req: &mut Request<Body>, mods: &mut ResponseMods, client: SocketAddr) {
    match f {
        Filter::Plain(FilterView::RequestHeaderModifier(m)) => {
            filters::modify_headers(req.headers_mut(), m)
        }
        Filter::Plain(FilterView::ResponseHeaderModifier(m)) => mods.0.push(m.clone()),
        Filter::Mirror {
            backend: Some(backend),
            per_million,
        } if fastrand::u32(..1_000_000) < *per_million => {
            mirror::send(backend.clone(), req, client);
        }
        _ => {}
    }
}

fn set_authority<B>(req: &mut Request<B>, host: HeaderValue) {
    if req.uri().authority().is_some() {
        let mut parts = req.uri().clone().into_parts();
        if let Ok(a) = host.to_str().unwrap_or("").parse() {
            parts.authority = Some(a);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req.headers_mut().insert(http::header::HOST, host);
}
