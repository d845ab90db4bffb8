//! `weft echo`: the conformance echo server.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct Args {
    /// Serve HTTP/1.1, h2c and gRPC here (repeatable).
    #[arg(
        long = "http",
        env = "WEFT_ECHO_HTTP",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    http: Vec<SocketAddr>,
    /// Serve TCP echo here (repeatable).
    #[arg(long = "tcp", env = "WEFT_ECHO_TCP", value_delimiter = ',')]
    tcp: Vec<SocketAddr>,
    /// The Service name the answers report.
    #[arg(long, env = "SERVICE_NAME", default_value = "")]
    service: String,
    /// The namespace the answers report.
    #[arg(long, env = "NAMESPACE", default_value = "")]
    namespace: String,
    /// The pod (workload) name the answers report.
    #[arg(long, env = "POD_NAME", default_value = "")]
    pod: String,
    /// Misbehave as `<DIR>/<pod>.json` says (`{"failPercent": 50}`, `{"delayMs": 500}`),
    /// read every 200 ms: the chaos benchmark's faults.
    #[arg(long)]
    chaos_dir: Option<std::path::PathBuf>,
    /// Close HTTP/1 keep-alive connections idle this long (e.g. `5s`, as Node.js does).
    #[arg(long, value_parser = super::proxy::parse_duration)]
    idle_timeout: Option<std::time::Duration>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = weft_echo::EchoConfig {
        identity: weft_echo::Identity {
            namespace: args.namespace,
            service: args.service,
            pod: args.pod,
        },
        http: args.http,
        tcp: args.tcp,
        chaos: weft_echo::ChaosConfig {
            dir: args.chaos_dir,
            idle_timeout: args.idle_timeout,
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let bound = weft_echo::bind(config).await?;
        for addr in bound.http_addrs() {
            tracing::info!(%addr, "echo: HTTP/1.1, h2c and gRPC");
        }
        for addr in bound.tcp_addrs() {
            tracing::info!(%addr, "echo: TCP");
        }
        bound.serve(super::shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
