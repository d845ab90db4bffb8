//! `weft stat [SERVICE|WORKLOAD] [--edges] [--window 1m] [-o json]`: success rate, requests
//! per second and latency percentiles over a recent window, per Service, route and workload,
//! read from the proxies through the control plane (which scrapes them and keeps a short
//! history). `--edges`: caller → callee pairs with the identities each proved and whether the
//! calls were mutual TLS. A proxy that cannot be read is named, and the rest still printed
//! (exit 1 then).

use std::process::ExitCode;

use serde_json::Value;

use super::client::ControlArgs;
use super::output::{print_json, short_principal, Output, Table};

#[derive(clap::Args)]
pub struct Args {
    /// A Service (`namespace/name`, `name`, or `svc/name`) or a workload (`namespace/name` or
    /// `name`); the whole mesh by default.
    target: Option<String>,
    /// Show caller → callee pairs, with identities and mTLS.
    #[arg(long)]
    edges: bool,
    /// How far back to count (at most 15m).
    #[arg(long, default_value = "1m", value_parser = super::proxy::parse_duration)]
    window: std::time::Duration,
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = args.control.get_json(
        &format!("/stat?window={}s", args.window.as_secs().max(1)),
        false,
    )?;
    let selected = select(&report, args.target.as_deref())?;
    let unreachable: Vec<&Value> = report["unreachable"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for u in &unreachable {
        eprintln!(
            "warning: the proxy of {} could not be read: {}",
            u["workload"].as_str().unwrap_or("?"),
            u["error"].as_str().unwrap_or("?")
        );
    }
    if args.output == Output::Json {
        print_json(&selected);
    } else {
        print_tables(&selected, args.edges);
    }
    Ok(if unreachable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The part of the report about `target` (all of it without one).
fn select(report: &Value, target: Option<&str>) -> anyhow::Result<Value> {
    let Some(target) = target else {
        return Ok(report.clone());
    };
    let wanted = target
        .strip_prefix("svc/")
        .or_else(|| target.strip_prefix("service/"));
    let matches = |name: &str, t: &str| name == t || name.rsplit('/').next() == Some(t);
    let rows = |key: &str| -> Vec<Value> { report[key].as_array().cloned().unwrap_or_default() };
    let services: Vec<Value> = rows("services")
        .into_iter()
        .filter(|s| matches(s["name"].as_str().unwrap_or(""), wanted.unwrap_or(target)))
        .collect();
    let workloads: Vec<Value> = rows("workloads")
        .into_iter()
        .filter(|w| wanted.is_none() && matches(w["name"].as_str().unwrap_or(""), target))
        .collect();
    let mut out = serde_json::json!({
        "windowSeconds": report["windowSeconds"],
        "coveredSeconds": report["coveredSeconds"],
        "unreachable": report["unreachable"],
    });
    if let [service] = services.as_slice() {
        let name = service["name"].as_str().unwrap_or("").to_string();
        let members: Vec<String> = service["workloads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect();
        out["services"] = Value::Array(vec![service.clone()]);
        out["routes"] = Value::Array(
            rows("routes")
                .into_iter()
                .filter(|r| r["service"].as_str() == Some(&name))
                .collect(),
        );
        out["workloads"] = Value::Array(
            rows("workloads")
                .into_iter()
                .filter(|w| {
                    members
                        .iter()
                        .any(|m| Some(m.as_str()) == w["name"].as_str())
                })
                .collect(),
        );
        out["edges"] = Value::Array(
            rows("edges")
                .into_iter()
                .filter(|e| {
                    members
                        .iter()
                        .any(|m| Some(m.as_str()) == e["destination"].as_str())
                })
                .collect(),
        );
        return Ok(out);
    }
    if let [workload] = workloads.as_slice() {
        let name = workload["name"].as_str().unwrap_or("").to_string();
        out["workloads"] = Value::Array(vec![workload.clone()]);
        out["edges"] = Value::Array(
            rows("edges")
                .into_iter()
                .filter(|e| {
                    e["source"].as_str() == Some(&name) || e["destination"].as_str() == Some(&name)
                })
                .collect(),
        );
        return Ok(out);
    }
    if services.len() + workloads.len() > 1 {
        anyhow::bail!("`{target}` names more than one Service or workload: write namespace/name");
    }
    anyhow::bail!("no Service or meshed workload `{target}` (`weft stat` lists them all)")
}

fn print_tables(report: &Value, edges: bool) {
    let covered = report["coveredSeconds"].as_f64().unwrap_or(0.0);
    let window = report["windowSeconds"].as_f64().unwrap_or(0.0);
    if covered + 1.0 < window {
        println!(
            "(the control plane has {covered:.0}s of history, not the {window:.0}s asked: numbers are over {covered:.0}s)"
        );
    }
    let golden_header = ["RPS", "SUCCESS", "P50", "P95", "P99"];
    let section =
        |title: &str, key: &str, first: &[&str], cells: &dyn Fn(&Value) -> Vec<String>| {
            let rows = report[key].as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                return;
            }
            println!("{title}");
            let header: Vec<&str> = first.iter().chain(golden_header.iter()).copied().collect();
            let mut t = Table::new(&header);
            for r in &rows {
                let mut row = cells(r);
                row.extend(golden(r));
                t.row(row);
            }
            t.print();
            println!();
        };
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("?").to_string();
    section("SERVICES", "services", &["SERVICE"], &|r| {
        vec![s(r, "name")]
    });
    section(
        "ROUTES (callers' side)",
        "routes",
        &["SERVICE", "ROUTE"],
        &|r| vec![s(r, "service"), s(r, "route")],
    );
    section("WORKLOADS (inbound)", "workloads", &["WORKLOAD"], &|r| {
        vec![s(r, "name")]
    });
    if edges {
        section(
            "EDGES",
            "edges",
            &["FROM", "TO", "MTLS", "FROM IDENTITY", "TO IDENTITY"],
            &|r| {
                vec![
                    s(r, "source"),
                    s(r, "destination"),
                    if r["mtls"].as_bool().unwrap_or(false) {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_string(),
                    short_principal(&s(r, "sourcePrincipal")),
                    short_principal(&s(r, "destinationPrincipal")),
                ]
            },
        );
    }
}

fn golden(r: &Value) -> Vec<String> {
    let ms = |k: &str| match r[k].as_f64() {
        Some(v) if v < 10.0 => format!("{v:.2}ms"),
        Some(v) => format!("{v:.0}ms"),
        None => "-".into(),
    };
    vec![
        format!("{:.1}", r["rps"].as_f64().unwrap_or(0.0)),
        r["successRate"]
            .as_f64()
            .map_or("-".into(), |v| format!("{:.2}%", v * 100.0)),
        ms("p50Ms"),
        ms("p95Ms"),
        ms("p99Ms"),
    ]
}
