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
mod netns;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netns::Netns;
use support::{admin_get, wait_ready, Proc, WEFT};

/// The network between hosts: 198.18.89.0/24 (RFC 2544's benchmarking range).
const NET: &str = "198.18.89";
/// The test namespace's end of it, where etcd and the replica listen.
const HUB: &str = "198.18.89.254";
const BRIDGE: &str = "wfth89";

/// The bridge that is the network between hosts, deleted when dropped.
struct HostsNetwork;

impl HostsNetwork {
    fn create() -> HostsNetwork {
        let _ = netns::run("ip", &["link", "del", BRIDGE]);
        netns::run("ip", &["link", "add", BRIDGE, "type", "bridge"]).expect("bridge");
        netns::run("ip", &["addr", "add", &format!("{HUB}/24"), "dev", BRIDGE]).expect("addr");
        netns::run("ip", &["link", "set", BRIDGE, "up"]).expect("up");
        HostsNetwork
    }

    /// Plugs `host` in at `NET.n`, its interface `uplink`.
    fn plug(&self, host: &Netns, n: u8) {
        let outside = format!("{BRIDGE}h{n}");
        let _ = netns::run("ip", &["link", "del", &outside]);
        netns::run(
            "ip",
            &[
                "link", "add", &outside, "type", "veth", "peer", "name", "uplink", "netns",
                &host.name,
            ],
        )
        .expect("veth");
        netns::run("ip", &["link", "set", &outside, "master", BRIDGE, "up"]).expect("plug");
        host.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{NET}.{n}/24"),
            "dev",
            "uplink",
        ])
        .expect("host address");
        host.exec(&["ip", "link", "set", "uplink", "up"])
            .expect("uplink up");
    }
}

impl Drop for HostsNetwork {
    fn drop(&mut self) {
        let _ = netns::run("ip", &["link", "del", BRIDGE]);
    }
}

/// One host: its namespace, its state directory (admin token, `host.json`), its run directory.
struct Host {
    ns: Netns,
    name: &'static str,
    state: PathBuf,
    run: PathBuf,
}

impl Host {
    fn new(name: &'static str, dir: &Path, network: &HostsNetwork, n: u8) -> Host {
        let ns = Netns::create(&format!("wfth-{name}"), dir.join(format!("logs-{name}")))
            .expect("host namespace");
        network.plug(&ns, n);
        let state = dir.join(format!("host-{name}"));
        std::fs::create_dir_all(&state).expect("state dir");
        Host {
            ns,
            name,
            state,
            run: dir.join(format!("run-{name}")),
        }
    }

    fn host_args(&self) -> Vec<String> {
        [
            "--control-admin",
            &format!("{HUB}:4181"),
            "--state-dir",
            &self.state.display().to_string(),
            "--run-dir",
            &self.run.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `weft run` on this host: workload `name` of `service` (its service account too) on
    /// `port`, running `command`.
    fn run(&mut self, name: &str, service: &str, port: u16, command: &[&str]) {
        let mut args: Vec<String> = [
            "run",
            "--name",
            name,
            "--service",
            service,
            "--service-account",
            service,
            "--port",
            &port.to_string(),
            "--control",
            &format!("{HUB}:4180"),
            // Out within the test namespace's stop grace (3 s).
            "--drain-timeout",
            "500ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.host_args());
        args.push("--".into());
        args.extend(command.iter().map(|s| s.to_string()));
        self.ns.spawn(name, WEFT, &args, &[]).expect("weft run");
    }

    /// Runs `cmd` in workload `workload`'s network namespace (its traffic captured by its
    /// proxy), entered through its application's process: a namespace `weft run` made inside
    /// a host namespace is named only in that run's mount namespace, not in the test's.
    fn in_workload(&self, workload: &str, app: &str, cmd: &[&str]) -> std::process::Output {
        let runner = self
            .ns
            .proc(workload)
            .map(|p| p.child.id())
            .expect("the workload's runner");
        let pid = child_named(runner, app).unwrap_or_else(|| panic!("{workload}'s {app} process"));
        Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(cmd)
            .output()
            .expect("nsenter")
    }
}

/// The VIP of `name` in workload `workload`'s hosts file (which `ip netns exec` would
/// mount as its `/etc/hosts`).
fn vip(workload: &str, name: &str) -> String {
    let hosts = std::fs::read_to_string(format!("/etc/netns/weft-{workload}/hosts"))
        .expect("the workload's hosts file");
    hosts
        .lines()
        .find(|l| l.split_whitespace().skip(1).any(|n| n == name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} in {hosts}"))
        .to_string()
}

/// A child of `parent` whose command is `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after its ')'.
            let (head, rest) = stat.rsplit_once(") ")?;
            let name = head.split_once(" (")?.1;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && name == comm).then_some(pid)
        })
}

