//! The benchmark's mesh of two hosts: network namespaces `wfhb-a` and `wfhb-b` on bridge
//! `wfth92` (198.18.92.0/24; this namespace is .254), etcd and one replica on the bridge,
//! each host joined with its tunnel, `echo-a` on host A, `echo-b` on host B, and the client
//! (`sleep`) on host A. Everything it starts is stopped, and everything it made removed, when
//! dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const NET: &str = "198.18.92";
const BRIDGE: &str = "wfth92";
const HOSTS: [&str; 2] = ["wfhb-a", "wfhb-b"];

pub struct Mesh {
    dir: PathBuf,
    /// Long-running processes, stopped in reverse order.
    children: Vec<(String, Child)>,
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{what} not ready within 40 s")
}

impl Mesh {
    pub fn start(weft: &Path) -> Result<Mesh> {
        let dir = std::env::temp_dir().join(format!("weft-hosts-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut mesh = Mesh {
            dir,
            children: Vec::new(),
        };
        mesh.remove_leftovers();
        mesh.network()?;
        let w = weft.display().to_string();
        let hub = format!("{NET}.254");
        mesh.spawn(
            "etcd",
            None,
            &[
                "etcd",
                "--name",
                "n1",
                "--data-dir",
                &mesh.path("etcd"),
                "--listen-client-urls",
                &format!("http://{hub}:2379"),
                "--advertise-client-urls",
                &format!("http://{hub}:2379"),
                "--listen-peer-urls",
                &format!("http://{hub}:2380"),
                "--initial-advertise-peer-urls",
                &format!("http://{hub}:2380"),
                "--initial-cluster",
                &format!("n1=http://{hub}:2380"),
            ],
        )?;
        let seal = mesh.path("seal.key");
        run(&w, &["ca", "seal-key", "--out", &seal])?;
        let replica = mesh.path("replica");
        mesh.spawn(
            "control",
            None,
            &[
                &w,
                "control",
                "--store",
                "etcd",
                "--etcd-endpoints",
                &format!("http://{hub}:2379"),
                "--ca-seal-key",
                &seal,
                "--state-dir",
                &replica,
                "--grpc-addr",
                &format!("{hub}:4180"),
                "--admin-addr",
                &format!("{hub}:4181"),
            ],
        )?;
        let token = Path::new(&replica).join("admin-token");
        wait_for("the replica", || {
            token.exists()
                && Command::new("curl")
                    .args(["-sf", &format!("http://{hub}:4181/ready")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        })?;
        // PERMISSIVE is the default; STRICT is what a mesh of hosts should run.
        let strict = mesh.path("strict.yaml");
        std::fs::write(
            &strict,
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n",
        )?;
        let token_s = token.display().to_string();
        let admin = format!("{hub}:4181");
        run(
            &w,
            &[
                "apply",
                "-f",
                &strict,
                "--control",
                &admin,
                "--admin-token-file",
                &token_s,
            ],
        )?;
        for (i, host) in HOSTS.iter().enumerate() {
            let state = mesh.path(&format!("state-{host}"));
            run(
                &w,
                &[
                    "host",
                    "join",
                    host,
                    "--address",
                    &format!("{NET}.{}", i + 1),
                    "--state-dir",
                    &state,
                    "--control",
                    &admin,
                    "--admin-token-file",
                    &token_s,
                ],
            )?;
            // No admin token on the host: `weft run` registers with the host's credential.
            mesh.spawn(
                "tunnel",
                Some(host),
                &[&w, "host", "tunnel", "--state-dir", &state],
            )?;
        }
        let echo = |pod: &str| {
            vec![
                w.clone(),
                "echo".into(),
                "--http".into(),
                "0.0.0.0:8080".into(),
                "--pod".into(),
                pod.into(),
            ]
        };
        mesh.weft_run(&w, HOSTS[0], "echo-a", 8080, &echo("echo-a"))?;
        mesh.weft_run(&w, HOSTS[1], "echo-b", 8080, &echo("echo-b"))?;
        for name in ["echo-a", "echo-b"] {
            let log = mesh.dir.join(format!("{name}.log"));
            wait_for(name, || {
                std::fs::read_to_string(&log).is_ok_and(|t| t.contains("application started"))
            })?;
        }
        mesh.weft_run(
            &w,
            HOSTS[0],
            "client-a",
            9000,
            &["sleep".into(), "3600".into()],
        )?;
        let log = mesh.dir.join("client-a.log");
        wait_for("the client", || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("application started"))
        })?;
        Ok(mesh)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn remove_leftovers(&self) {
        for name in ["echo-a", "echo-b", "client-a"] {
            let _ = run("ip", &["netns", "del", &format!("weft-{name}")]);
            let _ = std::fs::remove_dir_all(format!("/etc/netns/weft-{name}"));
        }
        for host in HOSTS {
            let _ = run("ip", &["netns", "del", host]);
        }
        let _ = run("ip", &["link", "del", BRIDGE]);
    }

    fn network(&self) -> Result<()> {
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        run(
            "ip",
            &["addr", "add", &format!("{NET}.254/24"), "dev", BRIDGE],
        )?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        for (i, host) in HOSTS.iter().enumerate() {
            let outside = format!("{BRIDGE}h{}", i + 1);
            run("ip", &["netns", "add", host])?;
            run(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", "uplink", "netns",
                    host,
                ],
            )?;
            run("ip", &["link", "set", &outside, "master", BRIDGE, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", host];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            inside(&[
                "ip",
                "addr",
                "add",
                &format!("{NET}.{}/24", i + 1),
                "dev",
                "uplink",
            ])?;
            inside(&["ip", "link", "set", "uplink", "up"])?;
            inside(&["ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Starts `cmd` (in host namespace `host`, if given), its output to `<dir>/<name>.log`.
    fn spawn(&mut self, name: &str, host: Option<&str>, cmd: &[&str]) -> Result<()> {
        let log = std::fs::File::create(self.dir.join(format!(
            "{name}{}.log",
            host.map(|h| format!("-{h}")).unwrap_or_default()
        )))?;
        let mut command = match host {
            Some(h) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", h]).args(cmd);
                c
            }
            None => {
                let mut c = Command::new(cmd[0]);
                c.args(&cmd[1..]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    fn weft_run(
        &mut self,
        w: &str,
        host: &str,
        name: &str,
        port: u16,
        app: &[String],
    ) -> Result<()> {
        let hub = format!("{NET}.254");
        let state = self.path(&format!("state-{host}"));
        let run_dir = self.path(&format!("run-{host}"));
        let port = port.to_string();
        let mut cmd: Vec<&str> = vec![
            w,
            "run",
            "--name",
            name,
            "--service",
            name,
            "--port",
            &port,
            "--control",
        ];
        let control = format!("{hub}:4180");
        let admin = format!("{hub}:4181");
        cmd.extend_from_slice(&[&control, "--control-admin", &admin, "--state-dir", &state]);
        cmd.extend_from_slice(&["--run-dir", &run_dir, "--drain-timeout", "500ms", "--"]);
        cmd.extend(app.iter().map(String::as_str));
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", host])
            .args(&cmd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("weft run {name}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// The pid of the client's application (`sleep`), whose network namespace the load
    /// enters.
    pub fn client_pid(&self) -> Result<u32> {
        let runner = self
            .children
            .iter()
            .find(|(n, _)| n == "client-a")
            .map(|(_, c)| c.id())
            .context("no client")?;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
            let ppid: u32 = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            if ppid == runner && comm == "sleep" {
                return Ok(pid);
            }
        }
        bail!("the client's application is not running")
    }

    /// Service `name`'s VIP and port, from the client's hosts file.
    pub fn vip(&self, service: &str) -> Result<std::net::SocketAddr> {
        let hosts = std::fs::read_to_string("/etc/netns/weft-client-a/hosts")?;
        let name = format!("{service}.default");
        let ip = hosts
            .lines()
            .find(|l| l.split_whitespace().skip(1).any(|n| n == name))
            .and_then(|l| l.split_whitespace().next())
            .with_context(|| format!("{name} in the client's hosts file"))?;
        Ok(format!("{ip}:8080").parse()?)
    }

    /// Every log's last lines, for a failure.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    out.push_str(&format!(
                        "----- {}\n{}\n",
                        p.display(),
                        lines[lines.len().saturating_sub(10)..].join("\n")
                    ));
                }
            }
        }
        out
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // Workloads first (each removes its namespace and registration), then the rest.
        for (_, child) in self.children.iter().rev() {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in self.children.iter_mut().rev() {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_leftovers();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
