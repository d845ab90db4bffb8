//! Transparent capture, end to end: applications that know nothing about the mesh dial a
//! Service VIP, iptables redirects the connection to the proxy's outbound port, and the proxy
//! routes it by the connection's original destination (`SO_ORIGINAL_DST`), not by anything the
//! application sent.
//!
//! What it proves, with real `iptables` NAT rules, `weft proxy` and `weft echo` processes:
//!
//! 1. plain `curl http://<VIP>/hello` (no proxy settings) reaches the Service's workload, and
//!    the HTTPRoute attached to that Service and port applied (it adds `x-captured: yes`);
//! 2. routing is by destination, not `Host`: a misleading `Host: nonexistent` goes to the same
//!    Service (GAMMA mesh semantics);
//! 3. opaque TCP on a port declared `appProtocol: tcp` is carried end to end (client proxy →
//!    server proxy's inbound → the TCP echo server), and a second VIP whose port has a TCPRoute
//!    reaches the route's backend;
//! 4. a server-speaks-first protocol on an undeclared port (detection) is not stalled: the
//!    banner arrives long before 2 s although the client sends nothing (detection gives up
//!    after ~300 ms and carries the connection as TCP);
//! 5. a captured connection to an address in the VIP range that is no Service (or to a VIP on
//!    a port the Service does not have) is refused, and the proxy logs what was dialed;
//! 6. the client proxy's `/metrics` count the detection timeout and the TCP connections.
//!
//! Why root: the test creates a network namespace (`ip netns add`), installs NAT rules in it
//! (`iptables -t nat ... REDIRECT`) and runs everything inside it, so nothing touches the
//! host's network. Without root (or without `ip` / `iptables` / `curl`) it prints a loud
//! `SKIPPED:` line and passes, except under `CI=true`, where it fails: a skip there would hide
//! a broken capture path. `scripts/test.sh` installs iptables.
//!
//! Topology inside the namespace (which has only `lo`; all of 127.0.0.0/8 is local on it):
//!
//! ```text
//! curl / test client (src 127.0.60.1) ──► 198.18.0.10:80 ──iptables REDIRECT──► 127.0.0.1:4140
//!   client proxy (outbound 127.0.0.1:4140, inbound 127.0.60.1:4143, admin 127.0.60.1:4191)
//!     ──mesh transport──► server proxy inbound 127.0.60.2:4143 (admin 127.0.60.2:4191)
//!       ──► weft echo (http 127.0.60.2:8080, tcp 127.0.60.2:9090)
//!       ──► banner server (127.0.60.2:2525, a thread of this test inside the namespace)
//! ```
//!
//! A route `198.18.0.0/16 dev lo src 127.0.60.1` stands in for a host's default route (without
//! a route, `connect()` fails with ENETUNREACH before netfilter sees the packet); its `src`
//! makes applications appear as the `client` workload. 198.18.0.0/15 is the benchmarking
//! range: nothing addressed to it can leave a namespace that has only `lo`. The proxies' own
//! connections go to 127.0.60.x directly, so they are not captured and need no exemption.
//!
//! Everything the test starts is stopped and the namespace deleted when it ends, also when it
//! panics (see `netns::Netns`); the end of the test checks `ip netns list`.

mod netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netns::Netns;
use serde_json::Value;

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

const CLIENT_IP: &str = "127.0.60.1";
const SERVER_IP: &str = "127.0.60.2";
const WEB_VIP: &str = "198.18.0.10";
const OTHER_VIP: &str = "198.18.0.11";
const NOT_A_SERVICE: &str = "198.18.0.99";
/// The name `start_mesh` gives the client's proxy process.
const CLIENT_PROXY: &str = "client-proxy";
const BANNER: &[u8] = b"220 banner\r\n";
/// Every TCP connection to the VIP range goes to the client proxy's outbound port.
const CAPTURE_RULE: &str =
    "iptables -t nat -A OUTPUT -p tcp -d 198.18.0.0/16 -j REDIRECT --to-ports 4140";

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: cap}
spec:
  clusterIP: 198.18.0.10
  selector: {app: server}
  ports:
  - {name: http, port: 80, targetPort: 8080, appProtocol: http}
  - {name: raw, port: 9090, appProtocol: tcp}
  - {port: 25, targetPort: 2525}