impl Drop for Host {
    fn drop(&mut self) {
        // What killed runners left (workload namespaces are not inside the host's).
        let mut args = vec!["run".to_string(), "--cleanup".to_string()];
        args.extend(self.host_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = vec![WEFT];
        cmd.extend(args);
        let _ = self.ns.exec_any(&cmd);
    }
}

/// Waits until `ns/name` is registered with the replica; its address.
async fn registered(admin: SocketAddr, token: &str, name: &str, host: &Host) -> Ipv4Addr {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let (_, body) = support::admin_get_as(admin, "/workloads", Some(token))
            .await
            .unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let found = list.as_array().into_iter().flatten().find_map(|w| {
            (w["name"] == name)
                .then(|| w["address"].as_str().and_then(|a| a.parse().ok()))
                .flatten()
        });
        if let Some(address) = found {
            if host
                .ns
                .proc(name)
                .is_some_and(|p| p.log_text().contains("application started"))
            {
                return address;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{name} did not start within 40 s:{}", host.ns.logs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_crosses_hosts_over_hbone_with_mutual_tls_end_to_end() {
    if let Err(reason) = netns::preflight(&["ip", "iptables", "curl"]) {
        netns::skip_or_fail("the hosts tests", &reason);
        return;
    }
    let Some(dir) = etcd_support::test_dir("the hosts tests", "weft-hosts") else {
        return;
    };
    // What a killed earlier run left: workload namespaces live outside the hosts'.
    for workload in ["echo-b", "client-a"] {
        let _ = netns::run("ip", &["netns", "del", &format!("weft-{workload}")]);
        let _ = std::fs::remove_dir_all(format!("/etc/netns/weft-{workload}"));
    }
    let network = HostsNetwork::create();
    let etcd = etcd_support::Etcd::start(HUB, &dir);
    let seal = dir.join("seal.key");
    let out = Command::new(WEFT)
        .args(["ca", "seal-key", "--out", &seal.display().to_string()])
        .output()
        .expect("seal key");
    assert!(out.status.success());
    let replica_state = dir.join("replica");
    let admin: SocketAddr = format!("{HUB}:4181").parse().expect("addr");
    let args: Vec<String> = [
        "control",
        "--store",
        "etcd",
        "--etcd-endpoints",
        &etcd.client_url,
        "--ca-seal-key",
        &seal.display().to_string(),
        "--state-dir",
        &replica_state.display().to_string(),
        "--grpc-addr",
        &format!("{HUB}:4180"),
        "--admin-addr",
        &admin.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut replica = Proc::spawn("control", &args, &dir);
    wait_ready(admin, &mut replica).await;
    let token_file = replica_state.join("admin-token");
    let token = std::fs::read_to_string(&token_file)
        .expect("token")
        .trim()
        .to_string();

    let mut a = Host::new("a", &dir, &network, 1);
    let mut b = Host::new("b", &dir, &network, 2);
    for (host, n) in [(&a, 1), (&b, 2)] {
        let out = Command::new(WEFT)
            .args(["host", "join", &format!("h-{}", host.name)])
            .args(["--address", &format!("{NET}.{n}")])
            .args(["--state-dir", &host.state.display().to_string()])
            .args(["--control", &admin.to_string()])
            .args(["--admin-token-file", &token_file.display().to_string()])
            .output()
            .expect("weft host join");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `weft run` on the host authorizes its registrations with the replica's token.
        std::fs::copy(&token_file, host.state.join("admin-token")).expect("token copy");
    }
    for host in [&mut a, &mut b] {
        let args: Vec<String> = vec![
            "host".into(),
            "tunnel".into(),
            "--state-dir".into(),
            host.state.display().to_string(),
        ];
        host.ns.spawn("tunnel", WEFT, &args, &[]).expect("tunnel");
    }

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
            "echo | openssl s_client -connect {NET}.2:4108 -servername {} 2>&1",
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
    let _ = admin_get(admin, "/ready").await;
    drop(a);
    drop(b);
    drop(replica);
    drop(etcd);
    drop(network);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tunnel server name for `ip` (as `weft_identity::hbone::server_name` makes it).
fn weft_identity_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}.hbone.weft")
}
