//! `weft token create`: a join token for a workload's proxy.

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create(a) => {
            let store = TokenStore::open(&a.state_dir)?;
            let token = store.create(&a.namespace, &a.workload, a.ttl, a.reusable)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
