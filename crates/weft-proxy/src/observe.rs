//! What watches one request as it goes: its access-log line (also what a tap shows) and its
//! trace span, each present only when configured or tapped. The stages tell it what they
//! decided (the route, the authorization, the endpoint that answered) without knowing who
//! listens; the handler's edge finishes it with the answer.
//!
//! With nothing configured and no tap open, every call here is a check of two `None`s: a
//! request that nobody watches pays for nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};

use crate::access_log::{AccessLog, Entry};
use crate::error::WEFT_ERROR;
use crate::h1::verbatim;
use crate::http::on_end::{self, grpc_status_in_head};
use crate::http::Body;
use crate::metrics::Destination;
use crate::state::Endpoint;
use crate::tap::{Tap, Tapped};
use crate::trace::{Kind, OpenSpan, Tracer};

#[derive(Default)]
pub struct Observed {
    // Boxed: handlers move an `Observed` through their stages, and an unwatched request
    // should move four words, not the few hundred bytes of a log entry and a span.
    log: Option<Box<Entry>>,
    span: Option<Box<OpenSpan>>,
    /// The request headers a tap shows (credentials redacted), when a tap was open as the
    /// request arrived.
    tapped: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Who answered (the endpoint of the last try), for the metrics' destination labels:
    /// kept whether or not anything else watches.
    answered: Option<Arc<Destination>>,
}

/// Where a request came from, as the inbound side knows it.
pub struct Peer<'a> {
    pub principal: &'a str,
    pub mtls: bool,
}

impl Observed {
    /// Starts watching a request: its log line when `logging` or a tap is open, its span when
    /// `tracer` samples it (which also writes the trace context the next hop sees into `req`).
    pub fn start(
        logging: bool,
        tap: &Tap,
        tracer: Option<&Arc<Tracer>>,
        req: &mut Request<Body>,
        client: SocketAddr,
        grpc: bool,
        peer: Option<Peer<'_>>,
    ) -> Observed {
        let tapped = tap
            .is_active()
            .then(|| Box::new(crate::tap::shown_headers(req.headers())));
        let log = (logging || tapped.is_some()).then(|| {
            Box::new(match &peer {
                Some(p) => Entry::inbound(req, client, p.principal, p.mtls),
                None => Entry::outbound(req, client),
            })
        });
        let kind = if peer.is_some() {
            Kind::Server
        } else {
            Kind::Client
        };
        let span = tracer
            .and_then(|t| t.start(req.headers_mut(), kind))
            .map(|mut span| {
                span.describe(req, client, grpc);
                if let Some(p) = &peer {
                    span.set("weft.peer.principal", p.principal.to_string());
                    span.set("weft.mtls", p.mtls);
                }
                Box::new(span)
            });
        Observed {
            log,
            span,
            tapped,
            answered: None,
        }
    }

    /// Nothing watches: the request's stages may skip what they would only report.
    pub fn is_idle(&self) -> bool {
        self.log.is_none() && self.span.is_none()
    }

    /// The Service and route that took the request.
    pub fn route(&mut self, service: &str, route: impl FnOnce() -> String) {
        if self.is_idle() {
            return;
        }
        let route = route();
        if let Some(span) = self.span.as_mut() {
            span.set("weft.destination.service", service.to_string());
            span.set("weft.route", route.clone());
        }
        if let Some(log) = self.log.as_mut() {
            log.route(service, &route);
        }
    }

    /// The policy and rule that allowed the request.
    pub fn authz(&mut self, explain: impl FnOnce() -> String) {
        if self.is_idle() {
            return;
        }
        let decided = explain();
        if let Some(span) = self.span.as_mut() {
            span.set("weft.authz.decision", "allow");
            span.set("weft.authz.policy", decided.clone());
        }
        if let Some(log) = self.log.as_mut() {
            log.authz(decided);
        }
    }

    /// The endpoint a try went to (the last one is the one that answered); `n` counts from 0.
    pub fn upstream(&mut self, ep: &Endpoint, n: u32) {
        self.answered = Some(ep.destination.clone());
        if let Some(span) = self.span.as_mut() {
            span.upstream(ep, n);
        }
        if let Some(log) = self.log.as_mut() {
            let principal = ep.peer.as_ref().and_then(|p| p.identity.as_ref());
            log.upstream(
                format!("{}/{}", ep.namespace, ep.workload),
                principal.map(|id| id.to_string()),
            );
        }
    }

    /// The endpoint that answered, once a try went to one.
    pub fn answered(&self) -> Option<&Arc<Destination>> {
        self.answered.as_ref()
    }

    /// Finishes the log line and the span with the answer. A gRPC call whose status is still
    /// to come ends its span when its body ends.
    pub fn finish(
        mut self,
        access_log: Option<&AccessLog>,
        tap: &Tap,
        resp: Response<Body>,
        start: Instant,
        grpc: bool,
    ) -> Response<Body> {
        if let Some(log) = self.log.as_mut() {
            log.complete(&resp, start.elapsed());
            if let Some(sink) = access_log {
                sink.write(log.line());
            }
            if let Some(headers) = self.tapped.take() {
                publish(tap, log, *headers);
            }
        }
        let Some(span) = self.span.take() else {
            return resp;
        };
        let status = resp.status().as_u16();
        let weft_error = verbatim::header(&resp, WEFT_ERROR)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string);
        if !on_end::status_pending(grpc, &resp) {
            let grpc_status = grpc.then(|| grpc_status_in_head(&resp)).flatten();
            span.finish(status, grpc_status, weft_error.as_deref());
            return resp;
        }
        on_end::on_end(resp, move |grpc_status| {
            span.finish(status, grpc_status, weft_error.as_deref())
        })
    }
}

/// Hands a finished request to the open taps: its log entry with the request headers.
fn publish(tap: &Tap, log: &Entry, headers: serde_json::Map<String, serde_json::Value>) {
    let mut line = serde_json::to_value(log).unwrap_or_default();
    if let Some(fields) = line.as_object_mut() {
        fields.insert("request_headers".into(), serde_json::Value::Object(headers));
    }
    tap.publish(&Tapped {
        line: &line,
        direction: log.direction(),
        method: log.method(),
        authority: log.authority(),
        path: log.path(),
    });
}
