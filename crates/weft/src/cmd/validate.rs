//! `weft validate DIR`: every error (file:line, field, what would be valid), or a one-screen
//! summary of what the mesh contains.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use weft_api::diagnostic::{Diagnostic, Diagnostics, Severity};
use weft_api::model::Model;

use super::output::{print_json, Output};

#[derive(clap::Args)]
pub struct Args {
    /// Directory (or single file) of mesh resources.
    dir: PathBuf,
    /// `json`: `{valid, errors, warnings, resources, services, workloads}`; exit 1 when invalid.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (resources, mut diags) = if args.dir.is_file() {
        weft_api::load::load_file(&args.dir)
    } else {
        weft_api::load::load_dir(&args.dir)
    };
    let (model, more) = weft_api::validate::build(&resources);
    diags.extend(more);
    if args.output == Output::Json {
        let valid = !diags.has_errors() && model.is_some();
        print_json(&as_json(model.as_ref().filter(|_| valid), &diags));
        return Ok(if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    for d in &diags.0 {
        eprintln!("{d}");
    }
    let Some(model) = model.filter(|_| !diags.has_errors()) else {
        eprintln!(
            "\n{} error(s), {} warning(s): the configuration is invalid",
            diags.errors().count(),
            diags.warnings().count()
        );
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "{}: valid ({} warning(s))",
        args.dir.display(),
        diags.warnings().count()
    );
    let counts: Vec<String> = model
        .counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!("  resources: {}", counts.join(", "));
    println!(
        "  trust domain {}, cluster domain {}",
        model.mesh.trust_domain, model.mesh.cluster_domain
    );
    if let Some(t) = &model.mesh.tracing {
        println!(
            "  tracing to {} ({}% of new traces sampled; headers {})",
            t.collector,
            t.random_sampling_percentage,
            t.propagators.join(", ")
        );
    }
    for svc in model.services.values() {
        let ports: Vec<String> = svc
            .ports
            .iter()
            .map(|p| format!("{}/{:?}", p.port, p.protocol).to_lowercase())
            .collect();
        let endpoints = model.selected(&svc.namespace, &svc.selector).count();
        let vip = svc
            .vip
            .map(|v| v.to_string())
            .unwrap_or_else(|| "headless".into());
        println!(
            "  service {}/{} vip {vip} ports [{}] endpoints {endpoints}",
            svc.namespace,
            svc.name,
            ports.join(", ")
        );
        // One Service at a time: compiling whole views here would be quadratic in the mesh.
        if let Some(sv) =
            weft_api::compile::service(&model, &svc.namespace, &svc.name, &svc.namespace)
                .map(|bundle| bundle.service)
        {
            for p in &sv.ports {
                let mut routes: Vec<String> = p
                    .http
                    .rules
                    .iter()
                    .chain(&p.grpc.rules)
                    .map(|r| format!("{} {}", r.route.kind, r.route.label()))
                    .collect();
                routes.extend(
                    p.tcp
                        .iter()
                        .map(|t| format!("TCPRoute {}", t.route.label())),
                );
                routes.dedup();
                if !routes.is_empty() {
                    println!("    port {}: {}", p.port, routes.join(", "));
                }
            }
        }
    }
    for w in &model.workloads {
        let v = &w.view;
        println!(
            "  workload {}/{} at {} (sa {}{})",
            v.namespace,
            v.name,
            v.address,
            v.service_account,
            if v.meshed { "" } else { ", no proxy" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The whole verdict as one document: every diagnostic, and what a valid set declares.
fn as_json(model: Option<&Model>, diags: &Diagnostics) -> Value {
    let list = |severity: Severity| -> Vec<Value> {
        diags
            .0
            .iter()
            .filter(|d| d.severity == severity)
            .map(diagnostic)
            .collect()
    };
    let mut out = json!({
        "valid": model.is_some(),
        "errors": list(Severity::Error),
        "warnings": list(Severity::Warning),
    });
    let Some(model) = model else {
        return out;
    };
    out["resources"] = json!(model.counts);
    out["trustDomain"] = json!(model.mesh.trust_domain);
    out["clusterDomain"] = json!(model.mesh.cluster_domain);
    out["services"] = model
        .services
        .values()
        .map(|svc| {
            json!({
                "name": format!("{}/{}", svc.namespace, svc.name),
                "vip": svc.vip.map(|v| v.to_string()),
                "ports": svc.ports.iter().map(|p| json!({"port": p.port, "protocol": format!("{:?}", p.protocol).to_lowercase()})).collect::<Vec<_>>(),
                "endpoints": model.selected(&svc.namespace, &svc.selector).count(),
            })
        })
        .collect();
    out["workloads"] = model
        .workloads
        .iter()
        .map(|w| {
            json!({
                "name": format!("{}/{}", w.view.namespace, w.view.name),
                "address": w.view.address.to_string(),
                "serviceAccount": w.view.service_account,
                "meshed": w.view.meshed,
            })
        })
        .collect();
    out
}

fn diagnostic(d: &Diagnostic) -> Value {
    json!({
        "file": d.file.display().to_string(),
        "line": d.line,
        "resource": d.resource,
        "field": d.field,
        "message": d.message,
        "hint": d.hint,
    })
}
