//! One hop's span: opened when a sampled request arrives, given attributes as the request
//! goes through the stages, finished with the answer.
//!
//! Attribute names follow OpenTelemetry's HTTP and RPC semantic conventions
//! (`http.request.method`, `url.path`, `server.address`, `http.response.status_code`,
//! `rpc.system`, `rpc.grpc.status_code`, `error.type`…); what only a mesh knows is under
//! `weft.*`: the route, the destination Service, the peer's SPIFFE id, whether the hop was
//! mutual TLS, the authorization decision and the `weft-error` of an answer the proxy made.
//! Query strings are left out: they carry credentials too often to be exported.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{Request, Version};
use opentelemetry::trace::{SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::{SpanContext, Tracer};
use crate::state::Endpoint;

/// What [`OpenSpan::upstream`] sets, replaced by each try.
const UPSTREAM_KEYS: [&str; 5] = [
    "network.peer.address",
    "network.peer.port",
    "weft.destination.workload",
    "weft.peer.principal",
    "weft.mtls",
];

/// Which side of the hop the span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The caller's proxy (outbound).
    Client,
    /// The callee's proxy (inbound).
    Server,
}

/// A span in progress, owned by its request.
pub struct OpenSpan {
    tracer: Arc<Tracer>,
    kind: Kind,
    context: SpanContext,
    parent: Option<u64>,
    start: SystemTime,
    name: String,
    grpc: bool,
    attributes: Vec<KeyValue>,
    /// Client spans: tries made (retries are tries beyond the first).
    tries: u32,
}

/// What the export task turns into OTLP.
pub struct FinishedSpan {
    kind: Kind,
    context: SpanContext,
    parent: Option<u64>,
    start: SystemTime,
    end: SystemTime,
    name: String,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

impl OpenSpan {
    pub(super) fn new(
        tracer: Arc<Tracer>,
        kind: Kind,
        context: SpanContext,
        parent: Option<u64>,
    ) -> Self {
        Self {
            tracer,
            kind,
            context,
            parent,
            start: super::now(),
            name: String::new(),
            grpc: false,
            attributes: Vec::with_capacity(20),
            tries: 0,
        }
    }

    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// The caller's span, when the request brought one.
    pub fn parent(&self) -> Option<u64> {
        self.parent
    }

    /// The request's own attributes; `peer` is the other end of the connection it came on.
    pub fn describe<B>(&mut self, req: &Request<B>, peer: SocketAddr, grpc: bool) {
        let method = req.method().as_str();
        let known = known_method(method);
        let path = req.uri().path();
        self.grpc = grpc;
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
            .unwrap_or("");
        let (host, port) = crate::state::split_authority(authority).unwrap_or((authority, None));
        if grpc {
            let (service, rpc) = path
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            self.name = format!("{service}/{rpc}");
            self.set("rpc.system", "grpc");
            self.set("rpc.service", service.to_string());
            self.set("rpc.method", rpc.to_string());
        } else {
            self.name = known.unwrap_or("HTTP").to_string();
        }
        match known {
            Some(known) => self.set("http.request.method", known),
            None => {
                self.set("http.request.method", "_OTHER");
                self.set("http.request.method_original", method.to_string());
            }
        }
        self.set("network.protocol.name", "http");
        self.set("network.protocol.version", protocol_version(req.version()));
        self.set("server.address", host.to_string());
        if let Some(port) = port {
            self.set("server.port", i64::from(port));
        }
        match self.kind {
            Kind::Client => {
                self.set("url.full", format!("http://{authority}{path}"));
                self.set("weft.direction", "outbound");
            }
            Kind::Server => {
                self.set("url.path", path.to_string());
                self.set("url.scheme", "http");
                self.set("client.address", peer.ip().to_string());
                self.set("weft.direction", "inbound");
            }
        }
        if self.kind == Kind::Server {
            self.set("network.peer.address", peer.ip().to_string());
            self.set("network.peer.port", i64::from(peer.port()));
        }
        if let Some(agent) = req.headers().get(http::header::USER_AGENT) {
            if let Ok(agent) = agent.to_str() {
                self.set("user_agent.original", agent.to_string());
            }
        }
    }

