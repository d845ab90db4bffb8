//! Finished spans to the collector: a bounded queue filled by the request path and a task
//! that batches it and exports each batch over OTLP/gRPC (`opentelemetry-otlp` on tonic).
//!
//! A dead or slow collector costs requests nothing: the queue's `try_send` never waits, a full
//! queue drops the span (`weft_trace_spans_dropped_total{reason="queue_full"}`), and a batch
//! that cannot be exported after the exporter's own retries is dropped
//! (`reason="export_failed"`) while the task backs off, exponentially with jitter, before it
//! tries the next. Spans are never written to disk or kept beyond the queue.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SpanExporter as _;
use opentelemetry_sdk::Resource;
use tokio::sync::mpsc;
use tokio::time::Instant;
use weft_api::view::WorkloadView;

use super::span::FinishedSpan;
use crate::metrics::Metrics;

/// Spans waiting for export; beyond it they are dropped.
const QUEUE: usize = 2048;
/// Spans per export request.
const BATCH: usize = 512;
/// How long a span may wait for its batch to fill: OpenTelemetry's default schedule delay
/// (and Envoy's flush interval). Each export has a cost of its own, paid per batch, not per
/// span; at 1% of 1,000 req/s a one-second delay paid it for ten spans at a time.
const BATCH_DELAY: Duration = Duration::from_secs(5);
/// One export request, including the exporter's own retries of it.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The request path's end of the queue.
pub struct Exporter {
    tx: Option<mpsc::Sender<FinishedSpan>>,
    metrics: Arc<Metrics>,
}

impl Exporter {
    /// Starts the export task for `collector` (`http://host:port`). Without a runtime to run
    /// it on (never the case in a proxy), spans are dropped and counted.
    pub fn start(collector: &str, resource: &ResourceInfo, metrics: Arc<Metrics>) -> Exporter {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime for the span exporter; spans will be dropped");
            return Exporter { tx: None, metrics };
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = Task {
            collector: collector.to_string(),
            resource: resource.to_resource(),
            rx,
            metrics: metrics.clone(),
        };
        runtime.spawn(task.run());
        Exporter {
            tx: Some(tx),
            metrics,
        }
    }

    pub fn send(&self, span: FinishedSpan) {
        let sent = match &self.tx {
            Some(tx) => tx.try_send(span).is_ok(),
            None => false,
        };
        if !sent {
            self.metrics.span_dropped("queue_full", 1);
        }
    }
}

struct Task {
    collector: String,
    resource: Resource,
    rx: mpsc::Receiver<FinishedSpan>,
    metrics: Arc<Metrics>,
}

impl Task {
    /// Runs until every sender is gone (the configuration changed or the proxy stopped).
    async fn run(mut self) {
        let built = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(self.collector.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build();
        let mut exporter = match built {
            Ok(exporter) => exporter,
            Err(e) => {
                tracing::warn!(collector = %self.collector, error = %e, "cannot export spans");
                while let Some(_span) = self.rx.recv().await {
                    self.metrics.span_dropped("export_failed", 1);
                }
                return;
            }
        };
        exporter.set_resource(&self.resource);
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        while let Some(batch) = self.next_batch().await {
            let n = batch.len() as u64;
            match exporter.export(batch).await {
                Ok(()) => {
                    self.metrics.span_exported(n);
                    if failing {
                        tracing::info!(collector = %self.collector, "exporting spans again");
                    }
                    failing = false;
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.metrics.span_dropped("export_failed", n);
                    if !failing {
                        tracing::warn!(collector = %self.collector, error = %e,
                            "cannot export spans; dropping them and retrying with backoff");
                    }
                    failing = true;
                    // Full jitter: a fleet of proxies does not return in step.
                    tokio::time::sleep(backoff.mul_f64(fastrand::f64())).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        let _ = exporter.shutdown();
    }

    /// Waits for a span, then takes more until the batch is full or [`BATCH_DELAY`] passed.
    async fn next_batch(&mut self) -> Option<Vec<opentelemetry_sdk::trace::SpanData>> {
        let first = self.rx.recv().await?;
        let mut batch = vec![first.into_span_data()];
        let deadline = Instant::now() + BATCH_DELAY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(span)) => batch.push(span.into_span_data()),
                Ok(None) | Err(_) => break,
            }
        }
        Some(batch)
    }
}

/// Who the spans are from: OpenTelemetry's resource attributes for this proxy.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// `<app>.<namespace>`, as Istio names a workload's service in traces.
    service_name: String,
    namespace: String,
    workload: Option<String>,
}

impl ResourceInfo {
    pub fn of(workload: Option<&WorkloadView>, namespace: &str) -> ResourceInfo {
        let app = workload.map(|w| {
            w.labels
                .get("app")
                .or_else(|| w.labels.get("app.kubernetes.io/name"))
                .cloned()
                .unwrap_or_else(|| w.name.clone())
        });
        ResourceInfo {
            service_name: match app {
                Some(app) => format!("{app}.{namespace}"),
                None => format!("weft-proxy.{namespace}"),
            },
            namespace: namespace.to_string(),
            workload: workload.map(|w| w.name.clone()),
        }
    }

    fn to_resource(&self) -> Resource {
        let mut attributes = vec![
            KeyValue::new("service.namespace", self.namespace.clone()),
            KeyValue::new("telemetry.sdk.name", "weft"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if let Some(workload) = &self.workload {
            attributes.push(KeyValue::new("service.instance.id", workload.clone()));
        }
        Resource::builder_empty()
            .with_service_name(self.service_name.clone())
            .with_attributes(attributes)
            .build()
    }
}

#[cfg(test)]
impl Exporter {
    /// An exporter whose spans a test reads from the returned queue.
    pub fn channel(metrics: Arc<Metrics>) -> (Exporter, mpsc::Receiver<FinishedSpan>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Exporter {
                tx: Some(tx),
                metrics,
            },
            rx,
        )
    }
}
