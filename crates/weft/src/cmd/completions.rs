//! `weft completions bash|zsh|fish`: completions for every subcommand and flag, generated
//! from the same definitions the parser uses (so they never go stale).
//!
//! ```sh
//! weft completions bash > /etc/bash_completion.d/weft
//! weft completions zsh > "${fpath[1]}/_weft"
//! weft completions fish > ~/.config/fish/completions/weft.fish
//! ```

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "weft", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
