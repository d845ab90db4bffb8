//! A mesh of two hosts, each a network namespace of its own on a network between hosts (a
//! bridge in the test's namespace, 198.18.89.0/24): a real etcd and a control-plane replica on
//! that network, `weft host join` on each host, each host's tunnel (`weft host tunnel`),
//! and workloads started by `weft run` on the hosts. A client on host A calls a Service whose
//! endpoint is on host B: the call crosses over HBONE, with mutual TLS end to end between
//! the two workloads' proxies, though neither host routes the other's workload block.
//!
//! Needs root, iproute2, iptables, curl, openssl and etcd (installed with apt-get as root);
//! without them the test prints a loud SKIPPED line, and fails under CI=true.

mod etcd_support;
mod hosts_support;
mod netns;
mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hosts_support::{registered, vip, Host, HostsNetwork, Hub};
use support::WEFT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_crosses_hosts_over_hbone_with_mutual_tls_end_to_end() {
    if let Err(reason) = netns::preflight(&["ip", "iptables", "curl"]) {
        netns::skip_or_fail("the hosts tests", &reason);
        return;
    }
    let Some(dir) = etcd_support::test_dir("the hosts tests", "weft-hosts") else {
        return;
    };
    hosts_support::remove_stale(&["echo-b", "client-a"]);
    let network = HostsNetwork::create(89);
    let hub = Hub::start(&network, &dir).await;
    let (admin, token) = (hub.admin, hub.token.clone());
    let mut a = Host::new("a", &dir, &network, 1);
    let mut b = Host::new("b", &dir, &network, 2);
    a.join(&hub, &network, 1);
    b.join(&hub, &network, 2);

    b.run(
        "echo-b",
        "echo",
        8080,
        &[WEFT, "echo", "--http", "0.0.0.0:8080", "--pod", "echo-b"],
    );
    a.run("client-a", "client", 9000, &["sleep", "600"]);
    let echo_ip = registered(admin, &token, "echo-b", &b).await;
    let client_ip = registered(admin, &token, "client-a", &a).await;
    assert_eq!(echo_ip.octets()[..3], [10, 213, 2], "host b's block");
    assert_eq!(client_ip.octets()[..3], [10, 213, 1], "host a's block");

    // Host A cannot reach host B's workloads by their addresses: nothing routes the block.
    let direct =
        a.ns.exec_any(&["curl", "-sS", "-m", "2", &format!("http://{echo_ip}:8080/")]);
    assert!(
        !direct.map(|o| o.status.success()).unwrap_or(false),
        "host a reached {echo_ip} without the tunnel"
    );

    // The client's call crosses through host B's tunnel.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let mut ok = false;
    while Instant::now() < deadline && !ok {
        let out = a.in_workload(
            "client-a",
            "sleep",
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                "--resolve",
                &format!("echo.default:8080:{}", vip("client-a", "echo.default")),
                "http://echo.default:8080/hello",
            ],
        );
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ok = out.status.success() && last.contains("echo-b");
        if !ok {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    assert!(ok, "{last}{}{}", a.ns.logs(20), b.ns.logs(20));

    // End-to-end mutual TLS: echo-b's proxy saw the client's SPIFFE id.
    let metrics = b.ns.within(|| {
        std::process::Command::new("curl")
            .args(["-sS", "-m", "5", &format!("http://{echo_ip}:4191/metrics")])
            .output()
            .expect("curl metrics")
    });
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    let inbound = metrics
        .lines()
        .find(|l| {
            l.starts_with("weft_requests_total{direction=\"inbound\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/client\"")
                && l.contains("connection_security_policy=\"mutual_tls\"")
        })
        .unwrap_or_default();
    assert!(!inbound.is_empty(), "{metrics}");

    // The tunnel splices only to its own host's workloads, and only TLS.
    let hijack = a.ns.exec_any(&[
        "sh",
        "-c",
        &format!(
            "echo | openssl s_client -connect {}:4108 -servername {} 2>&1",
            network.address(2),
            weft_identity_name(client_ip)
        ),
    ]);
    let hijack = hijack
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        !hijack.contains("BEGIN CERTIFICATE") && !hijack.contains("Server certificate"),
        "{hijack}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !b.ns.proc("tunnel").is_some_and(|p| {
            p.log_text()
                .contains("is not a workload address of this host")
        })
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tunnel_log =
        b.ns.proc("tunnel")
            .map(|p| p.log_text())
            .unwrap_or_default();
    assert!(
        tunnel_log.contains(&format!(
            "{client_ip} is not a workload address of this host"
        )),
        "{tunnel_log}"
    );
    drop(a);
    drop(b);
    drop(hub);
    drop(network);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tunnel server name for `ip` (as `weft_identity::hbone::server_name` makes it).
fn weft_identity_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}.hbone.weft")
}
