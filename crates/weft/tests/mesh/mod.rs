//! A small mesh on loopback for proxy behaviour tests: two echo workloads (`a`, `b`) behind a
//! Service `echo`, and a `client` workload, each with a real `weft proxy` beside it. Each test
//! gets its own address block (127.0.<block>.x) so tests run in parallel.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::support::{wait_listening, wait_ready, Proc};

pub struct TestMesh {
    pub dir: PathBuf,
    pub block: u8,
    pub procs: Vec<Proc>,
}

pub const NS: &str = "t";

impl TestMesh {
    pub fn ip(&self, host: u8) -> String {
        format!("127.0.{}.{host}", self.block)
    }

    pub fn addr(&self, host: u8, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(host).parse().expect("ip"), port)
    }

    /// The client's proxy (outbound), where tests send requests.
    pub fn client(&self) -> SocketAddr {
        self.addr(3, 4140)
    }

    pub fn admin(&self, host: u8) -> SocketAddr {
        self.addr(host, 4191)
    }

    pub fn config(&self, routes: &str) -> String {
        let (a, b, c) = (self.ip(1), self.ip(2), self.ip(3));
        format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: t}}
spec:
  selector: {{app: echo}}
  ports:
  - {{name: http, port: 80, targetPort: 8080, appProtocol: http}}
  - {{name: grpc, port: 7070, appProtocol: grpc}}
  - {{name: other, port: 8081, targetPort: 8080}}
  - {{name: raw, port: 9090, appProtocol: tcp}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo-b, namespace: t}}
spec:
  selector: {{app: echo, version: b}}
  ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: a, namespace: t}}
spec: {{address: {a}, labels: {{app: echo, version: a}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: b, namespace: t}}
spec: {{address: {b}, labels: {{app: echo, version: b}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: t}}
spec: {{address: {c}, labels: {{app: client}}}}
---
{routes}
"#
        )
    }

    pub fn write_config(&self, routes: &str) {
        std::fs::write(self.dir.join("config/mesh.yaml"), self.config(routes))
            .expect("write config");
    }

    /// Starts echo servers and proxies; `client_args` are extra flags for the client's proxy.
    pub async fn start(block: u8, routes: &str, client_args: &[&str]) -> TestMesh {
        let dir = std::env::temp_dir().join(format!("weft-test-{}-{block}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).expect("dir");
        let mut mesh = TestMesh {
            dir: dir.clone(),
            block,
            procs: Vec::new(),
        };
        mesh.write_config(routes);
        for (host, name) in [(1u8, "a"), (2, "b"), (3, "client")] {
            if name != "client" {
                let http = format!("{},{}", mesh.addr(host, 8080), mesh.addr(host, 7070));
                let tcp = mesh.addr(host, 9090).to_string();
                let echo = Proc::spawn(
                    &format!("echo-{name}"),
                    &[
                        "echo",
                        "--http",
                        &http,
                        "--tcp",
                        &tcp,
                        "--service",
                        "echo",
                        "--namespace",
                        NS,
                        "--pod",
                        name,
                    ]
                    .map(String::from),
                    &dir,
                );
                mesh.procs.push(echo);
            }
            let mut args: Vec<String> = [
                "proxy",
                "--config-dir",
                &dir.join("config").display().to_string(),
                "--workload",
                name,
                "--namespace",
                NS,
                "--outbound-addr",
                &mesh.addr(host, 4140).to_string(),
                "--inbound-addr",
                &mesh.addr(host, 4143).to_string(),
                "--admin-addr",
                &mesh.addr(host, 4191).to_string(),
                "--app-ip",
                &mesh.ip(host),
                "--drain-timeout",
                "5s",
            ]
            .map(String::from)
            .to_vec();
            if name == "client" {
                args.extend(client_args.iter().map(|s| s.to_string()));
            }
            args.extend(crate::support::admin_token_args(&dir));
            let mut proxy = Proc::spawn(&format!("proxy-{name}"), &args, &dir);
            wait_ready(mesh.admin(host), &mut proxy).await;
            mesh.procs.push(proxy);
            if name != "client" {
                wait_listening(mesh.addr(host, 8080)).await;
            }
        }
        mesh
    }

    pub fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .expect("no such process")
    }

    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("== {}\n{}", p.name, p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        self.procs.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sum of a metric's samples whose line contains every one of `parts`.
pub fn metric_sum(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
