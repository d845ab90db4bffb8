//! `weft host join NAME` and `weft host list`: hosts of a multi-host mesh and their workload
//! blocks, through any replica of a control plane on etcd (`weft control --store etcd`);
//! `weft host tunnel`: the joined host's HBONE tunnel, where other hosts reach its workloads;
//! `weft host agent`: the tunnel, and the host's control-plane replica kept running.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use weft_local::joined::JoinedHost;

use serde_json::json;

use super::client::ControlArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(clap::Subcommand)]
enum HostCommand {
    /// Join this host to the mesh: it gets a workload block of its own (a /24 of
    /// 10.213.0.0/16), the same one each time it joins again.
    Join(JoinArgs),
    /// Every host of the mesh and its block.
    List(ListArgs),
    /// A single-use join token for host NAME (admin token needed), for a host that has no
    /// admin token: there, `weft host join NAME --token TOKEN`.
    Token(TokenArgs),
    /// Serve this joined host's tunnel (port 4108): proxies on other hosts reach its
    /// workloads through it (HBONE, spliced by server name to the workload's proxy).
    Tunnel(TunnelArgs),
    /// The host agent: this host's tunnel, and its control-plane replica (the `weft control`
    /// arguments after `--`) started again whenever it dies.
    Agent(AgentArgs),
}

#[derive(clap::Args)]
struct AgentArgs {
    #[command(flatten)]
    tunnel: TunnelArgs,
    /// The replica's admin address: it counts as started once its `/ready` answers.
    #[arg(long, value_name = "ADDR", requires = "replica")]
    replica_admin: Option<SocketAddr>,
    /// `weft control` arguments for this host's replica (after `--`); none: no replica.
    #[arg(last = true, value_name = "CONTROL ARGS")]
    replica: Vec<String>,
}

#[derive(clap::Args)]
struct TunnelArgs {
    /// Where to listen (default: the host's address from its join, port 4108).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The workloads' proxies' inbound port.
    #[arg(long, default_value_t = 4143)]
    inbound_port: u16,
    /// The workloads' proxies' admin port (mutual TLS: the control plane reads `/metrics`,
    /// `/config` and `/tap` through the tunnel).
    #[arg(long, default_value_t = 4191)]
    admin_port: u16,
    /// Where `weft host join` wrote this host's record (`host.json`).
    #[arg(long, env = "WEFT_STATE_DIR", default_value = "/var/lib/weft")]
    state_dir: PathBuf,
    /// The bridge of this host's workloads.
    #[arg(long, env = "WEFT_BRIDGE", default_value = "weft0")]
    bridge: String,
}

#[derive(clap::Args)]
struct JoinArgs {
    /// The host's name (lowercase letters, digits, '-'; e.g. its hostname).
    name: String,
    /// Ask for this block (10.213.N.0/24) instead of the lowest free one.
    #[arg(long, value_name = "CIDR")]
    block: Option<String>,
    /// The host's address on the network between hosts, where the others reach its tunnel.
    #[arg(long, value_name = "IP")]
    address: Option<IpAddr>,
    /// Join with this single-use join token (`weft host token NAME` made it) instead of
    /// the admin token.
    #[arg(long, env = "WEFT_HOST_TOKEN")]
    token: Option<String>,
    /// The control plane's gRPC addresses this host's proxies dial (replicas
    /// comma-separated). Default: the --control address's IP, port 4180.
    #[arg(long, value_name = "ADDR[,ADDR...]", value_parser = super::host_args::parse_control)]
    control_grpc: Option<String>,
    /// Every replica's admin address (comma-separated): this host's workloads register
    /// through the one it joined through (--control) first, and fail over to the others
    /// when it does not answer. Default: the --control address alone.
    #[arg(long, value_name = "ADDR[,ADDR...]", value_delimiter = ',')]
    control_admins: Vec<SocketAddr>,
    /// Where this host's record (`host.json`) and credential (`host-credential`) are kept,
    /// for `weft run`, `weft up` and the tunnel.
    #[arg(long, env = "WEFT_STATE_DIR", default_value = "/var/lib/weft")]
    state_dir: PathBuf,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The host the token lets join.
    name: String,
    /// How long the token is valid (e.g. `30m`, `1h`; at most a week).
    #[arg(long, default_value = "1h", value_parser = super::proxy::parse_duration)]
    ttl: std::time::Duration,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(clap::Args)]
