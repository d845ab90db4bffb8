//! `weft token create`: a join token for a workload's proxy, written into the control
//! plane's state directory, or asked of a running control plane (`--control`; the way with
//! the etcd store, where every replica must know the token).

use std::path::PathBuf;
use std::process::ExitCode;

use weft_control::tokens::TokenStore;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Create a token that lets the proxy of one workload get its first certificate.
    Create(CreateArgs),
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The WorkloadEntry the token is for.
    #[arg(long)]
    workload: String,
    #[arg(long, default_value = weft_api::DEFAULT_NAMESPACE)]
    namespace: String,
    /// The control plane's state directory (as given to `weft control`).
    #[arg(long, env = "WEFT_STATE_DIR", default_value = "/var/lib/weft")]
    state_dir: PathBuf,
    /// How long the token can be used.
    #[arg(long, default_value = "1h", value_parser = super::proxy::parse_duration)]
    ttl: std::time::Duration,
    /// Allow more than one use until it expires (e.g. for a proxy that restarts).
    #[arg(long)]
    reusable: bool,
    /// Ask this control plane's admin endpoint for the token instead of writing it into
    /// --state-dir (needed with `weft control --store etcd`).
    #[arg(long, value_name = "ADDR")]
    control: Option<std::net::SocketAddr>,
    /// The admin token's file, with --control.
    #[arg(long, default_value = "/var/lib/weft/admin-token", value_name = "PATH")]
    admin_token_file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create(a) => {
            if let Some(control) = a.control {
                let client = super::client::ControlArgs {
                    control,
                    admin_token_file: a.admin_token_file,
                };
                let path = format!(
                    "/tokens?namespace={}&workload={}&ttl={}{}",
                    super::client::encode(&a.namespace),
                    super::client::encode(&a.workload),
                    a.ttl.as_secs().max(1),
                    if a.reusable { "&reusable=1" } else { "" }
                );
                let answer = client.post(&path, "")?;
                if answer.status != 200 {
                    anyhow::bail!(
                        "the control plane answered {}: {}",
                        answer.status,
                        answer.body.trim()
                    );
                }
                let v: serde_json::Value = serde_json::from_str(&answer.body)?;
                let token = v["token"].as_str().unwrap_or_default();
                if token.is_empty() {
                    anyhow::bail!(
                        "the control plane's answer has no token: {}",
                        answer.body.trim()
                    );
                }
                println!("{token}");
                return Ok(ExitCode::SUCCESS);
            }
            let store = TokenStore::open(&a.state_dir)?;
            let token = store.create(&a.namespace, &a.workload, a.ttl, a.reusable)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
