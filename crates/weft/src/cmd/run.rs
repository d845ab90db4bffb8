//! `weft run`: start a command meshed, in a network namespace of its own with its traffic
//! captured by its own proxy; `weft run --cleanup` removes what crashed runs left.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use weft_local::capture::CaptureSpec;
use weft_local::{AppOutput, RunError, RunSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Remove what earlier runs that crashed left behind (namespaces, links, rules, records)
    /// and exit.
    #[arg(long, conflicts_with_all = ["service", "port", "command"])]
    cleanup: bool,
    /// The Service the command serves (its `app` label; a Service of this name is made when
    /// the control plane's directory declares none).
    #[arg(long, required_unless_present = "cleanup")]
    service: Option<String>,
    /// The workload's name (its WorkloadEntry and network namespace); default: the service.
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = weft_api::DEFAULT_NAMESPACE)]
    namespace: String,
    /// The service account its certificate names (default: `default`).
    #[arg(long)]
    service_account: Option<String>,
    /// The port the command listens on.
    #[arg(long, required_unless_present = "cleanup")]
    port: Option<u16>,
    /// `appProtocol` of the port when the Service is made for it (http, http2, grpc, tcp).
    #[arg(long)]
    app_protocol: Option<String>,
    /// Labels (`key=value`, repeatable), e.g. `--label version=v2`.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[command(flatten)]
    host: super::host_args::HostArgs,
    /// Inbound ports not to capture (repeatable).
    #[arg(long = "exclude-inbound-port")]
    exclude_inbound_ports: Vec<u16>,
    /// Outbound ports not to capture (repeatable).
    #[arg(long = "exclude-outbound-port")]
    exclude_outbound_ports: Vec<u16>,
    /// Outbound destinations not to capture (CIDR, repeatable).
    #[arg(long = "exclude-outbound-cidr", value_parser = weft_local::capture::parse_cidr)]
    exclude_outbound_cidrs: Vec<String>,
    /// The uid the proxy runs as (exempt from capture).
    #[arg(long, default_value_t = 1337)]
    proxy_uid: u32,
    /// Write the proxy's JSON access log (to its log file).
    #[arg(long)]
    access_log: bool,
    /// How long the proxy drains after the command exits.
    #[arg(long, default_value = "5s", value_parser = super::proxy::parse_duration)]
    drain_timeout: std::time::Duration,
    /// How long the proxy has to become ready before the run fails.
    #[arg(long, default_value = "30s", value_parser = super::proxy::parse_duration)]
    ready_timeout: std::time::Duration,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required_unless_present = "cleanup")]
    command: Vec<String>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}`: write labels as key=value"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // Before anything else (even reading the admin token): without privileges the answer is
    // what to do instead.
    weft_local::privileges::check()?;
    if args.cleanup {
        let cleaned = weft_local::cleanup::cleanup_stale(&args.host.run_dir, &args.host.net()?)?;
        // Their registrations expire within seconds anyway; deregister now when the control
        // plane can be reached.
        if let Ok(control) = args.host.control() {
            runtime.block_on(async {
                for r in cleaned.iter().filter(|r| !r.owner.is_empty()) {
                    let _ = control.deregister(&r.namespace, &r.name, &r.owner).await;
                }
            });
        }
        let names: Vec<&str> = cleaned
            .iter()
            .filter(|r| !r.bridge_only)
            .map(|r| r.name.as_str())
            .collect();
        if names.is_empty() {
            println!("nothing to clean up");
        } else {
            println!("removed what these runs left: {}", names.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let spec = spec(args)?;
    let name = spec.name.clone();
    let result = runtime.block_on(async {
        let stop = super::stop_signals(true);
        weft_local::runner::run(spec, stop).await
    });
    match result {
        Ok(outcome) => {
            let code = outcome.code;
            if code != 0 && !outcome.stopped && outcome.ran_for < std::time::Duration::from_secs(2)
            {
                eprintln!(
                    "weft run: `{name}`'s command exited at once with status {code} (after {:.1?}); its output is above. Everything weft run made for it is removed.",
                    outcome.ran_for
                );
            }
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Err(e @ RunError::MissingProgram(_)) => {
            eprintln!("weft run: {e}");
            Ok(ExitCode::from(127))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("weft run {name}"))),
    }
}

fn spec(args: Args) -> anyhow::Result<RunSpec> {
    let net = args.host.net()?;
    let service = args.service.unwrap_or_default();
    let control_grpc = args.host.control_grpc(&net)?;
    Ok(RunSpec {
        name: args.name.unwrap_or_else(|| service.clone()),
        namespace: args.namespace,
        service,
        service_account: args.service_account,
        port: args.port.unwrap_or(0),
        app_protocol: args.app_protocol,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        command: args.command,
        env: Vec::new(),
        capture: CaptureSpec {
            proxy_uid: args.proxy_uid,
            exclude_inbound_ports: args.exclude_inbound_ports,
            exclude_outbound_ports: args.exclude_outbound_ports,
            exclude_outbound_cidrs: args.exclude_outbound_cidrs,
            ..CaptureSpec::default()
        },
        run_dir: args.host.run_dir.clone(),
        control_grpc,
        control: args.host.control()?,
        host: args.host.joined()?.map(|h| h.name),
        weft_exe: std::env::current_exe().context("locating the weft binary")?,
        app_output: AppOutput::Inherit,
        access_log: args.access_log,
        drain_timeout: args.drain_timeout,
        ready_timeout: args.ready_timeout,
        net,
    })
}
