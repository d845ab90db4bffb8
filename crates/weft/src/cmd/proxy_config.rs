//! `weft proxy-config [WORKLOAD] [routes|endpoints|policies|certs|all] [--diff]`: what a proxy
//! holds now, asked of the proxy through the control plane; with no workload, every proxy and
//! whether it is connected and current. `--diff` compares what the proxy holds with what the
//! control plane would send it now.

use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};
use weft_api::view::ProxyView;

use super::client::ControlArgs;
use super::output::{age, print_json, Output, Table};

#[derive(clap::Args)]
pub struct Args {
    /// The workload whose proxy to show (`namespace/name`, or a name unique in the mesh).
    workload: Option<String>,
    /// What to show.
    #[arg(value_enum, default_value_t = Section::All)]
    section: Section,
    /// Show where the proxy differs from what the control plane would send it (exit 1 when it
    /// does).
    #[arg(long)]
    diff: bool,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Routes,
    Endpoints,
    Policies,
    Certs,
    All,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(workload) = args.workload.as_deref() else {
        return list(&args);
    };
    let node = resolve(&args.control, workload)?;
    let held = args
        .control
        .get_json(&format!("/proxies/{node}/config"), true)?;
    if args.diff {
        let expected = args
            .control
            .get_json(&format!("/proxies/{node}/expected"), true)?;
        return super::proxy_diff::show(&node, &held, &expected, args.output);
    }
    if args.output == Output::Json {
        print_json(&select(&held, args.section));
        return Ok(ExitCode::SUCCESS);
    }
    let view: ProxyView = serde_json::from_value(held["view"].clone())
        .context("the proxy's /config has no view Weft can read")?;
    let version = held["version"].as_str().unwrap_or("?");
    println!("proxy {node}: configuration version {version}");
    if let Some(rejected) = held["rejected"].as_array().filter(|r| !r.is_empty()) {
        println!("the last change was REJECTED; the proxy keeps its previous configuration:");
        for r in rejected {
            println!("  {}", r.as_str().unwrap_or_default());
        }
    }
    if args.section == Section::All {
        resources(&held);
    }
    let all = args.section == Section::All;
    if all || args.section == Section::Routes {
        super::proxy_sections::routes(&view);
    }
    if all || args.section == Section::Endpoints {
        super::proxy_sections::endpoints(&view);
    }
    if all || args.section == Section::Policies {
        super::proxy_sections::policies(&view);
    }
    if all || args.section == Section::Certs {
        super::proxy_sections::certs(&held["certificate"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `ns/name` for what the user typed: as given when it has a `/`, else the one proxy of that
/// name.
pub fn resolve(control: &ControlArgs, workload: &str) -> anyhow::Result<String> {
    if workload.contains('/') {
        return Ok(workload.to_string());
    }
    let listed = control.get_json("/proxies", true)?;
    let matches: Vec<&str> = listed["proxies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["node"].as_str())
        .filter(|node| node.rsplit('/').next() == Some(workload))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => anyhow::bail!("no meshed workload named {workload}: `weft proxy-config` lists them"),
        many => anyhow::bail!(
            "{workload} is in several namespaces ({}): say which, as namespace/{workload}",
            many.join(", ")
        ),
    }
}

fn list(args: &Args) -> anyhow::Result<ExitCode> {
    let listed = args.control.get_json("/proxies", true)?;
    if args.output == Output::Json {
        print_json(&listed);
        return Ok(ExitCode::SUCCESS);
    }
    let generation = listed["generation"].as_u64().unwrap_or(0);
    println!(
        "control plane at {}: generation {generation}",
        args.control.control
    );
    let mut table = Table::new(&[
        "WORKLOAD",
        "CONNECTED",
        "CURRENT",
        "SINCE",
        "ADMIN",
        "IDENTITY",
    ]);
    for p in listed["proxies"].as_array().into_iter().flatten() {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let mut current = yes_no(p["current"].as_bool().unwrap_or(false));
        if let Some(why) = p["rejected"].as_str() {
            current = format!("no (rejected: {why})");
        }
        table.row(vec![
            p["node"].as_str().unwrap_or("?").to_string(),
            yes_no(p["connected"].as_bool().unwrap_or(false)),
            current,
            age(p["connectedUnix"].as_u64().unwrap_or(0)),
            p["adminAddress"].as_str().unwrap_or("-").to_string(),
            p["identity"].as_str().unwrap_or("-").to_string(),
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}

fn resources(held: &Value) {
    let list = held["resources"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("\nresources: none from a control plane (static configuration)");
        return;
    }
    println!("\nRESOURCES");
    let mut table = Table::new(&["KIND", "NAME", "VERSION", "RECEIVED"]);
    for r in &list {
        table.row(vec![
            r["kind"].as_str().unwrap_or("?").to_string(),
            r["name"].as_str().unwrap_or("?").to_string(),
            short(r["version"].as_str().unwrap_or("?")),
            age(r["receivedUnix"].as_u64().unwrap_or(0)),
        ]);
    }
    table.print();
}

/// The part of `/config` a section asks for, for `-o json`.
fn select(held: &Value, section: Section) -> Value {
    let view = &held["view"];
    let base = json!({"version": held["version"], "namespace": held["namespace"]});
    let mut out = base;
    match section {
        Section::All => return held.clone(),
        Section::Routes => out["services"] = view["services"].clone(),
        Section::Endpoints => out["backends"] = view["backends"].clone(),
        Section::Policies => out["inbound"] = view["inbound"].clone(),
        Section::Certs => out["certificate"] = held["certificate"].clone(),
    }
    out
}

/// A version digest, shortened for tables.
pub fn short(version: &str) -> String {
    version.chars().take(12).collect()
}
