//! MeshConfig `tracing`: a collector that can be dialled, a percentage, known header formats.

use crate::resources::mesh_config::TracingSpec;
use crate::view::TracingView;

use super::{HintExt, Reporter};

/// The header formats a proxy reads and writes, OpenTelemetry's names.
pub const PROPAGATORS: [&str; 3] = ["tracecontext", "b3", "b3multi"];

pub(super) fn check(spec: &TracingSpec, rep: &mut Reporter<'_>) -> Option<TracingView> {
    let mut ok = true;
    let collector = match spec.collector.as_deref() {
        None => {
            rep.error("spec.tracing.collector", "tracing needs a collector")
                .with_hint("the OTLP/gRPC address spans go to, e.g. `127.0.0.1:4317`");
            ok = false;
            String::new()
        }
        Some(addr) => match collector_uri(addr) {
            Ok(uri) => uri,
            Err(why) => {
                rep.error("spec.tracing.collector", format!("`{addr}`: {why}"))
                    .with_hint("`host:port` or `http://host:port` of an OTLP/gRPC receiver");
                ok = false;
                String::new()
            }
        },
    };
    let percentage = spec.random_sampling_percentage.unwrap_or(1.0);
    if !(0.0..=100.0).contains(&percentage) {
        rep.error(
            "spec.tracing.randomSamplingPercentage",
            format!("{percentage} is not a percentage"),
        )
        .with_hint("0 to 100; 1 traces one request in a hundred");
        ok = false;
    }
    let names = spec
        .propagators
        .clone()
        .unwrap_or_else(|| vec!["tracecontext".to_string()]);
    if names.is_empty() {
        rep.error(
            "spec.tracing.propagators",
            "no propagator: no trace could cross a hop",
        )
        .with_hint("leave it out for `[tracecontext]`");
        ok = false;
    }
    for (i, name) in names.iter().enumerate() {
        if !PROPAGATORS.contains(&name.as_str()) {
            rep.error(
                format!("spec.tracing.propagators[{i}]"),
                format!("`{name}` is not a propagator Weft knows"),
            )
            .with_hint("tracecontext (W3C), b3 (one header) or b3multi (X-B3-*)");
            ok = false;
        } else if names[..i].contains(name) {
            rep.error(
                format!("spec.tracing.propagators[{i}]"),
                format!("`{name}` is listed twice"),
            );
            ok = false;
        }
    }
    ok.then_some(TracingView {
        collector,
        random_sampling_percentage: percentage,
        propagators: names,
    })
}

/// `host:port` or `http://host:port`, as `http://host:port`.
fn collector_uri(addr: &str) -> Result<String, &'static str> {
    if addr.starts_with("https://") {
        return Err("TLS to the collector is not supported yet");
    }
    let rest = addr.strip_prefix("http://").unwrap_or(addr);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or("no port")?;
    let host_ok = !host.is_empty()
        && !host.contains('/')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
    if !host_ok {
        return Err("not a host name or address");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("http://{host}:{p}")),
        _ => Err("not a port"),
    }
}

#[cfg(test)]
mod tests {
    use super::collector_uri;

    #[test]
    fn collector_addresses() {
        assert_eq!(
            collector_uri("127.0.0.1:4317").unwrap(),
            "http://127.0.0.1:4317"
        );
        assert_eq!(
            collector_uri("http://otel.observability:4317/").unwrap(),
            "http://otel.observability:4317"
        );
        assert_eq!(collector_uri("[::1]:4317").unwrap(), "http://[::1]:4317");
        for bad in [
            "127.0.0.1",
            "https://a:1",
            "a:0",
            "a:x",
            ":4317",
            "a/b:1",
            "a b:1",
        ] {
            assert!(collector_uri(bad).is_err(), "{bad}");
        }
    }
}
