//! Mesh checks, asked of the control plane (and, through it, of every proxy).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::Outcome;
use crate::cmd::client::ControlArgs;

/// A certificate closer to expiry than this is a warning.
const CA_WARN: Duration = Duration::from_secs(30 * 86_400);
/// Clocks further apart than these are a warning, then a failure.
const SKEW_WARN: Duration = Duration::from_secs(2);
const SKEW_FAIL: Duration = Duration::from_secs(60);

pub fn checks(control: &ControlArgs, out: &mut Vec<Outcome>) {
    let addr = control.control;
    let started = std::time::Instant::now();
    let ready = match control.get("/ready", false) {
        Ok(a) => a,
        Err(e) => {
            out.push(Outcome::fail(
                "control plane",
                format!("{e:#}"),
                "start it (`weft up`, or `weft control --config-dir DIR`), or say where it is with --control ADDR / WEFT_CONTROL",
            ));
            return;
        }
    };
    if ready.status != 200 {
        out.push(Outcome::fail(
            "control plane",
            format!("{addr} answered /ready with {}", ready.status),
            "read the control plane's log",
        ));
        return;
    }
    out.push(Outcome::ok(
        "control plane",
        format!("{addr} ready ({} ms)", started.elapsed().as_millis()),
    ));
    out.push(clock(ready.header("date")));
    configuration(control, out);
    ca(control, out);
    proxies(control, out);
}

fn clock(date: Option<&str>) -> Outcome {
    let Some(theirs) = date.and_then(|d| httpdate::parse_http_date(d).ok()) else {
        return Outcome::warn(
            "clock skew",
            "the control plane sent no Date",
            "upgrade the control plane",
        );
    };
    let now = SystemTime::now();
    let skew = now
        .duration_since(theirs)
        .or_else(|_| theirs.duration_since(now))
        .unwrap_or_default();
    // HTTP dates have whole seconds: one second apart is agreement.
    let message = format!(
        "{}s between this host and the control plane",
        skew.as_secs()
    );
    if skew > SKEW_FAIL {
        Outcome::fail("clock skew", message, "synchronise clocks (systemd-timesyncd or chrony): certificates and tokens depend on them")
    } else if skew > SKEW_WARN {
        Outcome::warn(
            "clock skew",
            message,
            "synchronise clocks (systemd-timesyncd or chrony)",
        )
    } else {
        Outcome::ok("clock skew", message)
    }
}

fn configuration(control: &ControlArgs, out: &mut Vec<Outcome>) {
    let status = match control.get_json("/status", false) {
        Ok(s) => s,
        Err(e) => {
            out.push(Outcome::fail(
                "configuration",
                format!("{e:#}"),
                "read the control plane's log",
            ));
            return;
        }
    };
    let generation = status["generation"].as_u64().unwrap_or(0);
    let dir = status["configDir"].as_str().unwrap_or("?");
    let rejected: Vec<&str> = status["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push(if rejected.is_empty() {
        let counts: Vec<String> = status["counts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        Outcome::ok(
            "configuration",
            format!("{dir}, generation {generation}, in effect: {}", counts.join(", ")),
        )
    } else {
        Outcome::fail(
            "configuration",
            format!("the last change to {dir} was REJECTED (generation {generation} stays in effect):\n        {}", rejected.join("\n        ")),
            "fix the files named above; `weft validate DIR` shows every error",
        )
    });
    for w in status["warnings"].as_array().into_iter().flatten() {
        out.push(Outcome::warn(
            "configuration",
            w.as_str().unwrap_or_default(),
            "see the resource named",
        ));
    }
    for (uri, state) in status["keySets"].as_object().into_iter().flatten() {
        if state.as_str() != Some("ok") {
            out.push(Outcome::warn(
                "key sets",
                format!("{uri}: {}", state.as_str().unwrap_or("?")),
                "check that the JWKS URI is reachable from the control plane; tokens it signs are refused meanwhile",
            ));
        }
    }
}