---
# No selector: its only way anywhere is the TCPRoute below.
apiVersion: v1
kind: Service
metadata: {name: other, namespace: cap}
spec:
  clusterIP: 198.18.0.11
  ports:
  - {name: relay, port: 7000, appProtocol: tcp}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: other-to-web, namespace: cap}
spec:
  parentRefs:
  - {group: "", kind: Service, name: other, port: 7000}
  rules:
  - backendRefs:
    - {name: web, port: 9090}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-captured, namespace: cap}
spec:
  parentRefs:
  - {group: "", kind: Service, name: web, port: 80}
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: x-captured, value: "yes"}]
    backendRefs:
    - {name: web, port: 80}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: cap}
spec: {address: 127.0.60.2, serviceAccount: server, labels: {app: server}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: cap}
spec: {address: 127.0.60.1, serviceAccount: client, labels: {app: client}}
"#;

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("literal IP address"), port)
}

/// Panics with the message and the tail of every process log.
macro_rules! fail {
    ($ns:expr, $($arg:tt)*) => {
        panic!("{}\n{}", format!($($arg)*), $ns.logs(40))
    };
}

macro_rules! check {
    ($ns:expr, $cond:expr, $($arg:tt)*) => {
        {
            let ok: bool = $cond;
            if !ok {
                fail!($ns, $($arg)*);
            }
        }
    };
}

mod capture_tools;
use capture_tools::{banner_server, curl, echo_answer, header};

