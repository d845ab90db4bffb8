//! nginx, twice: the backend every setup ends at (`return 200 "ok"`), and the plain reverse
//! proxy under test (one worker, keep-alive to the upstream). Both run in the foreground
//! (`daemon off`) with pid file, error log and temp paths inside their scratch directory and
//! access logs off.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{
    addr, ensure_free, find_on_path, is_executable, wait_ready, Missing, BACKEND, NGINX_LISTEN,
};
use crate::children::Proc;

pub const INSTALL: &str = "apt-get update && apt-get install -y nginx";

/// The nginx binary: `--nginx`, else `nginx` on PATH / in the sbin directories.
pub fn binary(explicit: Option<&Path>) -> Result<PathBuf, Missing> {
    let found = match explicit {
        Some(p) => Some(p.to_path_buf()).filter(|p| is_executable(p)),
        None => find_on_path("nginx"),
    };
    found.ok_or_else(|| Missing {
        what: "nginx",
        looked: explicit.map_or("$PATH, /usr/sbin".to_string(), |p| p.display().to_string()),
        install: INSTALL.to_string(),
    })
}

/// Starts the backend on [`BACKEND`] and waits until it answers 200.
pub fn start_backend(bin: &Path, dir: &Path) -> Result<Proc> {
    let server = format!(
        "    server {{\n        listen {BACKEND};\n        location / {{ return 200 \"ok\"; }}\n    }}\n"
    );
    start(bin, "backend nginx", dir, &server, BACKEND)
}

/// Starts the nginx reverse proxy on [`NGINX_LISTEN`] and waits until a request through it
/// reaches the backend.
pub fn start_proxy(bin: &Path, dir: &Path) -> Result<Proc> {
    let server = format!(
        "    upstream backend {{\n        server {BACKEND};\n        keepalive 32;\n        \
         keepalive_requests 1000000;\n        keepalive_timeout 300s;\n    }}\n    \
         server {{\n        listen {NGINX_LISTEN};\n        location / {{\n            \
         proxy_pass http://backend;\n            proxy_http_version 1.1;\n            \
         proxy_set_header Connection \"\";\n        }}\n    }}\n"
    );
    start(bin, "nginx", dir, &server, NGINX_LISTEN)
}

fn start(bin: &Path, name: &str, dir: &Path, servers: &str, listen: &str) -> Result<Proc> {
    ensure_free(addr(listen)?, name)?;
    std::fs::create_dir_all(dir.join("tmp"))
        .with_context(|| format!("creating {}", dir.join("tmp").display()))?;
    let d = dir.display();
    let conf = format!(
        "# written by weft-bench\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n    \
         access_log off;\n    \
         keepalive_timeout 300s;\n    \
         keepalive_requests 1000000;\n    \
         client_body_temp_path {d}/tmp/client_body;\n    \
         proxy_temp_path {d}/tmp/proxy;\n    \
         fastcgi_temp_path {d}/tmp/fastcgi;\n    \
         uwsgi_temp_path {d}/tmp/uwsgi;\n    \
         scgi_temp_path {d}/tmp/scgi;\n\
         {servers}}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).with_context(|| format!("writing {}", conf_path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"]);
    let mut proc = Proc::spawn(name, &mut cmd, &dir.join("stderr.log"))?;
    wait_ready(
        &mut proc,
        addr(listen)?,
        "/",
        "bench",
        Duration::from_secs(10),
    )
    .with_context(|| format!("starting {name} (config {})", conf_path.display()))?;
    Ok(proc)
}
