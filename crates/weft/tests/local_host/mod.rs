//! Test support for `weft run` / `weft up` on this host: a control plane, and a bridge,
//! subnet, run directory and state directory of the test's own, so that tests never touch
//! Weft's defaults (`weft0`, 10.213.0.0/16, /run/weft) or each other's. Also a snapshot of
//! everything Weft can leave behind on a host (namespaces, links, iptables rules, /etc/netns
//! entries, records), to compare before and after.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{admin_get, Proc};

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// One test's corner of the host.
pub struct LocalHost {
    pub dir: PathBuf,
    pub bridge: String,
    pub gateway: Ipv4Addr,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    pub control: Option<Proc>,
}

impl LocalHost {
    /// Test number `n` gets bridge `wefttest<n>`, subnet 10.214.<n>.0/24 and its own ports.
    pub fn new(n: u8) -> LocalHost {
        let dir = std::env::temp_dir().join(format!("weft-local-{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        let gateway = Ipv4Addr::new(10, 214, n, 1);
        LocalHost {
            dir,
            bridge: format!("wefttest{n}"),
            gateway,
            grpc: SocketAddr::new(gateway.into(), 4180),
            admin: SocketAddr::from(([127, 0, 0, 1], 4600 + u16::from(n))),
            control: None,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The flags that put `weft run` / `weft up` in this test's corner.
    pub fn host_args(&self) -> Vec<String> {
        [
            "--control-admin",
            &self.admin.to_string(),
            "--state-dir",
            &self.state_dir().display().to_string(),
            "--bridge",
            &self.bridge,
            "--bridge-cidr",
            &format!("{}/24", self.gateway),
            "--run-dir",
            &self.run_dir().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Writes a configuration file atomically (a temporary file renamed into place), as an
    /// operator should: a reload that reads a file while it is being rewritten in place can see
    /// it empty, which is a valid configuration without that file's resources.
    pub fn write_config(&self, name: &str, yaml: &str) {
        let config = self.dir.join("config");
        let tmp = config.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, yaml).expect("write config");
        std::fs::rename(&tmp, config.join(name)).expect("rename config");
    }

    /// Starts `weft control` on the config directory. It listens on every address (the
    /// bridge does not exist until the first `weft run`).
    pub async fn start_control(&mut self) {
        let args: Vec<String> = [
            "control",
            "--config-dir",
            &self.dir.join("config").display().to_string(),
            "--state-dir",
            &self.state_dir().display().to_string(),
            "--grpc-addr",
            &format!("0.0.0.0:{}", 4700 + u16::from(self.gateway.octets()[2])),
            "--admin-addr",
            &self.admin.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.grpc = SocketAddr::new(
            self.gateway.into(),
            4700 + u16::from(self.gateway.octets()[2]),
        );
        let mut control = Proc::spawn("control", &args, &self.dir);
        super::support::wait_ready(self.admin, &mut control).await;
        self.control = Some(control);
    }

    /// `weft run` arguments for a workload: `extra` flags, then `-- command`.
    pub fn run_args(
        &self,
        name: &str,
        service: &str,
        port: u16,
        extra: &[&str],
        command: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--name".into(),
            name.into(),
            "--service".into(),
            service.into(),
            "--port".into(),
            port.to_string(),
            "--control".into(),
            self.grpc.to_string(),
        ];
        args.extend(self.host_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--".into());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    /// Runs `weft args...` to its end (bounded by `timeout`): exit code, stdout, stderr.
    pub fn run_to_end(&self, args: &[String], timeout: Duration) -> (i32, String, String) {
        run_weft(args, timeout, None)
    }

    /// Waits until workload `ns/name` is registered and its proxy is ready; its address.
    pub async fn wait_running(&self, ns: &str, name: &str, proc: &mut Proc) -> Ipv4Addr {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("{} exited with {status}:\n{}", proc.name, proc.log_tail());
            }
            let (_, body) = admin_get(self.admin, "/workloads")
                .await
                .unwrap_or_default();
            let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let address = list.as_array().into_iter().flatten().find_map(|w| {
                (w["namespace"] == ns && w["name"] == name)
                    .then(|| {
                        w["address"]
                            .as_str()
                            .and_then(|a| a.parse::<Ipv4Addr>().ok())
                    })
                    .flatten()
            });
            if let Some(a) = address {
                let ready = admin_get(SocketAddr::new(a.into(), 4191), "/ready").await;
                // The runner starts the application right after the proxy is ready.
                if matches!(ready, Ok((200, _))) && proc.log_tail().contains("application started")
                {
                    return a;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{ns}/{name} not running within 30s:\n{}", proc.log_tail());
    }
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        // Runners are stopped by their Proc's drop (SIGKILL); what they leave is removed here.
        let mut args = vec!["run".to_string(), "--cleanup".to_string()];
        args.extend(self.host_args());
        let _ = run_weft(&args, Duration::from_secs(30), None);
        self.control.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `weft args...` to its end; `uid` runs it as that user.
pub fn run_weft(args: &[String], timeout: Duration, uid: Option<u32>) -> (i32, String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(WEFT);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().expect("spawn weft");
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    let out = child.wait_with_output().expect("weft output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What Weft may leave on a host.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub rules: Vec<String>,
    pub etc_netns: Vec<String>,
}

fn lines_of(program: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("run a host tool");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Namespaces, links and /etc/netns entries named like Weft's, and host iptables rules.
pub fn snapshot() -> Snapshot {
    let weftish = |s: &String| s.contains("weft") || s.contains("wv");
    let mut links: Vec<String> = lines_of("ip", &["-o", "link", "show"])
        .into_iter()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        })
        .filter(weftish)
        .collect();
    links.sort();
    let mut etc_netns: Vec<String> = std::fs::read_dir("/etc/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    etc_netns.sort();
    Snapshot {
        netns: lines_of("ip", &["netns", "list"])
            .into_iter()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect(),
        links,
        rules: lines_of("iptables-save", &[])
            .into_iter()
            .filter(|l| l.starts_with('-'))
            .collect(),
        etc_netns,
    }
}