#[test]
fn captured_connections_are_routed_by_original_destination() {
    const WHAT: &str = "capture tests";
    if let Err(reason) = netns::preflight(&["ip", "iptables", "curl"]) {
        netns::skip_or_fail(WHAT, &reason);
        return;
    }

    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir)
        .unwrap_or_else(|e| panic!("creating {}: {e}", config_dir.display()));
    std::fs::write(config_dir.join("mesh.yaml"), MESH)
        .unwrap_or_else(|e| panic!("writing {}: {e}", config_dir.display()));

    let mut ns = match Netns::create("weft-cap", dir.join("logs")) {
        Ok(ns) => ns,
        Err(e) => {
            netns::skip_or_fail(WHAT, &format!("cannot create a network namespace: {e}"));
            return;
        }
    };
    let ns_name = ns.name.clone();

    // Capture: a route to the VIP range (as a host's default route would give) and the NAT
    // rule that sends every TCP connection to it to the client proxy's outbound port.
    let route = format!("ip route add 198.18.0.0/16 dev lo src {CLIENT_IP}");
    let setup = [route.as_str(), CAPTURE_RULE]
        .iter()
        .try_for_each(|cmd| ns.exec(&cmd.split(' ').collect::<Vec<_>>()).map(drop));
    if let Err(e) = setup {
        let closed = ns.close();
        netns::skip_or_fail(
            WHAT,
            &format!(
                "cannot set up routes and iptables NAT in a namespace: {e} (cleanup: {closed:?})"
            ),
        );
        return;
    }

    start_mesh(&mut ns, &config_dir);
    let started = Instant::now();

    check_http_routed_by_vip(&ns);
    check_host_header_ignored(&ns);
    check_opaque_tcp(&ns);
    check_server_first_banner(&ns);
    check_unknown_destinations_refused(&ns);
    check_client_metrics(&ns);
    ns.assert_running();
    eprintln!("capture: all checks passed in {:?}", started.elapsed());

    let closed = ns.close();
    assert!(
        closed.is_ok(),
        "cleaning up network namespace {ns_name}: {closed:?}"
    );
    assert!(
        !netns::list().contains(&ns_name),
        "network namespace {ns_name} is still listed by `ip netns list` after the test"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the echo server, the banner server and both proxies in the namespace, and waits
/// (bounded) until all of them serve.
fn start_mesh(ns: &mut Netns, config_dir: &std::path::Path) {
    // NO_COLOR: the log files are read by this test (and by people), not by a terminal.
    let env = [("WEFT_LOG", "info"), ("NO_COLOR", "1")];
    let s = |v: &str| v.to_string();
    let spawned = ns.spawn(
        "echo-server",
        WEFT,
        &[
            s("echo"),
            s("--http"),
            addr(SERVER_IP, 8080).to_string(),
            s("--tcp"),
            addr(SERVER_IP, 9090).to_string(),
            s("--service"),
            s("web"),
            s("--namespace"),
            s("cap"),
            s("--pod"),
            s("server"),
        ],
        &env,
    );
    spawned.unwrap_or_else(|e| fail!(ns, "starting weft echo: {e}"));

    let banner_addr = addr(SERVER_IP, 2525);
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = ns.spawn_thread("banner-server", move |stop| {
        match TcpListener::bind(banner_addr) {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                banner_server(l, stop);
            }
            Err(e) => {
                let _ = tx.send(Err(format!("binding {banner_addr}: {e}")));
            }
        }
    });
    spawned.unwrap_or_else(|e| fail!(ns, "starting the banner server: {e}"));
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => fail!(ns, "banner server: {e}"),
        Err(e) => fail!(ns, "banner server did not start within 5s: {e}"),
    }

    let config = config_dir.display().to_string();
    let proxy_args = |workload: &str, outbound: SocketAddr, ip: &str| {
        vec![
            s("proxy"),
            s("--config-dir"),
            config.clone(),
            s("--workload"),
            s(workload),
            s("--namespace"),
            s("cap"),
            s("--outbound-addr"),
            outbound.to_string(),
            s("--inbound-addr"),
            addr(ip, 4143).to_string(),
            s("--admin-addr"),
            addr(ip, 4191).to_string(),
            s("--app-ip"),
            s(ip),
        ]
    };
    let server = proxy_args("server", addr(SERVER_IP, 4140), SERVER_IP);
    let spawned = ns.spawn("server-proxy", WEFT, &server, &env);
    spawned.unwrap_or_else(|e| fail!(ns, "starting the server's proxy: {e}"));
    // The client proxy's outbound listens on 127.0.0.1: REDIRECT in nat OUTPUT rewrites a
    // locally generated connection's destination to 127.0.0.1:<to-port>.
    let mut client = proxy_args("client", addr("127.0.0.1", 4140), CLIENT_IP);
    client.push(s("--access-log"));
    let spawned = ns.spawn(CLIENT_PROXY, WEFT, &client, &env);
    spawned.unwrap_or_else(|e| fail!(ns, "starting the client's proxy: {e}"));

    for admin in [addr(SERVER_IP, 4191), addr(CLIENT_IP, 4191)] {
        wait_ready(ns, admin);
    }
    for a in [addr(SERVER_IP, 8080), addr(SERVER_IP, 9090), banner_addr] {
        wait_listening(ns, a);
    }
}

