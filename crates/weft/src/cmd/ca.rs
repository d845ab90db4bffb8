//! `weft ca seal-key`: a new key for sealing the CA that replicas on etcd share
//! (`weft control --store etcd --ca-seal-key FILE`, the same file on every replica).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_control::etcd::seal::SealKey;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(clap::Subcommand)]
enum CaCommand {
    /// Make a key that seals the shared CA's private key in etcd (32 random bytes, hex).
    SealKey(SealKeyArgs),
}

#[derive(clap::Args)]
struct SealKeyArgs {
    /// Write the key to this new file (mode 0600) instead of stdout.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        CaCommand::SealKey(a) => {
            let key = SealKey::generate_hex()?;
            match a.out {
                None => println!("{key}"),
                Some(path) => {
                    // create_new: never overwrite a key that may already seal a CA.
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    writeln!(file, "{key}")
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "wrote {}: give every replica this same file as --ca-seal-key",
                        path.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
