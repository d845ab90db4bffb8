//! `weft authz check`: would this request be allowed, and which policy and rule decide it?
//!
//! The request is described on the command line (caller identity, Service and port, method,
//! path, headers, JWT claims). The policies come from a directory (validated as `weft
//! validate` does) or from a running control plane's admin endpoint; either way the decision
//! is made by `weft-policy`, the code the proxies run, for each workload the Service sends to.
//! Exit status: 0 allowed, 1 denied, 2 the question could not be answered.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use http::{HeaderMap, HeaderName, HeaderValue};
use weft_api::compile::authz::{AuthzScope, AuthzTarget};
use weft_policy::authz::RequestAuth;
use weft_policy::{
    normalize, Authorizer, ConnectionAttrs, Decision, PeerAttrs, RequestAttrs, Verdict,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Decide a request as the callee's proxy would: allowed or denied, and by what.
    Check(CheckArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config_dir", "control"])))]
#[command(group(clap::ArgGroup::new("caller").required(true).args(["from", "plaintext"])))]
pub struct CheckArgs {
    /// Read the policies from this directory of mesh resources.
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Ask a running control plane, at its admin address (e.g. 127.0.0.1:4181).
    #[arg(long, env = "WEFT_CONTROL")]
    control: Option<std::net::SocketAddr>,
    /// The caller's SPIFFE id (`spiffe://cluster.local/ns/shop/sa/frontend`), as mutual TLS
    /// would prove it.
    #[arg(long)]
    from: Option<String>,
    /// The caller comes without mutual TLS (no identity).
    #[arg(long)]
    plaintext: bool,
    /// The Service called: `name.namespace[:port]`, `namespace/name[:port]`, or `name[:port]`
    /// in --namespace.
    #[arg(long)]
    to: String,
    /// The namespace of a `--to` without one.
    #[arg(long, default_value = weft_api::DEFAULT_NAMESPACE)]
    namespace: String,
    #[arg(long, default_value = "GET")]
    method: String,
    #[arg(long, default_value = "/")]
    path: String,
    /// A request header, `name=value` (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// The claims of a verified JWT, as a JSON object (`iss`, `sub`, `aud`, `azp`, ...).
    #[arg(long)]
    jwt_claims: Option<String>,
    /// Output: text or json.
    #[arg(short = 'o', long = "output", default_value = "text")]
    output: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Check(a) => match check(&a) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(ExitCode::from(2))
            }
        },
    }
}

fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (namespace, name, port) = parse_target(&a.to, &a.namespace)?;
    let scope = match (&a.config_dir, a.control) {
        (Some(dir), _) => scope_from_dir(dir, &namespace, &name, port)?,
        (None, Some(addr)) => scope_from_control(addr, &namespace, &name, port)?,
        (None, None) => bail!("say where the policies are: --config-dir DIR or --control ADDR"),
    };
    if scope.targets.is_empty() {
        bail!(
            "Service {} selects no workloads: nothing would answer",
            scope.service
        );
    }
    let peer = match (&a.from, a.plaintext) {
        (Some(id), false) => {
            let uri = if id.starts_with("spiffe://") {
                id.clone()
            } else {
                format!("spiffe://{id}")
            };
            let peer = PeerAttrs::from_spiffe(&uri);
            if peer.namespace.is_none() {
                bail!("`{id}` is not a workload's SPIFFE id (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)");
            }
            peer
        }
        _ => PeerAttrs::default(),
    };
    let headers = parse_headers(&a.headers)?;
    let auth = a.jwt_claims.as_deref().map(parse_claims).transpose()?;
    let path_only = a.path.split('?').next().unwrap_or("/");
    let normalized = normalize::normalize(path_only, scope.path_normalization)
        .map_err(|e| anyhow::anyhow!("the proxy would answer 400: {e}"))?
        .into_owned();
    let host = format!("{}.{}:{}", name, namespace, scope.port);
    let mut results = Vec::new();
    for t in &scope.targets {
        let authorizer = Authorizer::new(t.policies.clone());
        let conn = ConnectionAttrs {
            peer: peer.clone(),
            source_ip: std::net::IpAddr::from([0, 0, 0, 0]),
            destination_ip: t.address,
            destination_port: t.port,
            sni: None,
        };
        let req = RequestAttrs {
            method: &a.method,
            host: &host,
            path: &normalized,
            headers: &headers,
            auth: auth.as_ref(),
        };
        let decision = authorizer.decide(&conn, Some(&req));
        results.push((t, authorizer, decision));
    }
    let all_allowed = results.iter().all(|(_, _, d)| d.allowed());
    if a.output == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&scope, &normalized, &results))?
        );
    } else {
        print_text(a, &scope, &normalized, &results);
    }
    Ok(if all_allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `name.namespace[:port]`, `namespace/name[:port]` or `name[:port]`.
fn parse_target(to: &str, default_ns: &str) -> anyhow::Result<(String, String, Option<u16>)> {
    let (host, port) = match to.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .with_context(|| format!("`{p}` is not a port"))?,
            ),
        ),
        None => (to, None),
    };
    let (ns, name) = if let Some((ns, name)) = host.split_once('/') {
        (ns, name)
    } else {
        let mut labels = host.split('.');
        let name = labels.next().unwrap_or(host);
        (labels.next().unwrap_or(default_ns), name)
    };
    if ns.is_empty() || name.is_empty() {
        bail!("`{to}` does not name a Service: write name.namespace[:port]");
    }
    Ok((ns.to_string(), name.to_string(), port))
}