/// Polls `GET http://admin/ready` (inside the namespace) until 200, for at most 15 s.
fn wait_ready(ns: &mut Netns, admin: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        ns.assert_running();
        match ns.within(|| netns::http_get(admin, "/ready", Duration::from_secs(1))) {
            Ok((200, _)) => return,
            Ok((code, body)) => last = format!("HTTP {code}: {body}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fail!(
        ns,
        "proxy with admin {admin} not ready within 15s (last: {last})"
    );
}

fn wait_listening(ns: &mut Netns, a: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        ns.assert_running();
        if ns.within(|| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    fail!(
        ns,
        "nothing listening at {a} inside the namespace within 15s"
    );
}

/// Check 1: Plain HTTP to the VIP is routed by the original destination, with the route applied.
fn check_http_routed_by_vip(ns: &Netns) {
    let what = "check 1 (curl http://198.18.0.10/hello, captured)";
    let url = format!("http://{WEB_VIP}/hello");
    let c = curl(ns, &[&url]);
    let v = echo_answer(ns, what, &c);
    check!(
        ns,
        v["path"] == "/hello",
        "{what}: echo saw path {}, expected /hello: {v}",
        v["path"]
    );
    check!(
        ns,
        header(&v, "X-Captured") == ["yes"],
        "{what}: the HTTPRoute on web:80 did not apply (X-Captured {:?}): the request was not \
         routed by its original destination {WEB_VIP}:80: {v}",
        header(&v, "X-Captured")
    );
    check!(
        ns,
        v["pod"] == "server" && v["namespace"] == "cap",
        "{what}: answered by the wrong workload: {v}"
    );
    check!(
        ns,
        header(&v, "Weft-Orig-Proto").is_empty(),
        "{what}: the server's proxy should remove weft-orig-proto before the app sees it: {v}"
    );
    expect_access_log(
        ns,
        what,
        &[
            ("authority", WEB_VIP),
            ("path", "/hello"),
            ("destination_service", "cap/web"),
            ("route", "cap/web-captured"),
        ],
    );
}

/// Waits (at most 5 s) for a JSON access-log line of the client proxy that has every one of
/// `fields`, and fails the test if none comes.
fn expect_access_log(ns: &Netns, what: &str, fields: &[(&str, &str)]) {
    let matches = |text: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| fields.iter().all(|(k, want)| v[*k] == *want))
    };
    let found = wait_for(ns, CLIENT_PROXY, matches);
    check!(
        ns,
        found,
        "{what}: the client proxy's access log has no line with {fields:?}"
    );
}

/// Check 2: A misleading Host does not change where a captured request goes.
fn check_host_header_ignored(ns: &Netns) {
    let what = "check 2 (Host: nonexistent to 198.18.0.10)";
    let url = format!("http://{WEB_VIP}/");
    let c = curl(ns, &["-H", "Host: nonexistent", &url]);
    let v = echo_answer(ns, what, &c);
    check!(
        ns,
        v["host"] == "nonexistent",
        "{what}: the Host header should reach the app unchanged: {v}"
    );
    check!(
        ns,
        header(&v, "X-Captured") == ["yes"] && v["pod"] == "server",
        "{what}: not routed to Service web by destination: {v}"
    );
    expect_access_log(
        ns,
        what,
        &[
            ("authority", "nonexistent"),
            ("destination_service", "cap/web"),
            ("route", "cap/web-captured"),
        ],
    );
}

/// Sends `payload` on a connection to `to` (from inside the namespace) while reading, and
/// returns what came back once as many bytes arrived (or 5 s passed).
fn tcp_roundtrip(ns: &Netns, to: SocketAddr, payload: &[u8]) -> Result<Vec<u8>, String> {
    ns.within(|| {
        let conn = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(|e| format!("connect {to}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
        let mut reader = conn;
        std::thread::scope(|s| {
            let w = s.spawn(move || writer.write_all(payload));
            let mut got = Vec::with_capacity(payload.len());
            let mut buf = [0u8; 16 * 1024];
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.len() < payload.len() && Instant::now() < deadline {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(format!("read from {to} after {} bytes: {e}", got.len())),
                }
            }
            match w.join() {
                Ok(Ok(())) => Ok(got),
                Ok(Err(e)) => Err(format!("write to {to}: {e}")),
                Err(_) => Err("writer thread panicked".to_string()),
            }
        })
    })
}

/// Check 3: Opaque TCP by VIP (declared `tcp`), and by a second VIP through a TCPRoute.
fn check_opaque_tcp(ns: &Netns) {
    // Not UTF-8, not HTTP, larger than one read: a real byte stream.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for (what, to) in [
        (
            "check 3 (opaque TCP to 198.18.0.10:9090)",
            addr(WEB_VIP, 9090),
        ),
        (
            "check 3b (TCPRoute on 198.18.0.11:7000 to web:9090)",
            addr(OTHER_VIP, 7000),
        ),
    ] {
        let started = Instant::now();
        match tcp_roundtrip(ns, to, &payload) {
            Ok(got) => check!(
                ns,
                got == payload,
                "{what}: sent {} bytes, got {} bytes back{}",
                payload.len(),
                got.len(),
                if got.len() == payload.len() {
                    " (different content)"
                } else {
                    ""
                }
            ),
            Err(e) => fail!(ns, "{what}: {e}"),
        }
        eprintln!(
            "capture: {what}: {} bytes echoed in {:?}",
            payload.len(),
            started.elapsed()
        );
    }
}

