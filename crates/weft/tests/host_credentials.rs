//! Host credentials against a real etcd (Debian's `etcd-server`) on loopback: `weft host join`
//! keeps a credential that registers, renews and deregisters the host's own workloads through
//! any replica, and does nothing else; a forged, unknown or superseded credential is refused,
//! saying why, and logged; joining again rotates it without breaking the workloads running.
//!
//! Needs etcd (installed with apt-get when running as root); without it the test prints a
//! loud SKIPPED line, and fails under CI=true.

mod etcd_support;
mod netns;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use support::{send, wait_ready};

use etcd_support::replica::{eventually, Replica};

/// Loopback block of this test's processes (127.0.<BLOCK>.x).
const BLOCK: u8 = 89;

/// `weft host join NAME ARGS` through `replica`, keeping the host's files in `dir/host-NAME`:
/// exit success and output.
fn join(dir: &Path, replica: &Replica, name: &str, args: &[&str]) -> (bool, String) {
    let state = dir.join(format!("host-{name}")).display().to_string();
    let mut all = vec!["host", "join", name, "--state-dir", &state];
    all.extend_from_slice(args);
    let (ok, out, err) = replica.weft(&all);
    (ok, out + &err)
}

fn credential(dir: &Path, host: &str) -> String {
    std::fs::read_to_string(dir.join(format!("host-{host}/host-credential")))
        .expect("host credential")
        .trim()
        .to_string()
}

/// `method /workloads/default/NAME` on `replica` as `bearer`; for a PUT, a registration at
/// `address` naming `host` (when given). The status and body.
async fn workload(
    replica: &Replica,
    bearer: &str,
    method: Method,
    name: &str,
    host: Option<&str>,
    address: &str,
) -> (u16, String) {
    let mut body = serde_json::json!({
        "service": "web",
        "address": address,
        "ports": [8080],
        "owner": "credential-test",
        "ttlSeconds": 30,
    });
    if let Some(host) = host {
        body["host"] = serde_json::Value::from(host);
    }
    let body = if method == Method::PUT {
        Bytes::from(body.to_string())
    } else {
        Bytes::new()
    };
    let req = Request::builder()
        .method(method)
        .uri(format!("/workloads/default/{name}"))
        .header("host", "admin")
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    send(replica.admin, req, false)
        .await
        .map(|a| {
            (
                a.status.as_u16(),
                String::from_utf8_lossy(&a.body).into_owned(),
            )
        })
        .unwrap_or_default()
}