fn parse_headers(list: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for h in list {
        let (k, v) = h
            .split_once('=')
            .with_context(|| format!("`{h}`: write a header as name=value"))?;
        headers.append(
            HeaderName::from_bytes(k.trim().as_bytes())
                .with_context(|| format!("`{k}` is not a header name"))?,
            HeaderValue::from_str(v).with_context(|| format!("`{v}` is not a header value"))?,
        );
    }
    Ok(headers)
}

/// The identity a verified JWT with these claims gives a request.
fn parse_claims(text: &str) -> anyhow::Result<RequestAuth> {
    let claims: serde_json::Value =
        serde_json::from_str(text).context("--jwt-claims is not JSON")?;
    anyhow::ensure!(claims.is_object(), "--jwt-claims must be a JSON object");
    let iss = claims["iss"].as_str().unwrap_or_default();
    let sub = claims["sub"].as_str().unwrap_or_default();
    let audiences = match &claims["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(RequestAuth {
        principal: format!("{iss}/{sub}"),
        audiences,
        presenter: claims["azp"].as_str().map(str::to_string),
        claims,
        space_delimited: Vec::new(),
    })
}

fn scope_from_dir(
    dir: &std::path::Path,
    ns: &str,
    name: &str,
    port: Option<u16>,
) -> anyhow::Result<AuthzScope> {
    let (model, diags) = weft_api::validate::load_and_build(dir);
    let Some(model) = model else {
        bail!(
            "the configuration in {} is invalid:\n{diags}",
            dir.display()
        );
    };
    weft_api::compile::authz::scope(&model, ns, name, port).map_err(anyhow::Error::msg)
}

fn scope_from_control(
    addr: std::net::SocketAddr,
    ns: &str,
    name: &str,
    port: Option<u16>,
) -> anyhow::Result<AuthzScope> {
    let mut path = format!("/authz/scope?service={ns}/{name}");
    if let Some(p) = port {
        path.push_str(&format!("&port={p}"));
    }
    let control = super::client::ControlArgs::at(addr);
    let answer = control.get(&path, false)?;
    anyhow::ensure!(
        answer.status == 200,
        "the control plane at {addr} answered {}: {}",
        answer.status,
        answer.body.trim()
    );
    let body = answer.body;
    serde_json::from_str(&body).context("the control plane's answer is not an authorization scope")
}

/// `ALLOW shop/frontend rule 0 (mesh.yaml:42)`, or what else decided.
fn decided_by(authorizer: &Authorizer, d: &Decision) -> String {
    let what = authorizer.explain(d);
    match d.verdict {
        Verdict::Denied { policy, rule } | Verdict::Allowed { policy, rule } => {
            match authorizer.rule_source(policy, rule) {
                Some(at) => format!("{what} ({at})"),
                None => what,
            }
        }
        _ => what,
    }
}

fn print_text(
    a: &CheckArgs,
    scope: &AuthzScope,
    normalized: &str,
    results: &[(&AuthzTarget, Authorizer, Decision)],
) {
    let caller = a.from.as_deref().unwrap_or("a plaintext caller");
    println!(
        "{} {} {caller} → {}:{}",
        a.method, a.path, scope.service, scope.port
    );
    if normalized != a.path.split('?').next().unwrap_or("") {
        println!("  path as evaluated: {normalized}");
    }
    for (t, authorizer, d) in results {
        let verdict = if d.allowed() { "ALLOWED" } else { "DENIED " };
        println!(
            "  {verdict} at {} (port {}): {}",
            t.workload,
            t.port,
            decided_by(authorizer, d)
        );
        for (policy, rule) in &d.audits {
            let at = authorizer
                .rule_source(*policy, *rule)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            println!(
                "          audited by {}{at}",
                authorizer.rule_label(*policy, *rule)
            );
        }
    }
}

fn json(
    scope: &AuthzScope,
    normalized: &str,
    results: &[(&AuthzTarget, Authorizer, Decision)],
) -> serde_json::Value {
    let decisions: Vec<serde_json::Value> = results
        .iter()
        .map(|(t, authorizer, d)| {
            let (policy, rule) = match d.verdict {
                Verdict::Denied { policy, rule } | Verdict::Allowed { policy, rule } => (
                    authorizer.policies().get(policy).map(|p| p.label()),
                    Some(rule),
                ),
                _ => (None, None),
            };
            let source = match d.verdict {
                Verdict::Denied { policy, rule } | Verdict::Allowed { policy, rule } => authorizer.rule_source(policy, rule),
                _ => None,
            };
            serde_json::json!({
                "workload": t.workload,
                "port": t.port,
                "allowed": d.allowed(),
                "decidedBy": authorizer.explain(d),
                "policy": policy,
                "rule": rule,
                "source": source,
                "audits": d.audits.iter().map(|(p, r)| authorizer.rule_label(*p, *r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "service": scope.service,
        "port": scope.port,
        "allowed": results.iter().all(|(_, _, d)| d.allowed()),
        "path": normalized,
        "decisions": decisions,
    })
}
