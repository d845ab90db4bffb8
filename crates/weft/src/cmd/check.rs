//! `weft check`: asks a running control plane whether its configuration is in effect, and
//! prints the errors of a rejected change.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct Args {
    /// The control plane's admin address.
    #[arg(
        long,
        env = "WEFT_CONTROL_ADMIN_ADDR",
        default_value = "127.0.0.1:4181"
    )]
    admin: SocketAddr,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let body = get(args.admin, "/status")
        .with_context(|| format!("asking the control plane at {}", args.admin))?;
    let status: serde_json::Value =
        serde_json::from_str(&body).context("the control plane's /status is not JSON")?;
    let generation = status["generation"].as_u64().unwrap_or(0);
    let dir = status["configDir"].as_str().unwrap_or("?");
    println!(
        "control plane at {}: configuration from {dir}, generation {generation}",
        args.admin
    );
    if let Some(counts) = status["counts"].as_object() {
        let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        println!("in effect: {}", summary.join(", "));
    }
    for w in status["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", w.as_str().unwrap_or_default());
    }
    for (uri, state) in status["keySets"].as_object().into_iter().flatten() {
        match state.as_str() {
            Some("ok") => println!("key set {uri}: fetched"),
            other => println!("warning: key set {uri}: {}", other.unwrap_or("?")),
        }
    }
    let rejected: Vec<&str> = status["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    if rejected.is_empty() {
        println!("ok: the directory's configuration is in effect");
        return Ok(ExitCode::SUCCESS);
    }
    println!("the last change was REJECTED; the previous configuration stays in effect:");
    for line in rejected {
        println!("  {line}");
    }
    Ok(ExitCode::FAILURE)
}

/// A minimal HTTP/1.0 GET: the admin endpoint is local and answers small documents.
pub(crate) fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream
        .take(16 * 1024 * 1024)
        .read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{}",
        head.lines().next().unwrap_or(head)
    );
    Ok(body.to_string())
}