fn ca(control: &ControlArgs, out: &mut Vec<Outcome>) {
    let pem = match control.get("/ca/bundle.pem", false) {
        Ok(a) if a.status == 200 => a.body,
        Ok(a) => {
            out.push(Outcome::fail(
                "CA",
                format!("/ca/bundle.pem answered {}", a.status),
                "read the control plane's log",
            ));
            return;
        }
        Err(e) => {
            out.push(Outcome::fail(
                "CA",
                format!("{e:#}"),
                "read the control plane's log",
            ));
            return;
        }
    };
    let roots = weft_identity::parse_pem_certs(&pem).unwrap_or_default();
    if roots.is_empty() {
        out.push(Outcome::fail(
            "CA",
            "the trust bundle holds no certificate",
            "restart the control plane; check its state directory's ca/",
        ));
        return;
    }
    for (i, root) in roots.iter().enumerate() {
        let name = format!("CA root {}", i + 1);
        out.push(match weft_identity::cert_not_after(root) {
            Ok(t) => expiry(&name, t, CA_WARN, "rotate the root: POST /ca/rotate, then /ca/finish-rotation once proxies renewed (README: root rotation)"),
            Err(e) => Outcome::fail(name, e.to_string(), "replace the CA"),
        });
    }
}

/// OK, near expiry (within `warn`) or expired.
fn expiry(check: &str, not_after: SystemTime, warn: Duration, hint: &str) -> Outcome {
    let now = SystemTime::now();
    match not_after.duration_since(now) {
        Err(_) => Outcome::fail(check, "EXPIRED", hint),
        Ok(left) if left < warn => Outcome::warn(check, format!("expires in {}", span(left)), hint),
        Ok(left) => Outcome::ok(check, format!("valid for {}", span(left))),
    }
}

fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn proxies(control: &ControlArgs, out: &mut Vec<Outcome>) {
    let listed = match control.get_json("/proxies", true) {
        Ok(l) => l,
        Err(e) => {
            out.push(Outcome::warn(
                "proxies",
                format!("cannot list them: {e:#}"),
                "run as the control plane's user (root for `weft up`) or give --admin-token-file",
            ));
            return;
        }
    };
    let generation = listed["generation"].as_u64().unwrap_or(0);
    let list = listed["proxies"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        out.push(Outcome::ok("proxies", "none declared yet"));
    }
    for p in &list {
        let node = p["node"].as_str().unwrap_or("?");
        let check = format!("proxy {node}");
        if !p["connected"].as_bool().unwrap_or(false) {
            out.push(Outcome::fail(
                check,
                "not connected to the control plane",
                "is it running? `weft proxy-config` lists proxies; its log says why it cannot connect",
            ));
            continue;
        }
        if let Some(why) = p["rejected"].as_str() {
            out.push(Outcome::fail(
                check,
                format!("rejected the latest push: {why}"),
                "read the proxy's log; `weft proxy-config --diff` shows what differs",
            ));
            continue;
        }
        if !p["current"].as_bool().unwrap_or(false) {
            out.push(Outcome::warn(
                check,
                format!("not on the current configuration yet (it has generation {} of {generation})", p["generation"]),
                "re-run in a few seconds; if it stays behind, `weft proxy-config --diff` shows what differs",
            ));
            continue;
        }
        out.push(certificate(control, node, check));
    }
}

/// A connected proxy's certificate, asked of the proxy through the control plane.
fn certificate(control: &ControlArgs, node: &str, check: String) -> Outcome {
    let held = match control.get_json(&format!("/proxies/{node}/config"), true) {
        Ok(h) => h,
        Err(e) => {
            return Outcome::fail(
                check,
                format!("connected, but its admin endpoint does not answer: {e:#}"),
                "is the proxy's admin port reachable from the control plane?",
            )
        }
    };
    let cert = &held["certificate"];
    let at = |k: &str| {
        cert[k]
            .as_u64()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
    };
    let (Some(not_after), Some(renew_at)) = (at("notAfterUnix"), at("renewAtUnix")) else {
        return Outcome::fail(
            check,
            "has no certificate",
            "read the proxy's log (join token, CA reachable?)",
        );
    };
    let now = SystemTime::now();
    let id = cert["spiffeId"].as_str().unwrap_or("?");
    if not_after <= now {
        return Outcome::fail(
            check,
            format!("certificate of {id} EXPIRED"),
            "the proxy cannot renew: read its log",
        );
    }
    // Renewal starts at half-life; still holding the old one well after is a failing renewal.
    let overdue = now.duration_since(renew_at).unwrap_or_default();
    let left = not_after.duration_since(now).unwrap_or_default();
    if overdue > Duration::from_secs(300) {
        return Outcome::warn(
            check,
            format!(
                "certificate of {id} should have been renewed {} ago; expires in {}",
                span(overdue),
                span(left)
            ),
            "read the proxy's log: renewal is failing",
        );
    }
    Outcome::ok(
        check,
        format!(
            "connected, current; {id}, certificate valid for {}",
            span(left)
        ),
    )
}
