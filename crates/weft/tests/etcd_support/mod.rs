//! A real etcd (Debian's `etcd-server`) on loopback for tests: one member, its data in a
//! temporary directory, killed when dropped. Installed with apt-get when missing and running
//! as root; otherwise the caller skips loudly (and fails under CI=true).

#![allow(dead_code)]

pub mod replica;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    pub client_url: String,
    pub dir: PathBuf,
    /// etcdctl's TLS flags when the member serves TLS.
    ctl_tls: Vec<String>,
    log: PathBuf,
    child: Child,
}

/// PEM files for an etcd that serves TLS and requires client certificates, made with the
/// `openssl` command: a CA, the member's certificate (IP SAN), and a client certificate.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Makes the files in `dir` for a member listening on `ip`.
    pub fn make(dir: &Path, ip: &str) -> TlsFiles {
        std::fs::create_dir_all(dir).expect("tls dir");
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("running openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &key[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=etcd test CA",
                ][..],
            ]
            .concat(),
        );
        let leaf = |name: &str, cn: &str, ext: &str| {
            std::fs::write(path(&format!("{name}.ext")), ext).expect("ext file");
            openssl(
                &[
                    &["req"][..],
                    &key[..],
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                        "-subj",
                        &format!("/CN={cn}"),
                    ][..],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        leaf(
            "server",
            "etcd",
            &format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth\n"),
        );
        leaf(
            "client",
            "weft-control",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        TlsFiles {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `etcd` and `etcdctl` can run here, installing them as root if needed.
pub fn available() -> Result<(), String> {
    // `etcd --version` and `etcdctl version` (etcd 3.4's spellings).
    let works = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("etcd", "--version") && works("etcdctl", "version") {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("etcd is not installed and installing it needs root (apt-get install -y etcd-server etcd-client)".into());
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "etcd-server", "etcd-client"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install etcd-server etcd-client: {status}"));
    }
    Ok(())
}

/// A fresh `$TMPDIR/<name>-<pid>` for a test that needs etcd; `None` after a loud skip (a
/// failure under CI=true) when etcd cannot run here.
pub fn test_dir(what: &str, name: &str) -> Option<PathBuf> {
    if let Err(reason) = available() {
        crate::netns::skip_or_fail(what, &reason);
        return None;
    }
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    Some(dir)
}

impl Etcd {
    /// Starts one member on `ip` (client port 2379, peer port 2380) with its data in `dir`.
    pub fn start(ip: &str, dir: &Path) -> Etcd {
        Etcd::start_with(ip, dir, None)
    }

    /// Like [`Etcd::start`], serving clients over TLS and requiring client certificates
    /// (etcd's `--client-cert-auth`) signed by `tls.ca`.
    pub fn start_tls(ip: &str, dir: &Path, tls: &TlsFiles) -> Etcd {
        Etcd::start_with(ip, dir, Some(tls))
    }

    fn start_with(ip: &str, dir: &Path, tls: Option<&TlsFiles>) -> Etcd {
        let etcd = Etcd::spawn("n1", ip, dir, &format!("n1=http://{ip}:2380"), tls);
        etcd.wait_healthy();
        etcd
    }

    /// Starts a cluster of one member per address (`n1`, `n2`, ...), and waits until every
    /// member is healthy.
    pub fn start_cluster(ips: &[&str], dir: &Path) -> Vec<Etcd> {
        let cluster: Vec<String> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("n{}=http://{ip}:2380", i + 1))
            .collect();
        let cluster = cluster.join(",");
        let members: Vec<Etcd> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| Etcd::spawn(&format!("n{}", i + 1), ip, dir, &cluster, None))
            .collect();
        for member in &members {
            member.wait_healthy();
        }
        members
    }

    /// Stops this member abruptly (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts member `name` on `ip` with its data in `dir/etcd-<name>` (removed first) and
    /// its log in `dir/etcd-<name>.log`; does not wait.
    fn spawn(
        name: &str,
        ip: &str,
        dir: &Path,
        initial_cluster: &str,
        tls: Option<&TlsFiles>,
    ) -> Etcd {
        let data = dir.join(format!("etcd-{name}"));
        let _ = std::fs::remove_dir_all(&data);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://{ip}:2379");
        let peer_url = format!("http://{ip}:2380");
        let log_path = dir.join(format!("etcd-{name}.log"));
        let log = std::fs::File::create(&log_path).expect("etcd log");
        let show = |p: &PathBuf| p.display().to_string();
        let (serve_tls, ctl_tls) = match tls {
            None => (vec![], vec![]),
            Some(t) => (
                vec![
                    format!("--cert-file={}", show(&t.server_cert)),
                    format!("--key-file={}", show(&t.server_key)),
                    format!("--trusted-ca-file={}", show(&t.ca)),
                    "--client-cert-auth".to_string(),
                ],
                vec![
                    format!("--cacert={}", show(&t.ca)),
                    format!("--cert={}", show(&t.client_cert)),
                    format!("--key={}", show(&t.client_key)),
                ],
            ),
        };
        let child = Command::new("etcd")
            .args(&serve_tls)
            .args([
                "--name",
                name,
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                initial_cluster,
                "--initial-cluster-state",
                "new",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting etcd");
        Etcd {
            client_url,
            dir: dir.to_path_buf(),
            ctl_tls,
            log: log_path,
            child,
        }
    }

    fn wait_healthy(&self) {
        let addr: SocketAddr = self
            .client_url
            .rsplit_once("//")
            .map(|(_, a)| a)
            .unwrap_or_default()
            .parse()
            .expect("addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && self.ctl(&["endpoint", "health"]).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd did not start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Runs `etcdctl` against this member; its stdout, or its stderr as the error.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client_url))
            .args(&self.ctl_tls)
            .args(args)
            .output()
            .map_err(|e| format!("etcdctl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.ctl(&["get", prefix, "--prefix", "--keys-only"])
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}
