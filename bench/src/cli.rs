//! Command-line flags (clap) and the resolved [`Plan`] the rest of the program runs.
//!
//! Defaults that depend on where the workspace lives (the `weft` binary, the output files,
//! the scratch directory) are resolved from `CARGO_MANIFEST_DIR` at compile time, falling
//! back to the current directory when the binary has been moved elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

/// The setups the benchmark knows how to run, in the order they are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SetupKind {
    /// client → backend
    #[value(name = "direct")]
    Direct,
    /// client → Weft proxy (outbound, explicit HTTP proxy) → backend
    #[value(name = "weft-1")]
    Weft1,
    /// client → Weft proxy A outbound → Weft proxy B inbound → backend
    #[value(name = "weft-2")]
    Weft2,
    /// client → Weft proxy A → mutual TLS → Weft proxy B → backend, configured by `weft
    /// control` (the mesh hop as deployed)
    #[value(name = "weft-2-mtls")]
    Weft2Mtls,
    /// weft-2-mtls sending weft-2-authz's request (a JWT and a tenant header) with no
    /// policy: the baseline that tells what policy costs from what carrying a token costs
    #[value(name = "weft-2-jwt")]
    Weft2Jwt,
    /// weft-2-mtls plus, on proxy B, a RequestAuthentication (a JWT on every request) and
    /// AuthorizationPolicies of 20 rules (what policy costs the hop)
    #[value(name = "weft-2-authz")]
    Weft2Authz,
    /// weft-2-mtls with tracing on at 1% (spans exported over OTLP/gRPC to rotel): what
    /// tracing costs the hop
    #[value(name = "weft-2-trace")]
    Weft2Trace,
    /// client → Envoy (one worker) → backend
    #[value(name = "envoy")]
    Envoy,
    /// client → Envoy A → mutual TLS 1.3 → Envoy B → backend (Istio's sidecar hop)
    #[value(name = "envoy-2-mtls")]
    Envoy2Mtls,
    /// client → nginx (one worker, upstream keepalive) → backend
    #[value(name = "nginx")]
    Nginx,
}

impl SetupKind {
    /// The name used on the command line and in the results.
    pub fn name(self) -> &'static str {
        match self {
            SetupKind::Direct => "direct",
            SetupKind::Weft1 => "weft-1",
            SetupKind::Weft2 => "weft-2",
            SetupKind::Weft2Mtls => "weft-2-mtls",
            SetupKind::Weft2Jwt => "weft-2-jwt",
            SetupKind::Weft2Authz => "weft-2-authz",
            SetupKind::Weft2Trace => "weft-2-trace",
            SetupKind::Envoy => "envoy",
            SetupKind::Envoy2Mtls => "envoy-2-mtls",
            SetupKind::Nginx => "nginx",
        }
    }
}

/// Weft data-plane benchmark: open-loop load at fixed rates, latency without coordinated
/// omission, proxy RSS and CPU per request, against direct, Envoy and nginx baselines.
#[derive(Parser, Debug)]
#[command(name = "weft-bench", version)]
pub struct Args {
    /// The `weft` binary [default: <workspace>/target/release/weft].
    #[arg(long, value_name = "PATH")]
    pub weft: Option<PathBuf>,
    /// The `envoy` binary [default: <workspace>/.venv-envoy/.../envoy/_bin/envoy, then PATH].
    #[arg(long, value_name = "PATH")]
    pub envoy: Option<PathBuf>,
    /// The `nginx` binary [default: nginx on PATH or /usr/sbin/nginx].
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,
    /// Request rates in requests per second [default: 1000,5000; with --smoke: 200].
    #[arg(long, value_delimiter = ',', value_name = "RATES")]
    pub rates: Option<Vec<u32>>,
    /// Measured time per setup and rate, e.g. 10s, 500ms [default: 10s; with --smoke: 2s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Warm-up before each measurement, discarded.
    #[arg(long, value_parser = parse_duration, default_value = "2s", value_name = "DURATION")]
    pub warmup: Duration,
    /// Keep-alive HTTP/1.1 connections the load generator spreads requests over.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Rounds: every setup is measured once per round, the setups taking turns, and each
    /// figure reported is the median over the rounds, so a burst of load from elsewhere on
    /// the machine moves one round, not the result [default: 3; with --smoke: 1].
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,
    /// Setups to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "direct,weft-1,weft-2,weft-2-mtls,weft-2-jwt,weft-2-authz,weft-2-trace,envoy,envoy-2-mtls,nginx"
    )]
    pub setups: Vec<SetupKind>,
    /// Fail instead of skipping a setup whose binary is missing.
    #[arg(long)]
    pub require_all: bool,
    /// Short CI run (rate 200, 2 s); exits non-zero if any request failed.
    #[arg(long)]
    pub smoke: bool,
    /// Markdown results file; results.json is written beside it
    /// [default: bench/RESULTS.md; with --smoke: bench/work/RESULTS-smoke.md].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// Everything a run needs, with defaults resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rates: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub rounds: u32,
    pub setups: Vec<SetupKind>,
    pub require_all: bool,
    pub smoke: bool,
    pub out_md: PathBuf,
    pub out_json: PathBuf,
    pub weft: PathBuf,
    pub envoy: Option<PathBuf>,
    pub nginx: Option<PathBuf>,
    /// The workspace root (for finding `.venv-envoy`).
    pub workspace: PathBuf,
    /// Scratch directory for configs, pid files and logs of the peers.
    pub work_dir: PathBuf,
    /// The command line to reproduce this run.
    pub command: String,
}