struct ListArgs {
    #[command(flatten)]
    control: ControlArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        HostCommand::Join(a) => {
            let body = json!({"block": a.block, "address": a.address});
            let path = format!("/host-records/{}", a.name);
            let answer = match &a.token {
                Some(token) => a.control.post_as(&path, &body.to_string(), token.trim())?,
                None => a.control.post(&path, &body.to_string())?,
            };
            if answer.status != 200 {
                eprintln!("error: {}", answer.body.trim());
                return Ok(ExitCode::FAILURE);
            }
            let mut host: JoinedHost = serde_json::from_str(&answer.body)
                .with_context(|| format!("the control plane's answer: {}", answer.body.trim()))?;
            let reply: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
            let credential = reply["credential"].as_str().ok_or_else(|| {
                anyhow::anyhow!("the control plane's answer has no host credential (is it older than this weft?)")
            })?;
            host.control_admin = Some(a.control.control);
            // The replica joined through first, then the others as given.
            host.control_admins = std::iter::once(a.control.control)
                .chain(a.control_admins.iter().copied())
                .fold(Vec::new(), |mut all, addr| {
                    if !all.contains(&addr) {
                        all.push(addr);
                    }
                    all
                });
            host.control_grpc = Some(a.control_grpc.clone().unwrap_or_else(|| {
                SocketAddr::new(a.control.control.ip(), weft_api::CONTROL_GRPC_PORT).to_string()
            }));
            JoinedHost::write_credential(&a.state_dir, credential).with_context(|| {
                format!(
                    "writing the host credential under {}",
                    a.state_dir.display()
                )
            })?;
            host.write(&a.state_dir)
                .with_context(|| format!("writing {}", JoinedHost::path(&a.state_dir).display()))?;
            println!("host {} holds block {}", host.name, host.block);
            if host.address.is_none() {
                eprintln!(
                    "warning: host {} has no --address: other hosts cannot reach its tunnel",
                    host.name
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Token(a) => {
            let path = format!("/host-tokens/{}?ttl={}", a.name, a.ttl.as_secs().max(1));
            let answer = a.control.post(&path, "")?;
            if answer.status != 200 {
                eprintln!("error: {}", answer.body.trim());
                return Ok(ExitCode::FAILURE);
            }
            println!("{}", answer.body.trim());
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Tunnel(a) => tunnel(a, None),
        HostCommand::Agent(a) => agent(a),
        HostCommand::List(a) => {
            let list = a.control.get_json("/host-records", true)?;
            println!("{:<24} {:<18} ADDRESS", "HOST", "BLOCK");
            for host in list.as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<18} {}",
                    host["name"].as_str().unwrap_or_default(),
                    host["block"].as_str().unwrap_or_default(),
                    host["address"].as_str().unwrap_or("-")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn agent(a: AgentArgs) -> anyhow::Result<ExitCode> {
    if a.replica.is_empty() {
        return tunnel(a.tunnel, None);
    }
    let mut args = vec!["control".to_string()];
    args.extend(a.replica);
    let replica = weft_local::restart::HostProcess {
        what: "control-plane replica",
        exe: std::env::current_exe().context("locating the weft binary")?,
        args,
        log: a.tunnel.state_dir.join("replica.log"),
        ready: a.replica_admin,
        ready_timeout: std::time::Duration::from_secs(30),
    };
    tunnel(a.tunnel, Some(replica))
}

/// Serves the tunnel until a stop signal; with `replica`, keeps it running meanwhile (and,
/// since a host joins through a replica, waits for the join if it has not happened yet).
fn tunnel(
    a: TunnelArgs,
    replica: Option<weft_local::restart::HostProcess>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let stop = super::stop_signals(true);
        tokio::pin!(stop);
        let kept = match replica {
            Some(r) => {
                let log = r.log.display().to_string();
                let kept = r
                    .start(std::time::Duration::from_secs(10))
                    .await
                    .map_err(|e| anyhow::anyhow!("the control-plane replica: {e}"))?;
                tracing::info!(%log, "control-plane replica running (started again if it dies)");
                Some(kept)
            }
            None => None,
        };
        let path = JoinedHost::path(&a.state_dir);
        let mut told = false;
        let host = loop {
            match JoinedHost::read(&a.state_dir).map_err(anyhow::Error::msg)? {
                Some(host) => break Some(host),
                None if kept.is_some() => {
                    if !told {
                        tracing::info!(file = %path.display(), "waiting for `weft host join` before serving the tunnel");
                        told = true;
                    }
                    tokio::select! {
                        () = &mut stop => break None,
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
                None => anyhow::bail!(
                    "this host has not joined a mesh ({} is missing): `weft host join NAME --address IP` first",
                    path.display()
                ),
            }
        };
        if let Some(host) = host {
            let listen = match (a.listen, host.address) {
                (Some(addr), _) => addr,
                (None, Some(ip)) => SocketAddr::new(ip, weft_api::TUNNEL_PORT),
                (None, None) => anyhow::bail!(
                    "host {} joined without --address: give the tunnel --listen ADDR:PORT",
                    host.name
                ),
            };
            let tunnel = weft_local::tunnel::Tunnel {
                net: host.net(&a.bridge).map_err(anyhow::Error::msg)?,
                inbound_port: a.inbound_port,
                admin_port: a.admin_port,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            tracing::info!(host = %host.name, %listen, block = %host.block, "tunnel serving");
            tunnel.serve(listener, stop).await;
        }
        if let Some(kept) = kept {
            kept.stop().await;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
