//! `weft audit [--window 24h] [-o text|markdown|json]`: does this team need a mesh at all?
//! The control plane answers from what its proxies counted over the window (`GET /audit`);
//! this prints it section by section, following `shared/AUDIT-FRAMEWORK.md`. Every number
//! carries the counter it came from: a footnote with its Prometheus expression, or, with
//! `--prometheus URL`, a link to that expression in Prometheus.

use std::process::ExitCode;

use serde_json::Value;

use super::audit_doc::{count, duration, Doc};
use super::client::ControlArgs;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// How far back to look (from 1m to 7d; the control plane keeps a week).
    #[arg(long, default_value = "24h")]
    window: String,
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Link every number to its expression in this Prometheus (e.g. http://127.0.0.1:9090),
    /// instead of footnotes.
    #[arg(long, value_name = "URL")]
    prometheus: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let window = args.window.trim();
    if window.is_empty() || !window.bytes().all(|b| b.is_ascii_alphanumeric()) {
        anyhow::bail!("--window: a duration such as 30m, 24h or 7d");
    }
    let report = args
        .control
        .get_json(&format!("/audit?window={window}"), false)?;
    match args.output {
        Format::Json => super::output::print_json(&report),
        format => print!("{}", render(&report, format, args.prometheus.as_deref())),
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as text or Markdown.
pub fn render(report: &Value, format: Format, prometheus: Option<&str>) -> String {
    let mut doc = Doc::new(format == Format::Markdown, prometheus);
    let window = report["window"].as_str().unwrap_or("?");
    let covered = report["coveredSeconds"].as_u64().unwrap_or(0);
    doc.heading(
        1,
        &format!("Does this team need a mesh? (the last {window})"),
    );
    if covered + 60 < report["windowSeconds"].as_u64().unwrap_or(0) {
        doc.para(&format!(
            "The control plane has observed {} of the {window} asked for: the numbers cover that.",
            duration(covered)
        ));
    }

    let v = &report["verdict"];
    doc.heading(2, "Verdict");
    let answer = match v["answer"].as_str() {
        Some("mesh-justified") => "A mesh is justified here.",
        Some("mesh-not-needed") => "A mesh costs more than it gives here: simpler tools would do.",
        _ => "Unclear: the traffic shows some reason for a mesh, not enough to be sure. The questions below decide.",
    };
    doc.para(&doc.bold(answer));
    doc.list("Reasons the traffic showed", &strings(&v["reasons"]));
    doc.list("Signs against", &strings(&v["signsAgainst"]));
    doc.list("Reasons not seen", &strings(&v["reasonsNotSeen"]));
    doc.list(
        "Questions the traffic cannot answer",
        &strings(&v["questions"]),
    );

    let inv = &report["inventory"];
    doc.heading(2, "Inventory");
    let calls = doc.number(&inv["calls"]);
    let growth = &inv["growth"];
    let growth = if growth.is_null() {
        String::new()
    } else {
        format!(
            " ({} in the window's first half, {} in its second)",
            count(growth["firstHalf"].as_f64().unwrap_or(0.0)),
            count(growth["secondHalf"].as_f64().unwrap_or(0.0)),
        )
    };
    doc.para(&format!(
        "{} Services declared, {} with traffic; {} workloads ({} meshed); hosts: {}; namespaces: {}; protocols: {}. Calls between workloads: {calls}{growth}.",
        inv["services"],
        inv["servicesWithTraffic"].as_array().map_or(0, Vec::len),
        inv["workloads"],
        inv["meshedWorkloads"],
        strings(&inv["hosts"]).join(", "),
        strings(&inv["namespaces"]).join(", "),
        inv["protocols"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default(),
    ));
    let mut rows = Vec::new();
    for e in inv["edges"].as_array().into_iter().flatten() {
        rows.push(vec![
            e["source"].as_str().unwrap_or("?").to_string(),
            e["destination"].as_str().unwrap_or("?").to_string(),
            doc.number(&e["requests"]),
            count(e["failed"].as_f64().unwrap_or(0.0)),
            format!("{:.0}%", e["mtlsShare"].as_f64().unwrap_or(0.0) * 100.0),
        ]);
    }
    doc.table(&["caller", "callee", "calls", "failed", "mTLS"], &rows);

    doc.heading(2, "What the traffic used");
    let mut rows = Vec::new();
    for c in report["capabilities"].as_array().into_iter().flatten() {
        let numbers: Vec<String> = c["numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| format!("{} {}", n["label"].as_str().unwrap_or(""), doc.number(n)))
            .collect();
        let mut seen = numbers.join("; ");
        if c["id"] == "routing" {
            seen = routes(&mut doc, &c["details"]["routes"]);
        }
        rows.push(vec![
            c["name"].as_str().unwrap_or("?").to_string(),
            if c["used"] == true { "yes" } else { "no" }.to_string(),
            seen,
        ]);
    }
    doc.table(&["capability", "used", "what was counted"], &rows);

    doc.heading(2, "The alternatives to what is used");
    let mut rows = Vec::new();
    for c in report["capabilities"].as_array().into_iter().flatten() {
        let a = &c["alternative"];
        if a.is_null() {
            continue;
        }
        rows.push(vec![
            c["name"].as_str().unwrap_or("?").to_string(),
            a["alternative"].as_str().unwrap_or("").to_string(),
            a["complexity"].as_str().unwrap_or("").to_string(),
            a["switching"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if rows.is_empty() {
        doc.para("Nothing the mesh offers beyond its defaults moved traffic in the window.");
    } else {
        doc.table(
            &[
                "capability",
                "alternative",
                "complexity",
                "what switching takes",
            ],
            &rows,
        );
    }

    let path = &report["adoptionPath"];
    if path["applies"] == true {
        doc.heading(2, "The adoption path");
        let outside = strings(&path["outsideTheMesh"]);
        if !outside.is_empty() {
            doc.list("Workloads still outside the mesh (no proxy)", &outside);
        }
        let order: Vec<String> = path["toStrict"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let mut line = format!(
                    "{}: {} caller(s), {} request(s) in",
                    w["workload"].as_str().unwrap_or("?"),
                    w["callers"],
                    count(w["requestsIn"].as_f64().unwrap_or(0.0))
                );
                if w["blockedByPlaintextCallers"] == true {
                    line.push_str(" (still takes plaintext: mesh its callers first)");
                }
                line
            })
            .collect();
        if order.is_empty() {
            doc.para("Every meshed workload is already STRICT.");
        } else {
            doc.list(
                "To STRICT mutual TLS, in this order (fewest callers first)",
                &order,
            );
        }
    }
    doc.notes();
    doc.out
}

/// A route's split as `backend N, backend M`.
fn routes(doc: &mut Doc, routes: &Value) -> String {
    let mut parts = Vec::new();
    for r in routes.as_array().into_iter().flatten() {
        let by: Vec<String> = r["byBackend"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                format!(
                    "{} {}",
                    b["backend"].as_str().unwrap_or("?"),
                    doc.number(&b["requests"])
                )
            })
            .collect();
        let moved = if r["movedTraffic"] == true {
            "moved traffic"
        } else {
            "all one way"
        };
        parts.push(format!(
            "{} ({moved}): {}",
            r["route"].as_str().unwrap_or("?"),
            by.join(", ")
        ));
    }
    if parts.is_empty() {
        "no route splits or matches headers".into()
    } else {
        parts.join("; ")
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_escapes() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(
            super::super::audit_doc::escape("a{b=\"c\"}"),
            "a%7Bb%3D%22c%22%7D"
        );
        assert_eq!(duration(3725), "1h02m");
    }

    #[test]
    fn numbers_link_to_their_counters() {
        let report = serde_json::json!({
            "window": "24h", "windowSeconds": 86400, "coveredSeconds": 86400,
            "verdict": {"answer": "mesh-not-needed", "reasons": [], "signsAgainst": ["few services: 2 produced traffic (fewer than 10)"], "reasonsNotSeen": [], "questions": ["How many engineers?"]},
            "inventory": {"services": 2, "servicesWithTraffic": ["a/x"], "workloads": 2, "meshedWorkloads": 2, "hosts": ["this host"], "namespaces": ["a"], "protocols": {"http": 1},
                "calls": {"value": 1500.0, "promql": "sum(increase(weft_requests_total{direction=\"outbound\"}[24h]))"},
                "growth": {"firstHalf": 700.0, "secondHalf": 800.0}, "edges": []},
            "capabilities": [], "adoptionPath": {"applies": false}
        });
        let md = render(&report, Format::Markdown, None);
        assert!(md.contains("Calls between workloads: 1,500[^1]"), "{md}");
        assert!(
            md.contains("[^1]: `sum(increase(weft_requests_total{direction=\"outbound\"}[24h]))`"),
            "{md}"
        );
        assert!(
            md.contains("**A mesh costs more than it gives here"),
            "{md}"
        );
        let text = render(&report, Format::Text, Some("http://prom:9090/"));
        assert!(
            text.contains("1,500 <http://prom:9090/graph?g0.expr=sum%28increase"),
            "{text}"
        );
    }
}
