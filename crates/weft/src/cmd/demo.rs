//! `weft demo`: the shop example's frontend (a traffic app; see `weft_echo::demo`).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(clap::Args)]
pub struct Args {
    /// The HTTP service to call (`host:port`), split between versions by the mesh.
    #[arg(long, default_value = "reviews:9080")]
    reviews: String,
    /// The gRPC service to call (`host:port`).
    #[arg(long, default_value = "ratings:9090")]
    ratings: String,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// How often to print who answered.
    #[arg(long, default_value = "5s", value_parser = super::proxy::parse_duration)]
    report_every: std::time::Duration,
    /// Stop after this many requests and exit 1 if any failed.
    #[arg(long)]
    requests: Option<u64>,
    /// Serve the last report here.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = weft_echo::demo::DemoConfig {
        reviews: args.reviews,
        ratings: args.ratings,
        rate: args.rate,
        report_every: args.report_every,
        requests: args.requests,
        listen: Some(args.listen),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let total = runtime.block_on(weft_echo::demo::run(config, super::shutdown_signal()));
    println!("demo: total {}", total.report());
    Ok(if args.requests.is_some() && total.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
