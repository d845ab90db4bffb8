//! A real OTLP collector for tracing tests: rotel (from PyPI, see PEERS.md) receives the
//! proxies' OTLP/gRPC exports exactly as a production collector would, and forwards what it
//! accepted as OTLP/HTTP (protobuf) to a sink in the test, which decodes it
//! with the OTLP protocol's own messages. The test then reads spans as data, not log text.
//!
//! `./scripts/test.sh` installs rotel into `.venv-otel`; `WEFT_ROTEL` names another binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// One span as the collector received it, flattened for assertions.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// 2 server, 3 client (OTLP's `SpanKind`).
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status: i32,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The rotel binary, or why there is none.
pub fn rotel_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("WEFT_ROTEL") {
        return Ok(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = root.join(".venv-otel/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("site-packages/rotel/rotel-agent"))
            .find(|p| p.exists())
    });
    found.ok_or_else(|| {
        format!(
            "rotel not found under {} (python3 -m venv .venv-otel && .venv-otel/bin/pip install rotel)",
            lib.display()
        )
    })
}

/// Rotel and the sink behind it; rotel is killed when dropped.
pub struct Collector {
    child: Child,
    pub grpc: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    log: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    /// Starts the sink on `sink`, then rotel receiving OTLP/gRPC on `grpc`.
    pub async fn start(bin: &Path, grpc: SocketAddr, sink: SocketAddr, dir: &Path) -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind(sink)
            .await
            .expect("sink bind");
        tokio::spawn(serve_sink(listener, spans.clone()));
        let log = dir.join("rotel.log");
        let file = std::fs::File::create(&log).expect("rotel log");
        let child = Command::new(bin)
            .args(["start", "--otlp-grpc-endpoint", &grpc.to_string()])
            // Its HTTP receiver is not used, but must not collide with another test's.
            .args(["--otlp-http-endpoint", &format!("{}:0", grpc.ip())])
            .args(["--exporter", "otlp", "--otlp-exporter-protocol", "http"])
            .args(["--otlp-exporter-endpoint", &format!("http://{sink}")])
            .stdout(Stdio::from(file.try_clone().expect("log")))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let collector = Collector {
            child,
            grpc,
            spans,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(grpc).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "rotel did not listen on {grpc}: {}",
                collector.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        collector
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("spans").clone()
    }

    /// Waits (bounded) until `pred` holds for the spans received so far.
    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + within;
        loop {
            let spans = self.spans();
            if pred(&spans) || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn serve_sink(listener: tokio::net::TcpListener, spans: Arc<Mutex<Vec<Span>>>) {
    // Bounded: a test makes a handful of exports.
    for _ in 0..10_000 {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let spans = spans.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let spans = spans.clone();
                async move {
                    let gzip = req
                        .headers()
                        .get("content-encoding")
                        .is_some_and(|v| v.as_bytes() == b"gzip");
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    let body = body.map(|b| if gzip { gunzip(&b) } else { b });
                    let status = match body.map(ExportTraceServiceRequest::decode) {
                        Ok(Ok(export)) => {
                            spans.lock().expect("spans").extend(flatten(export));
                            200
                        }
                        _ => 400,
                    };
                    let mut resp = Response::new(Full::new(Bytes::new()));
                    *resp.status_mut() = http::StatusCode::from_u16(status).expect("status");
                    resp.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("application/x-protobuf"),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// rotel compresses its OTLP/HTTP exports whatever it is told; `gzip -d` undoes that.
fn gunzip(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(data);
    }
    let out = child.wait_with_output().expect("gzip -d");
    Bytes::from(out.stdout)
}

fn flatten(export: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in export.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    service: service.clone(),
                    name: s.name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    kind: s.kind,
                    attributes: attributes(&s.attributes),
                    status: s.status.map(|st| st.code).unwrap_or(0),
                });
            }
        }
    }
    out
}

fn attributes(
    kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
