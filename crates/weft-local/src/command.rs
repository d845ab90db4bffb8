//! Running the host's network tools (`ip`, `iptables`) with a deadline and an error that
//! shows the exact command and what it printed.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No network tool call takes this long unless something is stuck.
const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{command}` could not be started: {source} (install iproute2 and iptables: apt-get install -y iproute2 iptables)")]
    Missing {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {TOOL_TIMEOUT:?}")]
    Timeout { command: String },
}

/// Runs `program args...`, feeding `stdin` when given; returns its stdout.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, ToolError> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ToolError::Missing {
            command: command.clone(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A short input (a rule set): the tool reads it all before it writes much.
        let _ = pipe.write_all(text.as_bytes());
    }
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ToolError::Timeout { command });
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ToolError::Missing {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
