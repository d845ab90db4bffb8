//! How the commands (`check`, `proxy-config`, `tap`, `stat`, `apply`, `delete`) reach the control plane:
//! its admin address (`--control`, env `WEFT_CONTROL`, the local mesh's by default) and the
//! admin token (read from the state directory's `admin-token`, as `weft up` keeps it).
//!
//! Plain HTTP/1.0 over a blocking socket: the admin endpoint is local and its answers small,
//! except a tap, which is read line by line as it comes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

#[derive(clap::Args, Clone, Debug)]
pub struct ControlArgs {
    /// The control plane's admin address.
    #[arg(
        long = "control",
        alias = "admin",
        env = "WEFT_CONTROL",
        default_value = "127.0.0.1:4181",
        value_name = "ADDR"
    )]
    pub control: SocketAddr,
    /// The admin token's file (the control plane's state directory's `admin-token`).
    #[arg(
        long,
        env = "WEFT_ADMIN_TOKEN_FILE",
        default_value = "/var/lib/weft/admin-token",
        value_name = "PATH"
    )]
    pub admin_token_file: PathBuf,
}

/// An answer from the control plane.
pub struct Answer {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

impl Answer {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl ControlArgs {
    /// The control plane at `addr`, with the default token file.
    pub fn at(addr: SocketAddr) -> ControlArgs {
        ControlArgs {
            control: addr,
            admin_token_file: PathBuf::from("/var/lib/weft/admin-token"),
        }
    }

    /// The admin token, or why it cannot be read.
    pub fn token(&self) -> anyhow::Result<String> {
        let token = std::fs::read_to_string(&self.admin_token_file).with_context(|| {
            format!(
                "reading the admin token {} (run as the user that runs the control plane, or point --admin-token-file at its state directory's admin-token)",
                self.admin_token_file.display()
            )
        })?;
        Ok(token.trim().to_string())
    }

    /// `GET path`, with the admin token when `authorized`.
    pub fn get(&self, path: &str, authorized: bool) -> anyhow::Result<Answer> {
        let token = if authorized {
            Some(self.token()?)
        } else {
            None
        };
        let stream = self.request("GET", path, token.as_deref(), "", Duration::from_secs(15))?;
        read_answer(stream, path)
    }

    /// `POST path` with a JSON `body` and the admin token; the answer whatever its status.
    pub fn post(&self, path: &str, body: &str) -> anyhow::Result<Answer> {
        let token = self.token()?;
        self.post_as(path, body, &token)
    }

    /// `POST path` with `token` as the bearer (a host join token instead of the admin
    /// token).
    pub fn post_as(&self, path: &str, body: &str, token: &str) -> anyhow::Result<Answer> {
        // A large change is checked as a whole before anything is written: allow it time.
        let stream = self.request("POST", path, Some(token), body, Duration::from_secs(120))?;
        read_answer(stream, path)
    }

    /// `GET path` that must answer 200 with JSON.
    pub fn get_json(&self, path: &str, authorized: bool) -> anyhow::Result<serde_json::Value> {
        let answer = self.get(path, authorized)?;
        if answer.status != 200 {
            anyhow::bail!(
                "the control plane answered {}: {}",
                answer.status,
                answer.body.trim()
            );
        }
        serde_json::from_str(&answer.body).with_context(|| format!("{path} did not answer JSON"))
    }

    /// `GET path` with the admin token, then each line of the body to `line` as it arrives,
    /// until the body ends or `line` returns false. `idle` bounds the wait for each line.
    pub fn stream_lines(
        &self,
        path: &str,
        idle: Duration,
        mut line: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<()> {
        let token = self.token()?;
        let stream = self.request("GET", path, Some(&token), "", idle)?;
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut l = String::new();
            if reader.read_line(&mut l)? == 0 || l == "\r\n" {
                break;
            }
            head.push_str(&l);
        }
        let status = status_of(&head)?;
        if status != 200 {
            let mut body = String::new();
            let _ = reader.take(64 * 1024).read_to_string(&mut body);
            anyhow::bail!("the control plane answered {status}: {}", body.trim());
        }
        let mut l = String::new();
        loop {
            l.clear();
            if reader.read_line(&mut l)? == 0 {
                return Ok(());
            }
            if !line(l.trim_end()) {
                return Ok(());
            }
        }
    }

    /// Sends `method path` (with the admin token when given, and a JSON `body` when not
    /// empty); the stream to read the answer from.
    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
        read_timeout: Duration,
    ) -> anyhow::Result<TcpStream> {
        let addr = self.control;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .with_context(|| format!("connecting to the control plane at {addr} (is it running? `weft up` starts one; --control or WEFT_CONTROL say where)"))?;
        stream.set_read_timeout(Some(read_timeout))?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let content = if body.is_empty() {
            String::new()
        } else {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
        };
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: weft\r\n{auth}{content}\r\n"
        )?;
        stream.write_all(body.as_bytes())?;
        Ok(stream)
    }
}

/// The whole answer on `stream` (at most 32 MiB), split into its head and body.
fn read_answer(mut stream: TcpStream, path: &str) -> anyhow::Result<Answer> {
    let mut response = String::new();
    (&mut stream)
        .take(32 * 1024 * 1024)
        .read_to_string(&mut response)
        .with_context(|| format!("reading the control plane's answer to {path}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the control plane's answer is not HTTP")?;
    Ok(Answer {
        status: status_of(head)?,
        head: head.to_string(),
        body: body.to_string(),
    })
}

fn status_of(head: &str) -> anyhow::Result<u16> {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")
}

/// `s` percent-encoded for a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
