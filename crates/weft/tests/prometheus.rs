//! A real Prometheus server (Debian's `prometheus` package, started on loopback) scrapes a
//! proxy's `/metrics` and can query the golden metrics: what an operator does first; and
//! finds every proxy of a mesh through the control plane's service discovery.

mod control_mesh;
mod mesh;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::Request;
use http_body_util::Full;
use mesh::TestMesh;
use support::send;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether Debian's Prometheus is here; without it the test says so (and fails under CI).
fn prometheus_installed() -> bool {
    if Command::new("prometheus").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "prometheus is required in CI (apt-get install prometheus)"
    );
    eprintln!("SKIPPED: prometheus not installed; ./scripts/test.sh installs it");
    false
}

/// Prometheus with `config` (in `dir`, beside its data and log), answering on `listen`.
fn start_prometheus(dir: &std::path::Path, config: &str, listen: std::net::SocketAddr) -> Killed {
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let server = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("log")).expect("log"),
        ))
        .spawn()
        .expect("start prometheus");
    Killed(server)
}

const NO_ROUTES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n";

#[tokio::test]
async fn prometheus_scrapes_the_golden_metrics() {
    if !prometheus_installed() {
        return;
    }
    let mesh = TestMesh::start(80, NO_ROUTES, &[]).await;
    for _ in 0..7 {
        let req = Request::get("http://echo.t/")
            .body(Full::new(Bytes::new()))
            .expect("req");
        assert_eq!(
            send(mesh.client(), req, false).await.expect("send").status,
            200
        );
    }
    let dir = mesh.dir.join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: weft\n  static_configs:\n  - targets: ['{}']\n",
        mesh.admin(3)
    );
    let listen = mesh.addr(3, 9099);
    let _server = start_prometheus(&dir, &config, listen);
    let query = "/api/v1/query?query=sum(weft_requests_total%7Bdirection%3D%22outbound%22%2Cresponse_code%3D%22200%22%7D)";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, body)) = support::admin_get(listen, query).await {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(value) = json["data"]["result"][0]["value"][1].as_str() {
                assert_eq!(value, "7", "Prometheus sees the 7 requests: {body}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped weft_requests_total:\n{}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The scrape itself was healthy (no parse errors).
    let (_, body) = support::admin_get(listen, "/api/v1/query?query=up")
        .await
        .expect("query");
    assert!(body.contains("\"1\""), "target is up: {body}");
}

/// Prometheus finds every proxy through the control plane's `http_sd_configs` endpoint, with
/// the labels it gives (namespace, workload, app), and a golden metric's rate comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_discovers_the_proxies_through_the_control_plane() {
    if !prometheus_installed() {
        return;
    }
    let file_sd = std::env::temp_dir().join(format!("weft-file-sd-{}.json", std::process::id()));
    let file_sd_arg = file_sd.display().to_string();
    let mut mesh =
        ControlMesh::start_with(99, "STRICT", "1h", &["--prometheus-file-sd", &file_sd_arg]).await;
    mesh.start_workloads().await;
    let (status, targets) = support::admin_get(mesh.control_admin(), "/prometheus/targets")
        .await
        .expect("targets");
    assert_eq!(status, 200, "{targets}");
    let groups: serde_json::Value = serde_json::from_str(&targets).expect("JSON");
    assert_eq!(groups.as_array().map(Vec::len), Some(2), "{groups}");

    let dir = mesh.dir.join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: weft-proxies\n  \
         http_sd_configs: [{{url: 'http://{}/prometheus/targets', refresh_interval: 1s}}]\n\
         - job_name: weft-file-sd\n  file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n",
        mesh.control_admin(),
        file_sd.display()
    );
    let listen = mesh.addr(3, 9099);
    let _server = start_prometheus(&dir, &config, listen);

    // Traffic for the whole window, so that the rate has samples on both sides.
    let deadline = Instant::now() + Duration::from_secs(40);
    let query = "/api/v1/query?query=sum(rate(weft_requests_total%7Bworkload%3D%22client%22%2Cdirection%3D%22outbound%22%2Cresponse_code%3D%22200%22%7D%5B10s%5D))";
    loop {
        for _ in 0..5 {
            let req = Request::get("http://echo/")
                .header("host", "echo")
                .body(Full::new(Bytes::new()))
                .expect("req");
            assert_eq!(
                send(mesh.client(), req, false).await.expect("send").status,
                200
            );
        }
        if let Ok((200, body)) = support::admin_get(listen, query).await {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let rate = json["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok());
            if rate.is_some_and(|r| r > 0.0) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never got a request rate for the client's proxy:\n{}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Both proxies were discovered and are up, with the control plane's labels.
    let (_, body) = support::admin_get(
        listen,
        "/api/v1/query?query=up%7Bjob%3D%22weft-proxies%22%2Cnamespace%3D%22default%22%7D",
    )
    .await
    .expect("query");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut up: Vec<(String, String)> = json["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let workload = r["metric"]["workload"].as_str().unwrap_or("?").to_string();
            (workload, r["value"][1].as_str().unwrap_or("?").to_string())
        })
        .collect();
    up.sort();
    assert_eq!(
        up,
        [
            ("client".to_string(), "1".to_string()),
            ("echo-1".to_string(), "1".to_string())
        ],
        "{body}"
    );
    // The file the control plane keeps lists the same targets, and Prometheus reads it too.
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file_sd).expect("file_sd file"))
            .expect("JSON");
    assert_eq!(from_file, groups);
    let deadline = Instant::now() + Duration::from_secs(20);
    let query = "/api/v1/query?query=count(up%7Bjob%3D%22weft-file-sd%22%7D%3D%3D1)";
    loop {
        let (_, body) = support::admin_get(listen, query).await.expect("query");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if json["data"]["result"][0]["value"][1].as_str() == Some("2") {
            break;
        }
        assert!(Instant::now() < deadline, "file_sd targets not up: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(&file_sd);
}

/// Runs `query` against Prometheus at `listen`: its result series, or why not.
async fn prom_query(
    listen: std::net::SocketAddr,
    query: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let path = format!("/api/v1/query?query={}", encode(query));
    let (status, body) = support::admin_get(listen, &path).await?;
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if status != 200 || json["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    Ok(json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The single value of an instant vector query.
async fn prom_value(listen: std::net::SocketAddr, query: &str) -> Option<f64> {
    let result = prom_query(listen, query).await.ok()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const RETRY_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo-retry, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - retry: {codes: [503], attempts: 1, backoff: 1ms}
    backendRefs: [{name: echo, port: 80}]
"#;

/// Under steady traffic (with failures, retries and a proxy error now and then): `weft stat`
/// agrees with Prometheus over the same window, and every panel of every dashboard in
/// `dashboards/` is a query Prometheus accepts that returns data for this mesh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weft_stat_and_the_dashboards_agree_with_prometheus() {
    if !prometheus_installed() {
        return;
    }
    let mut mesh = ControlMesh::start_with(88, "STRICT", "1h", &["--stat-interval", "1s"]).await;
    std::fs::write(mesh.config_dir().join("route.yaml"), RETRY_ROUTE).expect("route");
    mesh.start_workloads().await;
    let dir = mesh.dir.join("prometheus");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: weft-proxies\n  \
         http_sd_configs: [{{url: 'http://{}/prometheus/targets', refresh_interval: 1s}}]\n",
        mesh.control_admin(),
    );
    let listen = mesh.addr(3, 9099);
    let _server = start_prometheus(&dir, &config, listen);

    // Steady load: 40 requests a second, one in ten answered 503 (and retried once by the
    // route), one in twenty to a name no Service has (the client's proxy answers itself).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, stop) = (mesh.client(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            for n in 0..4000u32 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                tick.tick().await;
                let (host, path) = match n {
                    n if n % 20 == 7 => ("nowhere", "/".to_string()),
                    n if n % 10 == 3 => ("echo", "/status/503".to_string()),
                    n => ("echo", format!("/ok/{n}")),
                };
                let req = Request::get(format!("http://{host}{path}"))
                    .header("host", host)
                    .body(Full::new(Bytes::new()))
                    .expect("req");
                let _ = send(client, req, false).await;
            }
        })
    };
    // Let both Prometheus and the control plane gather more than a window of samples.
    let inbound = "sum(rate(weft_requests_total{workload=\"echo-1\",direction=\"inbound\"}[15s]))";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = prom_query(listen, "count_over_time(up{workload=\"echo-1\"}[30s])")
            .await
            .ok()
            .and_then(|r| r.first()?["value"][1].as_str()?.parse::<f64>().ok())
            .is_some_and(|n| n >= 20.0);
        if ready && prom_value(listen, inbound).await.is_some_and(|v| v > 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had 20s of the mesh:\n{}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // weft stat and Prometheus over the same 15 s.
    let out = std::process::Command::new(support::WEFT)
        .args([
            "stat",
            "echo-1",
            "--window",
            "15s",
            "-o",
            "json",
            "--control",
        ])
        .arg(mesh.control_admin().to_string())
        .output()
        .expect("weft stat");
    let prom_rps = prom_value(listen, inbound).await.expect("rate");
    let prom_success = prom_value(
        listen,
        "sum(rate(weft_requests_total{workload=\"echo-1\",direction=\"inbound\",response_code!~\"5..\"}[15s])) / sum(rate(weft_requests_total{workload=\"echo-1\",direction=\"inbound\"}[15s]))",
    )
    .await
    .expect("success rate");
    let prom_p50 = prom_value(
        listen,
        "histogram_quantile(0.5, sum by (le) (rate(weft_request_duration_seconds_bucket{workload=\"echo-1\",direction=\"inbound\"}[15s])))",
    )
    .await
    .expect("p50");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stat: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let row = &stat["workloads"][0];
    assert_eq!(row["name"], "default/echo-1", "{stat:#}");
    let rps = row["rps"].as_f64().expect("rps");
    let success = row["successRate"].as_f64().expect("success rate");
    let p50 = row["p50Ms"].as_f64().expect("p50") / 1000.0;
    // Steady traffic: the two estimates of a rate agree within 15%; the success rate (one in
    // ten calls fails, twice with its retry: 2/11 of the tries) within 3 points.
    assert!(
        (rps - prom_rps).abs() / prom_rps < 0.15,
        "weft stat {rps} rps, Prometheus {prom_rps}"
    );
    assert!(
        (success - prom_success).abs() < 0.03,
        "weft stat {success}, Prometheus {prom_success}"
    );
    assert!((success - 9.0 / 11.0).abs() < 0.05, "{success}");
    assert!(
        p50 / prom_p50 > 0.5 && p50 / prom_p50 < 2.0,
        "p50: weft stat {p50}, Prometheus {prom_p50}"
    );
    let edges = stat["edges"].as_array().expect("edges");
    assert!(
        edges.iter().any(|e| e["source"] == "default/client"
            && e["destination"] == "default/echo-1"
            && e["mtls"] == true
            && e["destinationPrincipal"] == "spiffe://cluster.local/ns/default/sa/echo"),
        "{stat:#}"
    );

    // Every dashboard panel's query, with its variables set to this mesh's values (a query
    // passes when one of the values gives data, as a person picking them would see).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboards");
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in ["weft-mesh.json", "weft-service.json", "weft-workload.json"] {
        let text = std::fs::read_to_string(root.join(name)).expect("dashboard");
        let board: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
        for panel in board["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let mut found = None;
                for (service, workload) in [("default/echo", "echo-1"), ("default/echo", "client")]
                {
                    let q = expr
                        .replace("$__rate_interval", "15s")
                        .replace("$service", service)
                        .replace("$workload", workload);
                    match prom_query(listen, &q).await {
                        Ok(r) if !r.is_empty() => {
                            found = Some(Ok(()));
                            break;
                        }
                        Ok(_) => found = found.or(Some(Err(format!("no data: {q}")))),
                        Err(e) => {
                            found = Some(Err(format!("rejected: {q}: {e}")));
                            break;
                        }
                    }
                }
                checked += 1;
                if let Some(Err(e)) = found {
                    failures.push(format!("{name} / {}: {e}", panel["title"]));
                }
            }
        }
        // The variables' values come from series that exist.
        for var in board["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(def) = var["definition"].as_str() {
                let inner = def
                    .strip_prefix("label_values(")
                    .and_then(|d| d.strip_suffix(')'))
                    .and_then(|d| d.rsplit_once(", "));
                let (series, label) = inner.expect("label_values(series, label)");
                let r = prom_query(listen, &format!("count by ({label}) ({series})")).await;
                assert!(
                    r.is_ok_and(|r| !r.is_empty()),
                    "{name}: variable {def} has no values"
                );
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.expect("load");
    assert!(checked >= 40, "only {checked} queries in the dashboards");
    assert!(
        failures.is_empty(),
        "{} of {checked} panel queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
