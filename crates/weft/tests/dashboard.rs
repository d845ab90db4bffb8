//! The dashboard in a real browser: `weft up` runs the shop (network namespaces, real proxies,
//! the frontend's own traffic), `weft dashboard` relays the control plane to a local address,
//! and `dashboard/tests/browser.mjs` opens it in headless Chromium (Debian's `chromium`,
//! driven by playwright-core) and checks what a person would: the graph shows the shop's
//! Services and the 90/10 split's edges, the reviews page's chart has data and shows the
//! split and the policies, a denied request (a POST from the frontend, which the shop's
//! policy forbids) appears in the live tap within seconds, and an invalid configuration file
//! shows its error. Screenshots are kept in `target/dashboard-screenshots/` (CI's
//! artifacts).
//!
//! Needs root, iproute2, iptables, curl, Node.js with `dashboard/node_modules` (npm ci) and
//! Chromium (scripts/test.sh installs them); without them the test prints a loud SKIPPED
//! line, and fails under CI=true.

mod local_host;
mod netns;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use local_host::LocalHost;
use support::Proc;

/// A local address for `weft dashboard`, apart from every other test's.
const DASHBOARD: &str = "127.0.0.1:4690";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn preflight() -> bool {
    let mut missing = match netns::preflight(&["ip", "iptables", "curl", "node"]) {
        Ok(()) => Vec::new(),
        Err(reason) => vec![reason],
    };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        missing.push(format!("{chromium} (apt-get install -y chromium)"));
    }
    if !repo()
        .join("dashboard/node_modules/playwright-core")
        .exists()
    {
        missing.push("dashboard/node_modules (cd dashboard && npm ci)".into());
    }
    if missing.is_empty() {
        return true;
    }
    netns::skip_or_fail("the dashboard browser test", &missing.join("; "));
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_shop_in_a_browser() {
    if !preflight() {
        return;
    }
    let host = LocalHost::new(6);
    let mut args = vec!["up".to_string(), "--for".to_string(), "240s".to_string()];
    args.extend(host.host_args());
    let mut up = Proc::spawn("up", &args, &host.dir);
    let deadline = Instant::now() + Duration::from_secs(90);
    let read_up = || std::fs::read_to_string(&up.log).unwrap_or_default();
    while !read_up().contains("demo: reviews:") {
        assert!(
            Instant::now() < deadline && matches!(up.child.try_wait(), Ok(None)),
            "the shop did not start:\n{}",
            read_up()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let relay: Vec<String> = [
        "dashboard",
        "--listen",
        DASHBOARD,
        "--no-browser",
        "--control",
        &host.admin.to_string(),
        "--admin-token-file",
        &host.state_dir().join("admin-token").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut relay = Proc::spawn("dashboard", &relay, &host.dir);
    support::wait_listening(DASHBOARD.parse().expect("addr")).await;

    let shots = repo().join("target/dashboard-screenshots");
    let mut browser = Command::new("node")
        .arg("tests/browser.mjs")
        .arg(format!("http://{DASHBOARD}"))
        .arg(&shots)
        .current_dir(repo().join("dashboard"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut to_browser = browser.stdin.take().expect("stdin");
    let from_browser = BufReader::new(browser.stdout.take().expect("stdout"));
    let shop = host.run_dir().join("up/shop");
    let mut report = Vec::new();
    // Bounded: the script's own waits are bounded, and it ends by itself.
    for line in from_browser.lines().map_while(Result::ok) {
        println!("browser: {line}");
        match line.as_str() {
            "STEP deny" => {
                // A write to reviews from the frontend: the shop's policy denies it (403).
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        "weft-frontend-0",
                        "curl",
                        "-s",
                        "-o",
                        "/dev/null",
                    ])
                    .args([
                        "-w",
                        "%{http_code}",
                        "-X",
                        "POST",
                        "http://reviews.shop:9080/reviews/1",
                    ])
                    .output()
                    .expect("curl in the frontend's namespace");
                assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{out:?}");
                writeln!(to_browser, "done").expect("to the browser");
            }
            "STEP break" => {
                // A route to a Service nobody declared: the control plane keeps serving the
                // last good configuration and reports the error.
                let broken = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: broken-route, namespace: shop}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: reviews, port: 9080}]\n  rules:\n    - backendRefs: [{name: nowhere, port: 9080}]\n";
                std::fs::write(shop.join("broken.yaml"), broken).expect("broken config");
                writeln!(to_browser, "done").expect("to the browser");
            }
            _ => report.push(line),
        }
    }
    let status = browser.wait().expect("node");
    let _ = relay.terminate(Duration::from_secs(3));
    let _ = up.terminate(Duration::from_secs(20));
    assert!(
        status.success() && report.iter().any(|l| l == "PASSED"),
        "the browser checks failed:\n{}\nscreenshots in {}",
        report.join("\n"),
        shots.display()
    );
    for shot in ["graph.png", "service.png", "tap.png", "error.png"] {
        assert!(shots.join(shot).exists(), "no screenshot {shot}");
    }
}
