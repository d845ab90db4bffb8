//! The capture test's tools inside the namespace: a server-speaks-first banner server, and
//! curl run in the namespace with its answer parsed.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::netns::Netns;
use crate::BANNER;

/// The "server speaks first" application: writes the banner as soon as a connection is
/// accepted, then echoes. Polls so that it ends soon after `stop`.
pub fn banner_server(listener: TcpListener, stop: Arc<AtomicBool>) {
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("banner server: set_nonblocking: {e}");
        return;
    }
    let mut conns = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((conn, _)) => {
                let stop = stop.clone();
                conns.push(std::thread::spawn(move || banner_conn(conn, &stop)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                eprintln!("banner server: accept: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

pub fn banner_conn(mut conn: TcpStream, stop: &AtomicBool) {
    if conn.set_nonblocking(false).is_err()
        || conn
            .set_read_timeout(Some(Duration::from_millis(100)))
            .is_err()
        || conn.write_all(BANNER).is_err()
    {
        return;
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// What `curl` run inside the namespace did.
pub struct Curl {
    /// curl's exit code (0: an HTTP response arrived).
    pub exit: Option<i32>,
    /// The HTTP status, 0 if there was none.
    pub status: u16,
    pub body: String,
    pub stderr: String,
}

/// `curl -sS -m 5 ARGS...` inside the namespace, like an application with no proxy settings.
pub fn curl(ns: &Netns, args: &[&str]) -> Curl {
    let mut cmd = vec![
        "curl",
        "-sS",
        "-m",
        "5",
        "--noproxy",
        "*",
        "-w",
        "\n%{http_code}",
    ];
    cmd.extend_from_slice(args);
    let out = ns
        .exec_any(&cmd)
        .unwrap_or_else(|e| fail!(ns, "running curl in the namespace: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    Curl {
        exit: out.status.code(),
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A successful echo answer through the mesh, parsed.
pub fn echo_answer(ns: &Netns, what: &str, c: &Curl) -> Value {
    check!(
        ns,
        c.exit == Some(0) && c.status == 200,
        "{what}: expected 200 from the echo server, got curl exit {:?}, HTTP {}: {} {}",
        c.exit,
        c.status,
        c.body,
        c.stderr
    );
    serde_json::from_str(&c.body).unwrap_or_else(|e| {
        fail!(
            ns,
            "{what}: the answer is not the echo server's JSON ({e}): {}",
            c.body
        )
    })
}

pub fn header(v: &Value, name: &str) -> Vec<String> {
    v["headers"][name]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
