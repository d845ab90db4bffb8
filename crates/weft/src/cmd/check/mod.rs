//! `weft check`: the pre-flight and health check an operator runs first. One line per check,
//! each failing one with what to do; exit 1 when any fails (warnings do not), `-o json` for
//! scripts.
//!
//! - host: privileges and kernel features that capture (`weft run`, `weft up`) needs
//!   ([`host`]);
//! - mesh: the control plane answers, its configuration is in effect, its CA and the proxies'
//!   certificates are valid and not near expiry, every proxy is connected and current, and the
//!   clocks agree ([`mesh`]).

mod host;
mod mesh;

use std::process::ExitCode;

use serde::Serialize;
use serde_json::json;

use super::client::ControlArgs;
use super::output::{print_json, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Only the mesh's checks (for a host that runs no captured workloads).
    #[arg(long)]
    skip_host: bool,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub check: String,
    pub status: Status,
    pub message: String,
    /// What to do about a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Outcome {
    pub fn ok(check: impl Into<String>, message: impl Into<String>) -> Outcome {
        Outcome {
            check: check.into(),
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warn(
        check: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Outcome {
        Outcome {
            status: Status::Warn,
            hint: Some(hint.into()),
            ..Outcome::ok(check, message)
        }
    }

    pub fn fail(
        check: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Outcome {
        Outcome {
            status: Status::Fail,
            hint: Some(hint.into()),
            ..Outcome::ok(check, message)
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut outcomes = Vec::new();
    if !args.skip_host {
        host::checks(&mut outcomes);
    }
    mesh::checks(&args.control, &mut outcomes);
    let failed = outcomes.iter().filter(|o| o.status == Status::Fail).count();
    let warned = outcomes.iter().filter(|o| o.status == Status::Warn).count();
    match args.output {
        Output::Json => print_json(&json!({
            "ok": failed == 0,
            "failed": failed,
            "warnings": warned,
            "checks": outcomes,
        })),
        Output::Table => {
            for o in &outcomes {
                let mark = match o.status {
                    Status::Ok => "ok  ",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                };
                println!("{mark}  {:<22} {}", o.check, o.message);
                if let Some(hint) = &o.hint {
                    println!("      {:<22} -> {hint}", "");
                }
            }
            println!(
                "{} check(s): {failed} failed, {warned} warning(s)",
                outcomes.len()
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