/// `POST path` with `bearer` and `body`: the status.
async fn post_as(replica: &Replica, path: &str, bearer: &str, body: &str) -> u16 {
    let req = Request::post(path)
        .header("host", "admin")
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    send(replica.admin, req, false)
        .await
        .map(|a| a.status.as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_credential_changes_its_own_hosts_workloads_and_nothing_else() {
    let Some(dir) = etcd_support::test_dir("the host credential tests", "weft-host-credentials")
    else {
        return;
    };
    let etcd = etcd_support::Etcd::start(&format!("127.0.{BLOCK}.100"), &dir);
    let mut a = Replica::start(&dir, BLOCK, 1, &etcd.client_url);
    let mut b = Replica::start(&dir, BLOCK, 2, &etcd.client_url);
    wait_ready(a.admin, &mut a.proc).await;
    wait_ready(b.admin, &mut b.proc).await;

    // A join keeps the host's record (with the control plane it joined) and its credential,
    // readable by its owner only.
    let (ok, out) = join(&dir, &a, "h1", &[]);
    assert!(ok && out.contains("block 10.213.1.0/24"), "{out}");
    let grpc = format!("127.0.{BLOCK}.1:4180,127.0.{BLOCK}.2:4180");
    let (ok, out) = join(&dir, &b, "h2", &["--control-grpc", &grpc]);
    assert!(ok && out.contains("block 10.213.2.0/24"), "{out}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("host-h1/host.json")).expect("host.json"),
    )
    .expect("json");
    assert_eq!(record["controlAdmin"], a.admin.to_string());
    assert_eq!(record["controlGrpc"], format!("127.0.{BLOCK}.1:4180"));
    let record = std::fs::read_to_string(dir.join("host-h2/host.json")).expect("host.json");
    assert!(record.contains(&grpc), "{record}");
    let (h1, h2) = (credential(&dir, "h1"), credential(&dir, "h2"));
    assert!(
        h1.starts_with("host.h1.") && h2.starts_with("host.h2."),
        "{h1} {h2}"
    );
    let mode = std::fs::metadata(dir.join("host-h1/host-credential"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // h1's credential registers a workload of h1, through either replica; the registration
    // names h1 though it named no host.
    let (code, body) = workload(&b, &h1, Method::PUT, "web-1", None, "10.213.1.5").await;
    assert_eq!(code, 200, "{body}");
    let stored = etcd.ctl(&["get", "/weft/workloads/default/web-1", "--print-value-only"]);
    assert!(
        stored
            .as_deref()
            .is_ok_and(|v| v.contains("\"host\":\"h1\"")),
        "{stored:?}"
    );
    let (code, body) = workload(&a, &h1, Method::PUT, "web-1", None, "10.213.1.5").await;
    assert_eq!(code, 200, "a renewal through the other replica: {body}");

    // Not as another host, not outside its block.
    let (code, body) = workload(&a, &h1, Method::PUT, "web-2", Some("h2"), "10.213.2.5").await;
    assert!(
        code == 403 && body.contains("only its own"),
        "{code} {body}"
    );
    let (code, body) = workload(&a, &h1, Method::PUT, "web-3", None, "10.213.2.6").await;
    assert!(
        code == 409 && body.contains("outside host h1's block"),
        "{code} {body}"
    );

    // Another host's workload, and the admin's (on no host): h1 can neither take nor remove
    // them, even knowing their owner.
    let (code, body) = workload(&a, &h2, Method::PUT, "web-4", None, "10.213.2.7").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = workload(&a, &h1, Method::PUT, "web-4", None, "10.213.1.7").await;
    assert!(code == 403 && body.contains("host h2's"), "{code} {body}");
    let (code, body) = workload(&b, &h1, Method::DELETE, "web-4", None, "").await;
    assert!(code == 403 && body.contains("host h2's"), "{code} {body}");
    let (code, body) = workload(&a, &a.token(), Method::PUT, "web-5", None, "127.0.89.20").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = workload(&a, &h1, Method::DELETE, "web-5", None, "").await;
    assert!(
        code == 403 && body.contains("no joined host"),
        "{code} {body}"
    );
    // Its own, it removes.
    let (code, body) = workload(&a, &h2, Method::DELETE, "web-4", None, "").await;
    assert_eq!(code, 200, "{body}");

    // Forged, or for a host that never joined: 401, saying why.
    let mut forged = h1.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    let (code, body) = workload(&a, &forged, Method::PUT, "web-1", None, "10.213.1.5").await;
    assert!(
        code == 401 && body.contains("not its current one"),
        "{code} {body}"
    );
    let stranger = format!("host.h9.{}", "ab".repeat(32));
    let (code, body) = workload(&a, &stranger, Method::PUT, "web-9", None, "10.213.9.5").await;
    assert!(
        code == 401 && body.contains("has not joined"),
        "{code} {body}"
    );

    // The credential is not the admin token: no resources, host tokens, joins or listings.
    assert_eq!(
        post_as(&a, "/resources", &h1, r#"{"files": []}"#).await,
        401
    );
    assert_eq!(post_as(&a, "/host-tokens/h3", &h1, "").await, 401);
    assert_eq!(post_as(&a, "/host-records/h3", &h1, "").await, 401);
    assert_eq!(post_as(&a, "/ca/rotate", &h1, "").await, 401);

    // Joining again rotates the credential; the one before stays valid until the next join,
    // so workloads started with it keep renewing.
    let (ok, out) = join(&dir, &b, "h1", &[]);
    assert!(ok, "{out}");
    let h1_second = credential(&dir, "h1");
    assert_ne!(h1, h1_second);
    for (which, cred) in [("previous", &h1), ("current", &h1_second)] {
        let (code, body) = workload(&a, cred, Method::PUT, "web-1", None, "10.213.1.5").await;
        assert_eq!(code, 200, "the {which} credential: {body}");
    }
    let (ok, out) = join(&dir, &a, "h1", &[]);
    assert!(ok, "{out}");
    let (code, body) = workload(&a, &h1, Method::PUT, "web-1", None, "10.213.1.5").await;
    assert!(
        code == 401 && body.contains("not its current one"),
        "{code} {body}"
    );
    let (code, body) = workload(&a, &h1_second, Method::PUT, "web-1", None, "10.213.1.5").await;
    assert_eq!(code, 200, "{body}");

    // Refusals are logged where they happened.
    eventually(
        Duration::from_secs(5),
        "refusals in replica A's log",
        || {
            let log = std::fs::read_to_string(&a.proc.log).unwrap_or_default();
            async move {
                log.contains("refused a host credential")
                    && log.contains("refused a host's change to a workload")
            }
        },
    )
    .await;

    let _ = std::fs::remove_dir_all(&dir);
}
