//! A mesh of two hosts, each a network namespace of its own on a network between hosts (a
//! bridge in the test's namespace, 198.18.89.0/24): a real etcd and a control-plane replica on
//! that network, `weft host join` on each host, each host's tunnel (`weft host tunnel`),
//! and workloads started by `weft run` (and `weft up`) on the hosts, registered with each
//! host's credential (no host holds the admin token). A client on host A calls Services whose
//! endpoints are on host B: the calls cross over HBONE, with mutual TLS end to end between
//! the two workloads' proxies, though neither host routes the other's workload block.
//!
//! Needs root, iproute2, iptables, curl, openssl and etcd (installed with apt-get as root);
//! without them the test prints a loud SKIPPED line, and fails under CI=true.

mod etcd_support;
mod hosts_support;
mod netns;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
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
    hosts_support::remove_stale(&["echo-b", "client-a", "hello-0"]);
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
    // `weft up` on a joined host starts no control plane: its LocalWorkloads register with
    // the mesh's replica (from the join) as host B's.
    let up_dir = dir.join("up-b");
    std::fs::create_dir_all(&up_dir).expect("up dir");
    std::fs::write(up_dir.join("workloads.yaml"), HELLO).expect("workloads");
    b.up(&up_dir);
    let hello_ip = registered_by_up(admin, &token, "hello-0", &b).await;
    assert_eq!(hello_ip.octets()[..3], [10, 213, 2], "host b's block");
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
    // GET `path` of `service` (in default, port 8080) from the client, through its proxy.
    let call_path = |service: &str, path: &str| {
        let name = format!("{service}.default");
        a.in_workload(
            "client-a",
            "sleep",
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                "--resolve",
                &format!("{name}:8080:{}", vip("client-a", &name)),
                &format!("http://{name}:8080{path}"),
            ],
        )
    };
    let call = |service: &str| call_path(service, "/hello");
    while Instant::now() < deadline && !ok {
        let out = call("echo");
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
    let out = call("hello");
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && answer.contains("hello-0"),
        "{answer}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The replica (on the hosts' network, where no workload block is routed) reads every
    // proxy's /metrics through its host's tunnel: `weft stat` sees both hosts' workloads.
    let (code, body) = support::admin_get(admin, "/stat?window=60s")
        .await
        .unwrap_or_default();
    let stat: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(code, 200, "{body}");
    assert_eq!(stat["unreachable"], serde_json::json!([]), "{body}");
    let read: Vec<&str> = stat["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["name"].as_str())
        .collect();
    for w in ["default/echo-b", "default/client-a", "default/hello-0"] {
        assert!(read.contains(&w), "{w} not read: {body}");
    }

    // What `weft proxy-config`, `weft tap` and the dashboard's certificates read crosses
    // hosts too: over mutual TLS through the tunnel to the proxy's admin port, the admin
    // token inside the TLS.
    let (code, body) = support::admin_get_as(admin, "/proxies/default/echo-b/config", Some(&token))
        .await
        .unwrap_or_default();
    let config: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        config["certificate"]["spiffeId"], "spiffe://cluster.local/ns/default/sa/echo",
        "{body}"
    );
    let (_, listed) = support::admin_get_as(admin, "/proxies", Some(&token))
        .await
        .unwrap_or_default();
    assert!(
        listed.contains(&format!("\"tunnel\": \"{}:4108\"", network.address(2))),
        "{listed}"
    );
    let tap = {
        let token = token.clone();
        tokio::spawn(async move {
            let path = "/services/default/echo/tap?max=1&seconds=20&path=/tapped";
            support::admin_get_as(admin, path, Some(&token)).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tap.is_finished() && Instant::now() < deadline {
        let _ = call_path("echo", "/tapped");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, tapped) = tap.await.expect("tap task").unwrap_or_default();
    assert_eq!(code, 200, "{tapped}");
    assert!(
        tapped.contains("/tapped") && tapped.contains("\"end\""),
        "{tapped}"
    );
    // The tunnel answers nothing in plaintext: no request is relayed outside TLS.
    let plain = a.ns.exec_any(&[
        "curl",
        "-sS",
        "-m",
        "3",
        &format!("http://{}:4108/metrics/{echo_ip}", network.address(2)),
    ]);
    assert!(
        !plain.map(|o| o.status.success()).unwrap_or(false),
        "the tunnel answered plaintext"
    );

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

/// What `weft up` runs on host B.
const HELLO: &str = "apiVersion: weft.dev/v1alpha1
kind: LocalWorkload
metadata: {name: hello, namespace: default}
spec:
  port: 8080
  command: [weft, echo, --http, \"0.0.0.0:8080\"]
";

/// Waits until `weft up` on `host` runs workload `name`, registered as that host's; its
/// address.
async fn registered_by_up(admin: SocketAddr, token: &str, name: &str, host: &Host) -> Ipv4Addr {
    let deadline = Instant::now() + Duration::from_secs(40);
    let joined = format!("h-{}", host.name);
    while Instant::now() < deadline {
        let (_, body) = support::admin_get_as(admin, "/workloads", Some(token))
            .await
            .unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let found = list.as_array().into_iter().flatten().find_map(|w| {
            (w["name"] == name && w["host"] == joined.as_str())
                .then(|| w["address"].as_str().and_then(|a| a.parse().ok()))
                .flatten()
        });
        let up = host.ns.proc("up").map(|p| p.log_text()).unwrap_or_default();
        if let Some(address) = found.filter(|_| up.contains("Weft is up")) {
            assert!(
                up.contains(&format!("on host {joined} of the mesh")),
                "{up}"
            );
            return address;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{name} did not start within 40 s:{}", host.ns.logs(30));
}

/// The tunnel server name for `ip` (as `weft_identity::hbone::server_name` makes it).
fn weft_identity_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}.hbone.weft")
}
