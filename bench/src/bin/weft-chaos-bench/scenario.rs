//! The scenarios: a client workload calling Service `backend` (three endpoints) at a fixed
//! rate, each scenario a fresh `weft up` of its own, with one fault injected after a healthy
//! baseline.

use std::path::Path;

/// What goes wrong, and to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// (a) an endpoint killed: its proxy's port resets every connection, as a dead
    /// process's does, before its supervisor has noticed (see [`crate::faults::refuse`]).
    Kill,
    /// (b) the endpoint answers 503 to half its requests.
    HalfUnavailable,
    /// (c) the endpoint slowed by 500 ms.
    Slow,
    /// (d) the endpoint's link cut.
    Cut,
    /// (e) every endpoint closes idle keep-alive connections a moment before the proxy would.
    IdleClose,
    /// 10x the Service's capacity (its `http2MaxRequests` over its latency).
    Overload,
}

pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    pub fault: Fault,
    /// Every endpoint fails, not one.
    pub all: bool,
}

pub const ALL: [Scenario; 10] = [
    Scenario {
        id: "a",
        title: "(a) an endpoint killed",
        fault: Fault::Kill,
        all: false,
    },
    Scenario {
        id: "b",
        title: "(b) an endpoint answers 503 to half",
        fault: Fault::HalfUnavailable,
        all: false,
    },
    Scenario {
        id: "c",
        title: "(c) an endpoint slowed by 500 ms",
        fault: Fault::Slow,
        all: false,
    },
    Scenario {
        id: "d",
        title: "(d) an endpoint's link cut",
        fault: Fault::Cut,
        all: false,
    },
    Scenario {
        id: "e",
        title: "(e) idle connections closed by the servers just before the proxy's idle timeout",
        fault: Fault::IdleClose,
        all: false,
    },
    Scenario {
        id: "a-all",
        title: "(a) every endpoint killed",
        fault: Fault::Kill,
        all: true,
    },
    Scenario {
        id: "b-all",
        title: "(b) every endpoint answers 503 to half",
        fault: Fault::HalfUnavailable,
        all: true,
    },
    Scenario {
        id: "c-all",
        title: "(c) every endpoint slowed by 500 ms",
        fault: Fault::Slow,
        all: true,
    },
    Scenario {
        id: "d-all",
        title: "(d) every endpoint's link cut",
        fault: Fault::Cut,
        all: true,
    },
    Scenario {
        id: "overload",
        title: "10x the Service's capacity",
        fault: Fault::Overload,
        all: false,
    },
];

/// How one run is paced.
pub struct Pace {
    pub rate: u32,
    /// Healthy time before the fault.
    pub baseline_s: u64,
    /// Time under the fault.
    pub fault_s: u64,
    /// The first seconds of the fault, while detection settles, left out of the settled
    /// success rate.
    pub settle_s: u64,
}

/// The echo servers' idle timeout in (e), just under the proxy's 4 s `upstreamIdleTimeout`.
pub const ECHO_IDLE_TIMEOUT: &str = "3900ms";
/// The overload scenario: each answer takes this long, and the client's proxy allows this
/// many requests in flight: a capacity of 50 requests a second.
pub const OVERLOAD_DELAY: &str = "200ms";
pub const OVERLOAD_MAX_REQUESTS: u32 = 10;
/// Ten times that capacity.
pub const OVERLOAD_RATE: u32 = 500;

/// The mesh directory of a scenario: the Service, its DestinationRule and route, the three
/// backends and the client (this program, in `load` mode).
pub fn mesh_yaml(s: &Scenario, pace: &Pace, bench: &Path, work: &Path) -> String {
    let seconds = pace.baseline_s + pace.fault_s;
    let (rate, pattern, path) = match s.fault {
        Fault::IdleClose => (pace.rate, "bursts", "/".to_string()),
        Fault::Overload => (OVERLOAD_RATE, "steady", format!("/?delay={OVERLOAD_DELAY}")),
        _ => (pace.rate, "steady", "/".to_string()),
    };
    let mut echo = format!(
        "[weft, echo, --http, \"0.0.0.0:8080\", --chaos-dir, \"{}\"",
        work.display()
    );
    if s.fault == Fault::IdleClose {
        echo.push_str(&format!(", --idle-timeout, {ECHO_IDLE_TIMEOUT}"));
    }
    echo.push(']');
    let pool = if s.fault == Fault::Overload {
        format!("\n    connectionPool: {{http: {{http2MaxRequests: {OVERLOAD_MAX_REQUESTS}}}}}")
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: backend, namespace: chaos}}
spec:
  selector: {{app: backend}}
  ports: [{{name: http, port: 8080, appProtocol: http}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: backend, namespace: chaos}}
spec:
  host: backend
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 15s, maxEjectionPercent: 34}}{pool}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: backend, namespace: chaos}}
spec:
  parentRefs: [{{group: "", kind: Service, name: backend, port: 8080}}]
  rules:
  - backendRefs: [{{name: backend, port: 8080}}]
    timeouts: {{request: 2500ms, backendRequest: 700ms}}
    retry: {{codes: [503], attempts: 2, backoff: 25ms}}
---
apiVersion: weft.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: backend, namespace: chaos}}
spec:
  replicas: 3
  port: 8080
  command: {echo}
---
apiVersion: weft.dev/v1alpha1
kind: LocalWorkload
metadata: {{name: client, namespace: chaos}}
spec:
  port: 8080
  appProtocol: http
  command: ["{bench}", load, --target, "backend.chaos:8080", --rate, "{rate}", --seconds, "{seconds}", --pattern, {pattern}, --path, "{path}", --out, "{records}"]
"#,
        bench = bench.display(),
        records = work.join("records.csv").display(),
    )
}