    /// A client span's try to `ep` (`n` from 0): the last one is the endpoint that answered,
    /// and the one whose address and identity the span reports.
    pub fn upstream(&mut self, ep: &Endpoint, n: u32) {
        self.attributes
            .retain(|kv| !UPSTREAM_KEYS.contains(&kv.key.as_str()));
        self.tries = n + 1;
        self.set("network.peer.address", ep.addr.ip().to_string());
        self.set("network.peer.port", i64::from(ep.addr.port()));
        self.set(
            "weft.destination.workload",
            format!("{}/{}", ep.namespace, ep.workload),
        );
        if let Some(id) = ep.peer.as_ref().and_then(|p| p.identity.as_ref()) {
            self.set("weft.peer.principal", id.to_string());
            self.set("weft.mtls", true);
        } else {
            self.set("weft.mtls", false);
        }
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.attributes.push(KeyValue::new(key, value));
    }

    /// Ends the span with the answer's status, its gRPC status (from the head or the
    /// trailers) and its `weft-error`, if the proxy made the answer.
    pub fn finish(mut self, status: u16, grpc_status: Option<u32>, weft_error: Option<&str>) {
        self.set("http.response.status_code", i64::from(status));
        if self.tries > 1 {
            self.set("http.request.resend_count", i64::from(self.tries - 1));
        }
        if let Some(code) = grpc_status {
            self.set("rpc.grpc.status_code", i64::from(code));
        }
        let reason = weft_error.map(|e| e.split(';').next().unwrap_or(e).trim().to_string());
        if let Some(header) = weft_error {
            self.set("weft.error", header.to_string());
        }
        // `error.type` names what went wrong whenever something did (a policy's 403 too);
        // the span's status is an error only by OpenTelemetry's rule for its kind.
        let failed = self.failed(status, grpc_status);
        let error_type = reason.or_else(|| {
            failed.then(|| match grpc_status.filter(|&c| c != 0) {
                Some(code) => code.to_string(),
                None => status.to_string(),
            })
        });
        if let Some(error_type) = &error_type {
            self.set("error.type", error_type.clone());
        }
        let tracer = self.tracer.clone();
        tracer.send(FinishedSpan {
            kind: self.kind,
            context: self.context,
            parent: self.parent,
            start: self.start,
            end: super::now(),
            name: std::mem::take(&mut self.name),
            attributes: std::mem::take(&mut self.attributes),
            error: error_type.filter(|_| failed),
        });
    }

    /// OpenTelemetry's rule: a client span fails on 4xx and 5xx, a server span on 5xx only;
    /// for gRPC, a client on any status but OK, a server on the statuses that mean it failed.
    fn failed(&self, status: u16, grpc_status: Option<u32>) -> bool {
        match (self.grpc, grpc_status, self.kind) {
            (true, Some(code), Kind::Client) => code != 0,
            // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
            (true, Some(code), Kind::Server) => matches!(code, 2 | 4 | 12 | 13 | 14 | 15),
            (_, _, Kind::Client) => status >= 400,
            (_, _, Kind::Server) => status >= 500,
        }
    }
}

impl FinishedSpan {
    pub fn into_span_data(self) -> SpanData {
        let context = opentelemetry::trace::SpanContext::new(
            self.context.trace_id.into(),
            self.context.span_id.into(),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        SpanData {
            span_context: context,
            parent_span_id: self.parent.unwrap_or(0).into(),
            parent_span_is_remote: self.parent.is_some(),
            span_kind: match self.kind {
                Kind::Client => SpanKind::Client,
                Kind::Server => SpanKind::Server,
            },
            name: Cow::Owned(self.name),
            start_time: self.start,
            end_time: self.end.max(self.start),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: match self.error {
                Some(description) => Status::error(description),
                None => Status::Unset,
            },
            instrumentation_scope: opentelemetry::InstrumentationScope::builder("weft-proxy")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }
    }
}

/// The methods OpenTelemetry names; anything else is `_OTHER` (a method is not a bounded set).
fn known_method(method: &str) -> Option<&'static str> {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN.iter().copied().find(|m| *m == method)
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