impl Plan {
    /// Resolves defaults and checks the flags for values the load generator cannot run.
    pub fn from_args(args: Args) -> Result<Plan> {
        let bench_dir = bench_dir();
        let workspace = bench_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let rates = args.rates.unwrap_or_else(|| {
            if args.smoke {
                vec![200]
            } else {
                vec![1000, 5000]
            }
        });
        let duration = args.duration.unwrap_or(if args.smoke {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(10)
        });
        if rates.is_empty() || rates.iter().any(|&r| r == 0 || r > 1_000_000) {
            bail!("--rates must be a list of rates between 1 and 1000000 req/s, got {rates:?}");
        }
        if duration < Duration::from_millis(100) || duration > Duration::from_secs(3600) {
            bail!("--duration must be between 100ms and 1h, got {duration:?}");
        }
        if args.warmup > Duration::from_secs(600) {
            bail!("--warmup must be at most 10m, got {:?}", args.warmup);
        }
        if args.connections == 0 || args.connections > 4096 {
            bail!(
                "--connections must be between 1 and 4096, got {}",
                args.connections
            );
        }
        let rounds = args.rounds.unwrap_or(if args.smoke { 1 } else { 3 });
        if rounds == 0 || rounds > 20 {
            bail!("--rounds must be between 1 and 20, got {rounds}");
        }
        let mut setups = args.setups;
        setups.sort();
        setups.dedup();
        let out_md = args.out.unwrap_or_else(|| {
            if args.smoke {
                bench_dir.join("work").join("RESULTS-smoke.md")
            } else {
                bench_dir.join("RESULTS.md")
            }
        });
        let out_json = match out_md.parent() {
            Some(dir) if args.smoke => dir.join("results-smoke.json"),
            Some(dir) => dir.join("results.json"),
            None => PathBuf::from("results.json"),
        };
        let weft = args.weft.unwrap_or_else(|| default_weft(&workspace));
        Ok(Plan {
            rates,
            duration,
            warmup: args.warmup,
            connections: args.connections,
            rounds,
            setups,
            require_all: args.require_all,
            smoke: args.smoke,
            out_md,
            out_json,
            weft,
            envoy: args.envoy,
            nginx: args.nginx,
            work_dir: bench_dir.join("work"),
            workspace,
            command: command_line(),
        })
    }
}

/// The `bench/` directory: the compile-time manifest dir if it still exists, else `./bench`.
fn bench_dir() -> PathBuf {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if compiled.is_dir() {
        return compiled;
    }
    std::env::current_dir()
        .map(|d| d.join("bench"))
        .unwrap_or_else(|_| PathBuf::from("bench"))
}

fn default_weft(workspace: &Path) -> PathBuf {
    let built = workspace.join("target/release/weft");
    if built.exists() {
        return built;
    }
    let local = PathBuf::from("target/release/weft");
    if local.exists() {
        return local;
    }
    built
}

/// `cargo run --release -p weft-bench -- <the flags given>`, shell-quoted.
fn command_line() -> String {
    let mut cmd = String::from("cargo run --release -p weft-bench --");
    for arg in std::env::args().skip(1) {
        cmd.push(' ');
        if arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:".contains(c))
        {
            cmd.push_str(&arg);
        } else {
            cmd.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        }
    }
    cmd
}

/// Parses `10s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = num
        .parse()
        .with_context(|| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => bail!("invalid duration unit {other:?} in {s:?}: use ms, s or m"),
    };
    if !secs.is_finite() || secs < 0.0 {
        bail!("invalid duration {s:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_names_are_the_command_line_names() {
        for kind in SetupKind::value_variants() {
            let value = kind.to_possible_value().expect("a value");
            assert_eq!(value.get_name(), kind.name());
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
