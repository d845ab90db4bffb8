//! `weft tap TARGET`: live requests through a workload's proxy, or through every proxy of a
//! Service (`svc/NAME`), relayed by the control plane. Bounded: `--max` lines, `--rate` per
//! second per proxy (more are dropped and counted), `--seconds` at most. Credentials never
//! show: the proxies redact them before a line leaves.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{encode, ControlArgs};
use super::output::{short_principal, Output};

#[derive(clap::Args)]
pub struct Args {
    /// A workload (`namespace/name`, or a name unique in the mesh) or a Service
    /// (`svc/NAME` or `svc/NAMESPACE/NAME`).
    target: String,
    /// Only requests whose path starts with this.
    #[arg(long)]
    path: Option<String>,
    /// Only requests with this method.
    #[arg(long)]
    method: Option<String>,
    /// Only requests to this authority (`host` or `host:port`).
    #[arg(long)]
    authority: Option<String>,
    /// Only requests in this direction.
    #[arg(long, value_parser = ["inbound", "outbound"])]
    direction: Option<String>,
    /// Stop after this many requests (at most 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max: u64,
    /// At most this many requests per second from each proxy (more are dropped and counted).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    rate: u64,
    /// Stop after this many seconds (at most 600).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// `json`: each request as the proxy's JSON line (NDJSON).
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (path, proxies) = target_path(&args)?;
    let mut query = format!(
        "max={}&rate={}&seconds={}",
        args.max, args.rate, args.seconds
    );
    for (key, value) in [
        ("path", &args.path),
        ("method", &args.method),
        ("authority", &args.authority),
        ("direction", &args.direction),
    ] {
        if let Some(v) = value {
            query.push_str(&format!("&{key}={}", encode(v)));
        }
    }
    let url = format!("{path}?{query}");
    let (mut shown, mut dropped, mut ended) = (0u64, 0u64, 0usize);
    let deadline = Instant::now() + Duration::from_secs(args.seconds + 5);
    if args.output == Output::Table {
        println!(
            "{:<8} {:<6} {:<5} {:>4} {:>9}  {:<24} {:<32} {:<24} ROUTE",
            "DIR", "METHOD", "PROTO", "CODE", "LATENCY", "AUTHORITY", "PATH", "PEER"
        );
    }
    args.control
        .stream_lines(&url, Duration::from_secs(args.seconds + 10), |line| {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                return true;
            };
            if v.get("end").is_some() {
                dropped += v["dropped"].as_u64().unwrap_or(0);
                ended += 1;
                return ended < proxies;
            }
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                eprintln!(
                    "warning: {}: {e}",
                    v["workload"].as_str().unwrap_or("a proxy")
                );
                ended += 1;
                return ended < proxies;
            }
            shown += 1;
            match args.output {
                Output::Json => println!("{line}"),
                Output::Table => print_row(&v),
            }
            shown < args.max && Instant::now() < deadline
        })?;
    if args.output == Output::Table {
        eprintln!("{shown} request(s) shown, {dropped} dropped by the rate limit");
    }
    Ok(ExitCode::SUCCESS)
}

/// The control plane's path for the target, and how many proxies will stream.
fn target_path(args: &Args) -> anyhow::Result<(String, usize)> {
    let service = args
        .target
        .strip_prefix("svc/")
        .or_else(|| args.target.strip_prefix("service/"));
    if let Some(svc) = service {
        let (ns, name) = match svc.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (service_namespace(&args.control, svc)?, svc.to_string()),
        };
        // How many proxies stream is the control plane's to know: the stream ends with them.
        return Ok((format!("/services/{ns}/{name}/tap"), usize::MAX));
    }
    let node = super::proxy_config::resolve(&args.control, &args.target)?;
    Ok((format!("/proxies/{node}/tap"), 1))
}

/// The namespace of the one Service named `name` (from the control plane's `/status` counts is
/// not enough: ask its hosts file, which names every Service).
fn service_namespace(control: &ControlArgs, name: &str) -> anyhow::Result<String> {
    let answer = control.get("/hosts", false)?;
    let mut found: Vec<String> = answer
        .body
        .lines()
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter_map(|host| {
            let (svc, ns) = host.split_once('.')?;
            (svc == name && !ns.contains('.')).then(|| ns.to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no Service named {name}"),
        many => anyhow::bail!(
            "Service {name} is in several namespaces ({}): write svc/NAMESPACE/{name}",
            many.join(", ")
        ),
    }
}

fn print_row(v: &Value) {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let peer = if s("direction") == "inbound" {
        s("peer_principal")
    } else {
        v["destination_principal"]
            .as_str()
            .or(v["destination_workload"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let error = v["weft_error"]
        .as_str()
        .map(|e| format!("  weft-error: {e}"))
        .unwrap_or_default();
    println!(
        "{:<8} {:<6} {:<5} {:>4} {:>7.1}ms  {:<24} {:<32} {:<24} {}{error}",
        s("direction"),
        s("method"),
        proto(&s("protocol")),
        v["status"].as_u64().unwrap_or(0),
        v["duration_ms"].as_f64().unwrap_or(0.0),
        s("authority"),
        s("path"),
        short_principal(&peer),
        s("route"),
    );
}

/// `HTTP/2.0` as `h2`, `HTTP/1.1` as `h1.1`.
fn proto(p: &str) -> String {
    match p {
        "HTTP/2.0" => "h2".into(),
        other => other.replace("HTTP/", "h"),
    }
}