/// Check 4: A server-first protocol on an undeclared port: the client sends nothing and must still
/// get the banner quickly.
fn check_server_first_banner(ns: &Netns) {
    let what = "check 4 (server-first banner on undeclared port 198.18.0.10:25)";
    let to = addr(WEB_VIP, 25);
    let result = ns.within(|| -> Result<(Duration, Vec<u8>, Vec<u8>), String> {
        let started = Instant::now();
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(|e| format!("connect {to}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let read_line = |conn: &mut TcpStream| -> Result<Vec<u8>, String> {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"\r\n") {
                if Instant::now() > deadline {
                    return Err(format!(
                        "no full line within 5s (got {:?})",
                        String::from_utf8_lossy(&got)
                    ));
                }
                match conn.read(&mut buf) {
                    Ok(0) => {
                        return Err(format!(
                            "connection closed (got {:?})",
                            String::from_utf8_lossy(&got)
                        ))
                    }
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => {
                        return Err(format!(
                            "read: {e} (got {:?})",
                            String::from_utf8_lossy(&got)
                        ))
                    }
                }
            }
            Ok(got)
        };
        let banner = read_line(&mut conn)?;
        let elapsed = started.elapsed();
        // The connection is a working stream in both directions after detection gave up.
        conn.write_all(b"EHLO mesh\r\n")
            .map_err(|e| format!("write: {e}"))?;
        let echoed = read_line(&mut conn)?;
        Ok((elapsed, banner, echoed))
    });
    let (elapsed, banner, echoed) = result.unwrap_or_else(|e| fail!(ns, "{what}: {e}"));
    eprintln!("capture: banner latency through the proxies: {elapsed:?}");
    check!(
        ns,
        banner == BANNER,
        "{what}: expected {:?}, got {:?}",
        String::from_utf8_lossy(BANNER),
        String::from_utf8_lossy(&banner)
    );
    check!(
        ns,
        elapsed < Duration::from_secs(2),
        "{what}: the banner took {elapsed:?} (must be < 2s: detection must give up quickly)"
    );
    check!(
        ns,
        echoed == b"EHLO mesh\r\n",
        "{what}: after the banner, the stream did not echo: got {:?}",
        String::from_utf8_lossy(&echoed)
    );
}

