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
