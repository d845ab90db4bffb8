//! A real Prometheus server (Debian's `prometheus` package, started on loopback) scrapes a
//! proxy's `/metrics` and can query the golden metrics: what an operator does first.

mod mesh;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
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

const NO_ROUTES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n";

#[tokio::test]
async fn prometheus_scrapes_the_golden_metrics() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus is required in CI (apt-get install prometheus)"
        );
        eprintln!("SKIPPED: prometheus not installed; ./scripts/test.sh installs it");
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
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let listen = mesh.addr(3, 9099);
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
    let _server = Killed(server);
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