/// Waits (at most 5 s) until the log of process `name` satisfies `pred`.
fn wait_for(ns: &Netns, name: &str, pred: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = ns.proc(name).map(|p| p.log_text()).unwrap_or_default();
        if pred(&log) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Check 5: Captured connections to no Service (and to a VIP's undeclared port) are refused.
fn check_unknown_destinations_refused(ns: &Netns) {
    for (what, dst) in [
        (
            "check 5 (198.18.0.99:80 is no Service)",
            addr(NOT_A_SERVICE, 80),
        ),
        (
            "check 5b (198.18.0.10:81: web has no port 81)",
            addr(WEB_VIP, 81),
        ),
    ] {
        let url = format!("http://{dst}/");
        let c = curl(ns, &[&url]);
        check!(
            ns,
            c.exit != Some(0) && c.status == 0,
            "{what}: expected the connection to be refused, got curl exit {:?}, HTTP {}: {}",
            c.exit,
            c.status,
            c.body
        );
        let needle = format!(
            "refusing connection: {dst} is neither a Service VIP and port nor a workload address in the mesh"
        );
        check!(
            ns,
            wait_for(ns, CLIENT_PROXY, |log| log.contains(&needle)),
            "{what}: curl failed ({}), but the client proxy's log has no line {needle:?}",
            c.stderr.trim()
        );
        eprintln!("capture: {what}: refused (curl: {})", c.stderr.trim());
    }
}

/// Sum of the samples of `metric` whose labels contain every one of `labels`.
fn metric_sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            (name == metric && labels.iter().all(|want| series.contains(want)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// `GET /metrics` from a proxy's admin address, with curl inside the namespace.
fn metrics(ns: &Netns, what: &str, ip: &str) -> String {
    let url = format!("http://{}/metrics", addr(ip, 4191));
    let c = curl(ns, &[&url]);
    check!(
        ns,
        c.exit == Some(0) && c.status == 200,
        "{what}: GET {url} gave curl exit {:?}, HTTP {}: {}",
        c.exit,
        c.status,
        c.stderr
    );
    c.body
}

/// Check 6: The client proxy counted the detection timeout and the TCP connections; the server's
/// proxy saw the same traffic arrive on its inbound side (so it crossed the mesh transport).
fn check_client_metrics(ns: &Netns) {
    let what = "check 6 (client proxy /metrics)";
    let m = &metrics(ns, what, CLIENT_IP);
    let timeouts = metric_sum(
        m,
        "weft_protocol_detections_total",
        &[r#"protocol="timeout""#],
    );
    check!(
        ns,
        timeouts >= 1.0,
        "{what}: weft_protocol_detections_total{{protocol=\"timeout\"}} is {timeouts}, expected >= 1 \
         (the banner connection on port 25):\n{m}"
    );
    let opened = metric_sum(m, "weft_tcp_connections_opened_total", &[]);
    check!(
        ns,
        opened >= 1.0,
        "{what}: weft_tcp_connections_opened_total is {opened}, expected >= 1:\n{m}"
    );
    let unknown = metric_sum(
        m,
        "weft_proxy_errors_total",
        &[r#"reason="unknown-destination""#],
    );
    check!(
        ns,
        unknown >= 2.0,
        "{what}: weft_proxy_errors_total{{reason=\"unknown-destination\"}} is {unknown}, expected >= 2 \
         (the two refused connections of check 5):\n{m}"
    );
    let web_requests = metric_sum(
        m,
        "weft_requests_total",
        &[
            r#"direction="outbound""#,
            r#"destination_service="#,
            "web",
            r#"response_code="200""#,
        ],
    );
    check!(
        ns,
        web_requests >= 2.0,
        "{what}: weft_requests_total for web with 200 is {web_requests}, expected >= 2 (checks 1 and 2):\n{m}"
    );
    eprintln!(
        "capture: {what}: detections timeout={timeouts}, tcp opened={opened}, \
         unknown-destination={unknown}, web requests={web_requests}"
    );

    let what = "check 6b (server proxy /metrics)";
    let m = &metrics(ns, what, SERVER_IP);
    let inbound_requests = metric_sum(
        m,
        "weft_requests_total",
        &[r#"direction="inbound""#, r#"response_code="200""#],
    );
    check!(
        ns,
        inbound_requests >= 2.0,
        "{what}: inbound weft_requests_total with 200 is {inbound_requests}, expected >= 2 \
         (checks 1 and 2 arrive through the server's proxy):\n{m}"
    );
    let inbound_tcp = metric_sum(
        m,
        "weft_tcp_connections_opened_total",
        &[r#"direction="inbound""#],
    );
    check!(
        ns,
        inbound_tcp >= 3.0,
        "{what}: inbound weft_tcp_connections_opened_total is {inbound_tcp}, expected >= 3 \
         (checks 3, 3b and 4 arrive through the server's proxy):\n{m}"
    );
    eprintln!(
        "capture: {what}: inbound requests={inbound_requests}, inbound tcp opened={inbound_tcp}"
    );
}
