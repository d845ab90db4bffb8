//! A mesh run by a real `weft control` on loopback: a control plane, an echo workload with
//! its proxy (`echo-1`), and a client proxy (`client`), each in its own address block
//! (127.0.<block>.x) so tests run in parallel. Proxies get join tokens from `weft token
//! create`, exactly as a user would.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::{proxy_args, wait_listening, wait_ready, Proc, WEFT};

pub struct ControlMesh {
    pub dir: PathBuf,
    pub block: u8,
    pub control: Option<Proc>,
    pub procs: Vec<Proc>,
    pub cert_ttl: &'static str,
    /// More `weft control` arguments, for every start of the control plane.
    pub control_args: Vec<String>,
}

impl ControlMesh {
    pub fn ip(&self, host: u8) -> String {
        format!("127.0.{}.{host}", self.block)
    }

    pub fn addr(&self, host: u8, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(host).parse().expect("ip"), port)
    }

    pub fn grpc(&self) -> SocketAddr {
        self.addr(9, 4180)
    }

    pub fn control_admin(&self) -> SocketAddr {
        self.addr(9, 4181)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The control plane's admin token (its state directory's `admin-token`).
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state().join("admin-token"))
            .expect("the control plane wrote its admin token")
            .trim()
            .to_string()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// The client's proxy (outbound), where tests send requests.
    pub fn client(&self) -> SocketAddr {
        self.addr(1, 4140)
    }

    pub fn echo_inbound(&self) -> SocketAddr {
        self.addr(2, 4143)
    }

    pub fn config(&self, mode: &str) -> String {
        mesh_yaml(&self.ip(2), &self.ip(1), mode)
    }

    /// Writes the config and starts the control plane (not the proxies).
    pub async fn start(block: u8, mode: &str, cert_ttl: &'static str) -> ControlMesh {
        Self::start_with(block, mode, cert_ttl, &[]).await
    }

    /// [`ControlMesh::start`], with more arguments for `weft control`.
    pub async fn start_with(
        block: u8,
        mode: &str,
        cert_ttl: &'static str,
        control_args: &[&str],
    ) -> ControlMesh {
        let mut mesh = Self::fresh(block, cert_ttl, control_args);
        let config = mesh.config(mode);
        mesh.write_and_start(&config).await;
        mesh
    }

    /// Like [`ControlMesh::start`], with the configuration `config(&mesh)` makes (from the
    /// mesh's addresses) instead of [`mesh_yaml`]'s.
    pub async fn start_config(
        block: u8,
        cert_ttl: &'static str,
        config: impl FnOnce(&ControlMesh) -> String,
    ) -> ControlMesh {
        let mut mesh = Self::fresh(block, cert_ttl, &[]);
        let config = config(&mesh);
        mesh.write_and_start(&config).await;
        mesh
    }

    /// A mesh in an empty directory of its own, nothing started.
    fn fresh(block: u8, cert_ttl: &'static str, control_args: &[&str]) -> ControlMesh {
        let dir = std::env::temp_dir().join(format!("weft-control-{block}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        ControlMesh {
            dir,
            block,
            control: None,
            procs: Vec::new(),
            cert_ttl,
            control_args: control_args.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn write_and_start(&mut self, config: &str) {
        std::fs::write(self.config_dir().join("mesh.yaml"), config).expect("config");
        self.start_control().await;
    }

    pub async fn start_control(&mut self) {
        let mut args = vec![
            "control".to_string(),
            "--config-dir".into(),
            self.config_dir().display().to_string(),
            "--state-dir".into(),
            self.state().display().to_string(),
            "--grpc-addr".into(),
            self.grpc().to_string(),
            "--admin-addr".into(),
            self.control_admin().to_string(),
            "--cert-ttl".into(),
            self.cert_ttl.into(),
        ];
        args.extend(self.control_args.iter().cloned());
        let n = self.procs.len();
        self.control = Some(Proc::spawn(&format!("control-{n}"), &args, &self.dir));
        wait_listening(self.grpc()).await;
    }

    /// Stops the control plane abruptly (SIGKILL): the worst case for the proxies.
    pub fn kill_control(&mut self) {
        if let Some(mut c) = self.control.take() {
            let _ = c.child.kill();
            let _ = c.child.wait();
            self.procs.push(c);
        }
    }

    pub fn token(&self, workload: &str, extra: &[&str]) -> String {
        let mut cmd = std::process::Command::new(WEFT);
        cmd.args(["token", "create", "--workload", workload, "--state-dir"])
            .arg(self.state())
            .args(extra);
        let out = cmd.output().expect("weft token create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a proxy for `workload` at host `.host` with `token`; does not wait.
    pub fn spawn_proxy(&mut self, workload: &str, host: u8, token: &str) -> usize {
        let ca = self.state().join("ca/bundle.pem");
        let control = self.grpc().to_string();
        let mut args = proxy_args(&self.ip(host), &control, &ca, workload, token);
        args.push("--access-log".into());
        self.procs
            .push(Proc::spawn(&format!("proxy-{workload}"), &args, &self.dir));
        self.procs.len() - 1
    }

    /// Starts the echo server and both proxies, and waits until they are ready.
    pub async fn start_workloads(&mut self) {
        let echo = vec![
            "echo".to_string(),
            "--http".into(),
            format!("{}:8080", self.ip(2)),
            "--pod".into(),
            "echo-1".into(),
        ];
        self.procs.push(Proc::spawn("echo", &echo, &self.dir));
        let (t1, t2) = (self.token("client", &[]), self.token("echo-1", &[]));
        let c = self.spawn_proxy("client", 1, &t1);
        let e = self.spawn_proxy("echo-1", 2, &t2);
        wait_ready(self.addr(1, 4191), &mut self.procs[c]).await;
        wait_ready(self.addr(2, 4191), &mut self.procs[e]).await;
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits (bounded) until `name`'s log contains `needle` `times` times.
    pub async fn wait_log(&self, name: &str, needle: &str, times: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.log(name).matches(needle).count() >= times {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// An echo Service with its workload `echo-1` at `echo`, a `client` workload at `client`,
/// and mesh-wide PeerAuthentication `mode`.
pub fn mesh_yaml(echo: &str, client: &str, mode: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec:
  selector: {{app: echo}}
  ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-1, namespace: default}}
spec: {{address: {echo}, labels: {{app: echo}}, serviceAccount: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: default}}
spec: {{address: {client}, labels: {{app: client}}, serviceAccount: client}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec: {{mtls: {{mode: {mode}}}}}
"#,
    )
}

impl Drop for ControlMesh {
    fn drop(&mut self) {
        self.control.take();
        self.procs.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
