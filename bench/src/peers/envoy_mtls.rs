//! envoy-2-mtls: the mesh hop as two Istio sidecars make it, the like-for-like peer of
//! weft-2-mtls. client → Envoy A (the client's sidecar: a plain HTTP/1.1 listener) → mutual
//! TLS 1.3 → Envoy B (the backend's sidecar, on Istio's inbound port 15006) → the backend.
//!
//! * Certificates: a CA and two leaves made for the run ([`super::certs`]), with the SPIFFE
//!   ids of weft-2-mtls's workloads (`…/ns/bench/sa/client` and `…/sa/backend`).
//! * A checks B as Istio's outbound cluster does: chained to the CA, and the URI SAN exactly
//!   the destination's identity; it sends Istio's SNI. B requires a client certificate
//!   chained to the CA with a URI SAN in the trust domain (`spiffe://cluster.local/`), as
//!   Istio's inbound validates the trust domain; which caller may do what is authorization,
//!   which this setup, like weft-2-mtls, has none of.
//! * TLS 1.3 only, both ways (Envoy's client side stops at 1.2 unless told otherwise; Weft
//!   speaks 1.3). Between the two, HTTP/1.1, as Istio leaves it by default
//!   (`h2UpgradePolicy: DO_NOT_UPGRADE`); Weft carries the hop over HTTP/2.
//! * One worker each, no access log, the same listener and cluster settings as the single
//!   Envoy ([`super::envoy`]). Istio's sidecars also run telemetry filters (stats, metadata
//!   exchange) that these do not, so this is a lower bound of what Istio's hop costs.
//!
//! Once a request passes, A's admin statistics must show a TLS 1.3 handshake to B: a
//! request that got through some other way would not be measuring the hop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::certs::{self, spiffe_id, LeafFiles, TRUST_DOMAIN};
use super::envoy::{self, READY};
use super::{addr, ensure_free, http_get_text, wait_ready, BACKEND};
use crate::children::Proc;

/// Envoy A (the client's sidecar): the listener the load generator sends to, and its admin.
pub const A_LISTEN: &str = "127.0.23.1:8080";
pub const A_ADMIN: &str = "127.0.23.1:9901";
/// Envoy B (the backend's sidecar): its mutual-TLS listener and admin.
pub const B_LISTEN: &str = "127.0.23.2:15006";
pub const B_ADMIN: &str = "127.0.23.2:9901";
/// A's cluster for B, named so its statistics are easy to find.
const TO_B: &str = "outbound_backend";
/// The server name A asks B for, as Istio names an outbound cluster.
const SNI: &str = "outbound_.8080_._.backend.bench.svc.cluster.local";

/// Starts B, then A, and waits until a request through A reaches the backend over mutual
/// TLS 1.3. Returned as [A, B].
pub fn start(bin: &Path, dir: &Path) -> Result<Vec<Proc>> {
    let (a_listen, a_admin) = (addr(A_LISTEN)?, addr(A_ADMIN)?);
    let (b_listen, b_admin) = (addr(B_LISTEN)?, addr(B_ADMIN)?);
    for (a, what) in [
        (a_listen, "envoy A"),
        (a_admin, "envoy A admin"),
        (b_listen, "envoy B"),
        (b_admin, "envoy B admin"),
    ] {
        ensure_free(a, what)?;
    }
    let (client_id, backend_id) = (spiffe_id("bench", "client"), spiffe_id("bench", "backend"));
    let pki = certs::write(&dir.join("certs"), &[&client_id, &backend_id])?;
    let (client, backend) = (&pki.leaves[0], &pki.leaves[1]);

    let b_tls = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": true,
        "common_tls_context": common_tls(backend, &pki.ca, json!({"prefix": format!("spiffe://{TRUST_DOMAIN}/")})),
    });
    let b = envoy::bootstrap(
        b_admin,
        envoy::http_listener("inbound", b_listen, "local_app", Some(b_tls)),
        envoy::cluster("local_app", addr(BACKEND)?, None),
    );
    let (b, _) = envoy::spawn(bin, "envoy B", dir, "envoy-b", &b, b_admin)?;

    let a_tls = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": SNI,
        "common_tls_context": common_tls(client, &pki.ca, json!({"exact": backend_id})),
    });
    let a = envoy::bootstrap(
        a_admin,
        envoy::http_listener("outbound", a_listen, TO_B, None),
        envoy::cluster(TO_B, b_listen, Some(a_tls)),
    );
    let (mut a, a_path) = envoy::spawn(bin, "envoy A", dir, "envoy-a", &a, a_admin)?;
    wait_ready(&mut a, a_listen, "/", "bench", READY)
        .and_then(|()| check_tls13(a_admin))
        .with_context(|| {
            format!(
                "a request through envoy A ({}) did not reach the backend over mutual TLS 1.3; \
                 last lines of envoy B ({}):\n{}",
                a_path.display(),
                b.log_path().display(),
                b.log_tail(20)
            )
        })?;
    Ok(vec![a, b])
}

/// What both sides present and check: their certificate, the CA, the peer's URI SAN
/// matched by `san_matcher`, TLS 1.3 only.
fn common_tls(own: &LeafFiles, ca: &Path, san_matcher: Value) -> Value {
    json!({
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_3",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "tls_certificates": [{
            "certificate_chain": {"filename": own.cert.display().to_string()},
            "private_key": {"filename": own.key.display().to_string()},
        }],
        "validation_context": {
            "trusted_ca": {"filename": ca.display().to_string()},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": san_matcher}],
        },
    })
}

/// Fails unless A's statistics count a TLS 1.3 handshake with B.
fn check_tls13(a_admin: SocketAddr) -> Result<()> {
    // The filter is a regular expression; this one needs no escaping in a URL.
    let path = "/stats?filter=ssl.versions";
    let (code, body) = http_get_text(a_admin, path, Duration::from_secs(2))?;
    if code != 200 {
        bail!("envoy A's admin answered GET {path} with {code}");
    }
    let tls13 = stat(&body, &format!("cluster.{TO_B}.ssl.versions.TLSv1.3"));
    if tls13.unwrap_or(0) == 0 {
        bail!("envoy A counts no TLS 1.3 handshake with B; its TLS statistics:\n{body}");
    }
    Ok(())
}

/// The value of counter `name` in Envoy's text statistics (`name: value` lines).
fn stat(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|line| {
        let (n, v) = line.split_once(": ")?;
        (n.trim() == name).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_counter_from_envoys_text_stats() {
        let stats = "cluster.outbound_backend.ssl.handshake: 3\n\
                     cluster.outbound_backend.ssl.versions.TLSv1.3: 3\n";
        assert_eq!(
            stat(stats, "cluster.outbound_backend.ssl.versions.TLSv1.3"),
            Some(3)
        );
        assert_eq!(
            stat(stats, "cluster.outbound_backend.ssl.versions.TLSv1.2"),
            None
        );
    }

    #[test]
    fn each_side_checks_the_other_as_istio_does() {
        let own = LeafFiles {
            cert: "c.pem".into(),
            key: "c.key".into(),
        };
        let tls = common_tls(&own, Path::new("ca.pem"), json!({"exact": "spiffe://x"}));
        assert_eq!(tls["tls_params"]["tls_minimum_protocol_version"], "TLSv1_3");
        let v = &tls["validation_context"];
        assert_eq!(v["trusted_ca"]["filename"], "ca.pem");
        assert_eq!(v["match_typed_subject_alt_names"][0]["san_type"], "URI");
        assert_eq!(
            v["match_typed_subject_alt_names"][0]["matcher"]["exact"],
            "spiffe://x"
        );
    }
}
