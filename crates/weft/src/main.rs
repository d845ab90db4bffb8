//! `weft`: one binary for every part of the mesh.
//!
//! - `weft control`: the control plane (delta xDS, certificate authority) on a directory;
//! - `weft proxy`: the data plane, beside a workload (from a control plane, or a directory);
//! - `weft up`: a control plane and the workloads a directory declares (the shop example by
//!   default), meshed on this host;
//! - `weft run`: a command meshed in a network namespace of its own (transparent capture);
//! - `weft token create`: a join token for a proxy's first certificate;
//! - `weft check`: the pre-flight and health check of a host and its mesh;
//! - `weft proxy-config`: what a proxy holds, and where it differs from the control plane;
//! - `weft tap`: live requests through a workload's or a Service's proxies;
//! - `weft stat`: golden metrics per Service, route, workload and edge, from the proxies;
//! - `weft completions`: shell completions;
//! - `weft validate`: checks a config directory and summarises it;
//! - `weft echo`: the echo server tests and examples run behind the mesh;
//! - `weft demo`: the shop example's frontend, a small traffic app.

mod cmd;

use clap::{CommandFactory, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success; for checks, everything is healthy
  1  the answer is \"no\": a check failed, a proxy differs, a request would be denied
  2  usage error, or the command could not do its job (unreachable, refused, bad input)

Read commands take -o json (stable, documented field names) and --control ADDR (env
WEFT_CONTROL; default 127.0.0.1:4181, the local mesh's control plane).";

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: a service mesh that stays out of the way",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Log filter (tracing-subscriber syntax), e.g. `info` or `weft_proxy=debug`.
    #[arg(long, global = true, env = "WEFT_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, global = true, env = "WEFT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane on a directory of mesh resources.
    Control(cmd::control::Args),
    /// Run a proxy beside a workload.
    Proxy(cmd::proxy::Args),
    /// Run a mesh on this host: a control plane and every LocalWorkload of a directory (the
    /// shop example by default).
    Up(cmd::up::Args),
    /// Run a command meshed: its own network namespace, traffic captured by its own proxy.
    Run(cmd::run::Args),
    /// Write resources to a control plane's etcd store, checked with the whole mesh first.
    Apply(cmd::apply::ApplyArgs),
    /// Remove resources from a control plane's etcd store, if the mesh stays valid.
    Delete(cmd::apply::DeleteArgs),
    /// Check a directory of mesh resources and summarise what it declares.
    Validate(cmd::validate::Args),
    /// Join tokens for proxies' first certificates.
    Token(cmd::token::Args),
    /// The CA's keys: `weft ca seal-key` for replicas on etcd.
    Ca(cmd::ca::Args),
    /// Hosts of a multi-host mesh: `weft host join NAME` gets this host a workload block.
    Host(cmd::host::Args),
    /// Pre-flight and health check: privileges, control plane, certificates, proxies, clock.
    Check(cmd::check::Args),
    /// What a proxy holds now (routes, endpoints, policies, certificate), or where it differs
    /// from what the control plane would send it (--diff).
    ProxyConfig(cmd::proxy_config::Args),
    /// Live requests through a workload's proxy or a Service's proxies.
    Tap(cmd::tap::Args),
    /// Success rate, requests per second and latency per Service, route, workload and edge.
    Stat(cmd::stat::Args),
    /// Does this team need a mesh at all? A report from the traffic the mesh observed.
    Audit(cmd::audit::Args),
    /// Open the control plane's dashboard from this machine (a local relay adding the token).
    Dashboard(cmd::dashboard::Args),
    /// Print shell completions (bash, zsh or fish) to stdout.
    Completions(cmd::completions::Args),
    /// Authorization: would a request be allowed, and which policy and rule decide it.
    Authz(cmd::authz::Args),
    /// Run the echo server (HTTP/1.1, h2c and gRPC on each --http address; TCP echo on --tcp).
    Echo(cmd::echo::Args),
    /// Run the shop example's frontend: calls reviews (HTTP) and ratings (gRPC), reports who answered.
    Demo(cmd::demo::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    let result = match cli.command {
        Command::Control(args) => cmd::control::run(args),
        Command::Proxy(args) => cmd::proxy::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Up(args) => cmd::up::run(args),
        Command::Token(args) => cmd::token::run(args),
        Command::Ca(args) => cmd::ca::run(args),
        Command::Host(args) => cmd::host::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::ProxyConfig(args) => cmd::proxy_config::run(args),
        Command::Tap(args) => cmd::tap::run(args),
        Command::Stat(args) => cmd::stat::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Dashboard(args) => cmd::dashboard::run(args),
        Command::Completions(args) => cmd::completions::run(args, Cli::command()),
        Command::Authz(args) => cmd::authz::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Apply(args) => cmd::apply::apply(args),
        Command::Delete(args) => cmd::apply::delete(args),
        Command::Echo(args) => cmd::echo::run(args),
        Command::Demo(args) => cmd::demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
