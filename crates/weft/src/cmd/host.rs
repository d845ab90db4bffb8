//! `weft host join NAME` and `weft host list`: hosts of a multi-host mesh and their workload
//! blocks, through any replica of a control plane on etcd (`weft control --store etcd`).

use std::net::IpAddr;
use std::process::ExitCode;

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
            let answer = a
                .control
                .post(&format!("/host-records/{}", a.name), &body.to_string())?;
            if answer.status != 200 {
                eprintln!("error: {}", answer.body.trim());
                return Ok(ExitCode::FAILURE);
            }
            let record: serde_json::Value = serde_json::from_str(&answer.body)?;
            println!(
                "host {} holds block {}",
                record["name"].as_str().unwrap_or_default(),
                record["block"].as_str().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
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
