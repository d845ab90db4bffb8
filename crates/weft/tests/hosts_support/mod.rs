//! Test support for meshes of hosts: hosts as network namespaces plugged into a network
//! between them (a bridge in the test's namespace, `198.18.<n>.0/24`), a hub on that network
//! with a real etcd and a control-plane replica, and per host: `weft host join`, its tunnel,
//! and workloads started with `weft run`.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::{self, Netns};
use crate::support::{wait_ready, Proc, WEFT};

/// The bridge that is the network between hosts (`198.18.<n>.0/24`, bridge `wfth<n>`),
/// deleted when dropped.
pub struct HostsNetwork {
    pub n: u8,
}

impl HostsNetwork {
    pub fn create(n: u8) -> HostsNetwork {
        let network = HostsNetwork { n };
        let bridge = network.bridge();
        let _ = netns::run("ip", &["link", "del", &bridge]);
        netns::run("ip", &["link", "add", &bridge, "type", "bridge"]).expect("bridge");
        netns::run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", network.hub()),
                "dev",
                &bridge,
            ],
        )
        .expect("addr");
        netns::run("ip", &["link", "set", &bridge, "up"]).expect("up");
        network
    }

    fn bridge(&self) -> String {
        format!("wfth{}", self.n)
    }

    /// The test namespace's address on it, where the hub's etcd and replica listen.
    pub fn hub(&self) -> String {
        self.address(254)
    }

    pub fn address(&self, host: u8) -> String {
        format!("198.18.{}.{host}", self.n)
    }

    /// Plugs `host` in at address `.n`, its interface `uplink`.
    pub fn plug(&self, host: &Netns, n: u8) {
        let bridge = self.bridge();
        let outside = format!("{bridge}h{n}");
        let _ = netns::run("ip", &["link", "del", &outside]);
        netns::run(
            "ip",
            &[
                "link", "add", &outside, "type", "veth", "peer", "name", "uplink", "netns",
                &host.name,
            ],
        )
        .expect("veth");
        netns::run("ip", &["link", "set", &outside, "master", &bridge, "up"]).expect("plug");
        host.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.address(n)),
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
        let _ = netns::run("ip", &["link", "del", &self.bridge()]);
    }
}

/// The hub: etcd and a replica on the network between hosts.
pub struct Hub {
    pub etcd: crate::etcd_support::Etcd,
    pub replica: Proc,
    pub admin: SocketAddr,
    pub token_file: PathBuf,
    pub token: String,
    pub seal: PathBuf,
}

impl Hub {
    pub async fn start(network: &HostsNetwork, dir: &Path) -> Hub {
        let hub = network.hub();
        let etcd = crate::etcd_support::Etcd::start(&hub, dir);
        let seal = dir.join("seal.key");
        let out = Command::new(WEFT)
            .args(["ca", "seal-key", "--out", &seal.display().to_string()])
            .output()
            .expect("seal key");
        assert!(out.status.success());
        let state = dir.join("replica");
        let admin: SocketAddr = format!("{hub}:4181").parse().expect("addr");
        let args = replica_args(&etcd.client_url, &seal, &state, &hub);
        let mut replica = Proc::spawn("control", &args, dir);
        wait_ready(admin, &mut replica).await;
        let token_file = state.join("admin-token");
        let token = std::fs::read_to_string(&token_file)
            .expect("token")
            .trim()
            .to_string();
        Hub {
            etcd,
            replica,
            admin,
            token_file,
            token,
            seal,
        }
    }
}

/// `weft control` on etcd at `etcd`, listening on `ip`.
pub fn replica_args(etcd: &str, seal: &Path, state: &Path, ip: &str) -> Vec<String> {
    [
        "control",
        "--store",
        "etcd",
        "--etcd-endpoints",
        etcd,
        "--ca-seal-key",
        &seal.display().to_string(),
        "--state-dir",
        &state.display().to_string(),
        "--grpc-addr",
        &format!("{ip}:4180"),
        "--admin-addr",
        &format!("{ip}:4181"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Removes what a killed earlier run left of `workloads` (their namespaces live outside the
/// hosts').
pub fn remove_stale(workloads: &[&str]) {
    for workload in workloads {
        let _ = netns::run("ip", &["netns", "del", &format!("weft-{workload}")]);
        let _ = std::fs::remove_dir_all(format!("/etc/netns/weft-{workload}"));
    }
}

/// One host: its namespace, its state directory (`host.json`, `host-credential`), its run
/// directory.
pub struct Host {
    pub ns: Netns,
    pub name: &'static str,
    pub state: PathBuf,
    pub run: PathBuf,
    /// The replica this host's runs register with (its admin address's IP).
    pub hub: String,
    /// Where this host's proxies get their configuration (`weft run --control`).
    pub grpc: String,
}

impl Host {
    pub fn new(name: &'static str, dir: &Path, network: &HostsNetwork, n: u8) -> Host {
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
            hub: network.hub(),
            grpc: format!("{}:4180", network.hub()),
        }
    }

    fn host_args(&self) -> Vec<String> {
        [
            "--control-admin",
            &format!("{}:4181", self.hub),
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
    pub fn run(&mut self, name: &str, service: &str, port: u16, command: &[&str]) {
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
            &self.grpc,
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

    /// `weft up DIR` on this host, given only its state and run directories: on a joined
    /// host, the control plane and its addresses come from the join.
    pub fn up(&mut self, dir: &Path) {
        let args: Vec<String> = [
            "up",
            &dir.display().to_string(),
            "--state-dir",
            &self.state.display().to_string(),
            "--run-dir",
            &self.run.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.ns.spawn("up", WEFT, &args, &[]).expect("weft up");
    }

    /// Runs `cmd` in workload `workload`'s network namespace (its traffic captured by its
    /// proxy), entered through its application's process: a namespace `weft run` made inside
    /// a host namespace is named only in that run's mount namespace, not in the test's.
    pub fn in_workload(&self, workload: &str, app: &str, cmd: &[&str]) -> std::process::Output {
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
pub fn vip(workload: &str, name: &str) -> String {
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
pub fn child_named(parent: u32, comm: &str) -> Option<u32> {
    crate::support::child_of(parent, |name, _| name == comm)
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
pub async fn registered(admin: SocketAddr, token: &str, name: &str, host: &Host) -> Ipv4Addr {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let (_, body) = crate::support::admin_get_as(admin, "/workloads", Some(token))
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

impl Host {
    /// Joins the mesh through the hub as `h-<name>` at `network`'s address `.n`, and starts
    /// the host's tunnel.
    pub fn join(&mut self, hub: &Hub, network: &HostsNetwork, n: u8) {
        let out = Command::new(WEFT)
            .args(["host", "join", &format!("h-{}", self.name)])
            .args(["--address", &network.address(n)])
            .args(["--state-dir", &self.state.display().to_string()])
            .args(["--control", &hub.admin.to_string()])
            .args(["--admin-token-file", &hub.token_file.display().to_string()])
            .output()
            .expect("weft host join");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No admin token on the host: `weft run` registers with the host credential the join
        // kept, which is all a host should hold.
        assert!(
            self.state.join("host-credential").exists(),
            "the join kept no credential"
        );
        let args: Vec<String> = vec![
            "host".into(),
            "tunnel".into(),
            "--state-dir".into(),
            self.state.display().to_string(),
        ];
        self.ns.spawn("tunnel", WEFT, &args, &[]).expect("tunnel");
    }
}
