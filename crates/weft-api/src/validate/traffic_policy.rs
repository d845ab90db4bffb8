//! DestinationRule `outlierDetection` and `connectionPool`: checked as Istio checks them
//! (negative counts, durations under 1 ms and percentages outside 0–100 are errors), Istio's
//! defaults filled in, and every field Weft does not implement a load error naming it.

use crate::duration;
use crate::resources::istio::{ConnectionPoolSettings, OutlierDetection};
use crate::view::{OutlierView, PoolView};

use super::{HintExt, Reporter};

pub(super) fn outlier(
    rep: &mut Reporter<'_>,
    field: &str,
    od: &OutlierDetection,
) -> Option<OutlierView> {
    let errors = rep.error_count();
    for (set, name, hint) in [
        (
            od.split_external_local_origin_errors.is_some(),
            "splitExternalLocalOriginErrors",
            "connection failures always count as 5xx and gateway errors in Weft",
        ),
        (
            od.consecutive_local_origin_failures.is_some(),
            "consecutiveLocalOriginFailures",
            "connection failures always count as 5xx and gateway errors in Weft",
        ),
        (
            od.consecutive_errors.is_some(),
            "consecutiveErrors",
            "deprecated by Istio: use consecutive5xxErrors or consecutiveGatewayErrors",
        ),
    ] {
        if set {
            rep.error(format!("{field}.{name}"), "not implemented by Weft")
                .with_hint(hint);
        }
    }
    let mut view = OutlierView::default();
    if let Some(n) = count(
        rep,
        field,
        "consecutive5xxErrors",
        od.consecutive_5xx_errors,
    ) {
        view.consecutive_5xx = n;
    }
    if let Some(n) = count(
        rep,
        field,
        "consecutiveGatewayErrors",
        od.consecutive_gateway_errors,
    ) {
        view.consecutive_gateway = n;
    }
    if let Some(ms) = positive_duration(rep, field, "interval", od.interval.as_deref()) {
        view.interval_ms = ms;
    }
    if let Some(ms) = positive_duration(
        rep,
        field,
        "baseEjectionTime",
        od.base_ejection_time.as_deref(),
    ) {
        view.base_ejection_ms = ms;
    }
    if let Some(p) = percent(rep, field, "maxEjectionPercent", od.max_ejection_percent) {
        view.max_ejection_percent = p;
    }
    if let Some(p) = percent(rep, field, "minHealthPercent", od.min_health_percent) {
        view.min_health_percent = p;
    }
    if view.consecutive_5xx == 0 && view.consecutive_gateway == 0 {
        rep.warning(
            field.to_string(),
            "consecutive5xxErrors and consecutiveGatewayErrors are both 0: nothing is ever ejected",
        );
    }
    (rep.error_count() == errors).then_some(view)
}

pub(super) fn pool(
    rep: &mut Reporter<'_>,
    field: &str,
    cp: &ConnectionPoolSettings,
) -> Option<PoolView> {
    let errors = rep.error_count();
    let mut view = PoolView::default();
    if let Some(tcp) = &cp.tcp {
        let f = format!("{field}.tcp");
        for (set, name) in [
            (tcp.tcp_keepalive.is_some(), "tcpKeepalive"),
            (
                tcp.max_connection_duration.is_some(),
                "maxConnectionDuration",
            ),
            (tcp.idle_timeout.is_some(), "idleTimeout"),
        ] {
            if set {
                rep.error(format!("{f}.{name}"), "not implemented by Weft")
                    .with_hint("remove it; `http.idleTimeout` closes idle pooled HTTP connections");
            }
        }
        view.max_connections = count(rep, &f, "maxConnections", tcp.max_connections).unwrap_or(0);
        view.connect_timeout_ms =
            positive_duration(rep, &f, "connectTimeout", tcp.connect_timeout.as_deref());
    }
    if let Some(http) = &cp.http {
        let f = format!("{field}.http");
        for (set, name) in [
            (http.h2_upgrade_policy.is_some(), "h2UpgradePolicy"),
            (http.use_client_protocol.is_some(), "useClientProtocol"),
            (
                http.max_concurrent_streams.is_some(),
                "maxConcurrentStreams",
            ),
        ] {
            if set {
                rep.error(format!("{f}.{name}"), "not implemented by Weft")
                    .with_hint("remove it; between proxies Weft always speaks HTTP/2");
            }
        }
        view.max_pending = count(
            rep,
            &f,
            "http1MaxPendingRequests",
            http.http1_max_pending_requests,
        )
        .unwrap_or(0);
        view.max_requests =
            count(rep, &f, "http2MaxRequests", http.http2_max_requests).unwrap_or(0);
        view.max_requests_per_connection = count(
            rep,
            &f,
            "maxRequestsPerConnection",
            http.max_requests_per_connection,
        )
        .unwrap_or(0);
        view.max_retries = count(rep, &f, "maxRetries", http.max_retries).unwrap_or(0);
        view.idle_timeout_ms =
            positive_duration(rep, &f, "idleTimeout", http.idle_timeout.as_deref());
    }
    (rep.error_count() == errors).then_some(view)
}

/// A count: not negative (Istio's rule; 0 means the default, no limit).
fn count(rep: &mut Reporter<'_>, field: &str, name: &str, value: Option<i64>) -> Option<u32> {
    let v = value?;
    match u32::try_from(v) {
        Ok(n) => Some(n),
        Err(_) => {
            rep.error(format!("{field}.{name}"), format!("{v} is not a count"))
                .with_hint("0 or more; 0 means no limit");
            None
        }
    }
}

fn percent(rep: &mut Reporter<'_>, field: &str, name: &str, value: Option<i64>) -> Option<u32> {
    let v = value?;
    if (0..=100).contains(&v) {
        Some(v as u32)
    } else {
        rep.error(
            format!("{field}.{name}"),
            format!("{v} is not a percentage"),
        )
        .with_hint("0 to 100");
        None
    }
}

/// A duration of at least 1 ms, in milliseconds (Istio's `ValidateDuration`).
fn positive_duration(
    rep: &mut Reporter<'_>,
    field: &str,
    name: &str,
    text: Option<&str>,
) -> Option<u64> {
    let text = text?;
    match duration::parse(text.trim_start_matches('-')) {
        Ok(d) if text.starts_with('-') || d.as_millis() < 1 => {
            let _ = d;
            rep.error(
                format!("{field}.{name}"),
                format!("`{text}` is not a duration of at least 1ms"),
            )
            .with_hint("e.g. `10s`");
            None
        }
        Ok(d) => Some(d.as_millis() as u64),
        Err(e) => {
            rep.error(format!("{field}.{name}"), e);
            None
        }
    }
}
