//! Distributed tracing: one span per proxy hop per request, exported over OTLP/gRPC.
//!
//! A caller's proxy makes a client span, the callee's proxy a server span, child of it; the
//! application between them carries the context on (as with Istio, the mesh can join a
//! trace across an application only if the application forwards the trace headers).
//!
//! ```text
//! request in ─► read context (context.rs) ─► sample? ─► write our context ─► … ─► answer
//!                                              │ yes: an OpenSpan (span.rs)        │
//!                                              └──────────── finished ◄───────────┘
//!                                                 └─► bounded queue ─► exporter task (export.rs)
//! ```
//!
//! Nothing here runs unless MeshConfig `tracing` is set; then an unsampled request costs a
//! header read and, when it starts a trace, a header written (so that the next hop knows the
//! decision). A sampled request's span is built on the request path and handed to the
//! exporter through a bounded queue: a slow or dead collector fills the queue and spans are
//! dropped (counted), never requests delayed.

pub mod context;
mod export;
mod span;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::HeaderMap;
use weft_api::view::{TracingView, WorkloadView};

pub use context::{Propagator, SpanContext};
pub use export::Exporter;
pub use span::{Kind, OpenSpan};

use crate::metrics::Metrics;

/// The tracing of one configuration: how requests are sampled and their context carried, and
/// where finished spans go.
pub struct Tracer {
    propagators: Box<[Propagator]>,
    /// 0 to 100: the share of requests without a caller's decision that are traced.
    percentage: f64,
    exporter: Exporter,
    view: TracingView,
}

impl Tracer {
    /// Reads the request's trace context, decides whether to trace it and writes the context
    /// the next hop will see. A span when the request is sampled.
    pub fn start(self: &Arc<Self>, headers: &mut HeaderMap, kind: Kind) -> Option<OpenSpan> {
        let incoming = context::read(headers, &self.propagators);
        let sampled = incoming.decision.unwrap_or_else(|| self.sample());
        let tracestate = incoming.tracestate.as_ref();
        match incoming.parent {
            // Not traced, and the caller's context already says so: pass it on as it came,
            // unless another configured format must learn it too.
            Some(_) if !sampled && self.propagators.len() == 1 => None,
            Some(parent) if !sampled => {
                let context = SpanContext { sampled, ..parent };
                context::write(headers, &self.propagators, context, None, tracestate);
                None
            }
            _ if !sampled => {
                // A new trace, not sampled: the next hops must not start one of their own.
                let context = SpanContext {
                    trace_id: new_trace_id(),
                    span_id: new_span_id(),
                    sampled,
                };
                context::write(headers, &self.propagators, context, None, None);
                None
            }
            parent => {
                let context = SpanContext {
                    trace_id: parent.map_or_else(new_trace_id, |p| p.trace_id),
                    span_id: new_span_id(),
                    sampled,
                };
                let parent_id = parent.map(|p| p.span_id);
                context::write(headers, &self.propagators, context, parent_id, tracestate);
                Some(OpenSpan::new(self.clone(), kind, context, parent_id))
            }
        }
    }

    fn sample(&self) -> bool {
        self.percentage > 0.0 && fastrand::f64() * 100.0 < self.percentage
    }

    fn send(&self, span: span::FinishedSpan) {
        self.exporter.send(span);
    }
}

fn new_trace_id() -> u128 {
    fastrand::u128(1..)
}

fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

/// The tracers of the configurations seen so far: a new snapshot with the same `tracing`
/// keeps its exporter (and its connection to the collector); a change starts another, and
/// the old one ends when the last snapshot using it is gone.
pub struct Tracers {
    metrics: Arc<Metrics>,
    namespace: String,
    current: Mutex<Option<Arc<Tracer>>>,
}

impl Tracers {
    pub fn new(metrics: Arc<Metrics>, namespace: &str) -> Self {
        Self {
            metrics,
            namespace: namespace.to_string(),
            current: Mutex::new(None),
        }
    }

    /// The tracer for `view` (None: tracing is off), its spans reported as `workload`'s.
    /// Called when a snapshot is built, off the request path, inside the proxy's runtime.
    pub fn for_view(
        &self,
        view: Option<&TracingView>,
        workload: Option<&WorkloadView>,
    ) -> Option<Arc<Tracer>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some(view) = view else {
            *current = None;
            return None;
        };
        if let Some(tracer) = current.as_ref().filter(|t| &t.view == view) {
            return Some(tracer.clone());
        }
        let propagators = view
            .propagators
            .iter()
            .filter_map(|p| Propagator::parse(p))
            .collect();
        let resource = export::ResourceInfo::of(workload, &self.namespace);
        let tracer = Arc::new(Tracer {
            propagators,
            percentage: view.random_sampling_percentage.clamp(0.0, 100.0),
            exporter: Exporter::start(&view.collector, &resource, self.metrics.clone()),
            view: view.clone(),
        });
        tracing::info!(collector = %view.collector, sampling = view.random_sampling_percentage,
            propagators = ?view.propagators, "tracing on");
        *current = Some(tracer.clone());
        Some(tracer)
    }
}

/// Now, for a span's start and end.
fn now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests;
