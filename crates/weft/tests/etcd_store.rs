//! The replicated store, against a real etcd (Debian's `etcd-server`) on loopback: two
//! `weft control --store etcd` replicas share what `weft apply` writes through either, refuse
//! an invalid change whole with file:line errors, keep serving when a resource written by hand
//! into etcd fails validation, keep registrations as etcd leases that outlive a replica, and
//! redeem join tokens any replica minted.
//!
//! Needs etcd (installed with apt-get when running as root); without it the test prints a
//! loud SKIPPED line, and fails under CI=true.

mod etcd_support;
mod netns;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_support::replica::{eventually, post, seal_key, Replica};
use http::Request;
use http_body_util::Full;
use support::{admin_get, admin_get_as, proxy_args, send, wait_ready, Proc, WEFT};

/// Loopback block of this test's processes (127.0.<BLOCK>.x).
const BLOCK: u8 = 87;

const MESH: &str = "apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo-route, namespace: default}
spec:
  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]
  rules:
    - backendRefs: [{name: echo, port: 80}]
";

/// A route to a Service nobody declared, on line 7 of its file.
const BAD: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: default}
spec:
  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]
  rules:
    - backendRefs: [{name: nowhere, port: 80}]
";

/// The trust bundle a replica serves (PEM).
async fn bundle(replica: &Replica) -> String {
    admin_get(replica.admin, "/ca/bundle.pem")
        .await
        .map(|(_, b)| b)
        .unwrap_or_default()
}

fn roots(pem: &str) -> usize {
    pem.matches("BEGIN CERTIFICATE").count()
}

fn count(status: &serde_json::Value, kind: &str) -> u64 {
    status["counts"][kind].as_u64().unwrap_or(0)
}

async fn register(replica: &Replica, name: &str, ttl: u64) -> u16 {
    let body = serde_json::json!({
        "service": "echo",
        "address": format!("127.0.{BLOCK}.20"),
        "ports": [8080],
        "owner": "test-runner",
        "ttlSeconds": ttl,
    });
    let req = Request::put(format!("/workloads/default/{name}"))
        .header("host", "admin")
        .header("authorization", format!("Bearer {}", replica.token()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    send(replica.admin, req, false)
        .await
        .map(|a| a.status.as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_resources_and_registrations_through_etcd() {
    let Some(dir) = etcd_support::test_dir("the etcd store tests", "weft-etcd-store") else {
        return;
    };
    let etcd = etcd_support::Etcd::start(&format!("127.0.{BLOCK}.100"), &dir);
    let mut a = Replica::start(&dir, BLOCK, 1, &etcd.client_url);
    // B is given a member that is down first: it dials the next one.
    let b = Replica::start(
        &dir,
        BLOCK,
        2,
        &format!("http://127.0.{BLOCK}.99:2379,{}", etcd.client_url),
    );
    wait_ready(a.admin, &mut a.proc).await;
    let mut b = b;
    wait_ready(b.admin, &mut b.proc).await;

    // One CA, shared through etcd with its key sealed: both serve the same root, which is
    // nowhere in etcd in the clear.
    let root = bundle(&a).await;
    assert_eq!(roots(&root), 1, "{root}");
    assert_eq!(bundle(&b).await, root);
    assert_eq!(a.status().await["ca"], "shared through etcd (key sealed)");
    let stored = etcd
        .ctl(&["get", "/weft/ca/authority", "--print-value-only"])
        .expect("etcdctl get");
    assert!(
        stored.contains("sealedKey") && !stored.contains("PRIVATE KEY"),
        "{stored}"
    );
    // A replica given another seal key refuses to start, and says which keys differ.
    let other = seal_key(&dir, "other-seal.key");
    let mut wrong =
        Replica::start_with(&dir, BLOCK, 7, &etcd.client_url, &["--ca-seal-key", &other]);
    let exited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(Some(status)) = wrong.proc.child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a replica with the wrong seal key kept running");
    assert!(!exited.success());
    assert!(
        wrong.proc.log_tail().contains("sealed with key"),
        "{}",
        wrong.proc.log_tail()
    );

    // Applied through A, served by B.
    std::fs::write(dir.join("mesh.yaml"), MESH).expect("write");
    let mesh = dir.join("mesh.yaml").display().to_string();
    let (ok, out, err) = a.weft(&["apply", "-f", &mesh]);
    assert!(ok, "apply failed: {out}{err}\n{}", a.proc.log_tail());
    assert!(out.contains("Service default/echo created"), "{out}");
    assert!(
        out.contains("HTTPRoute default/echo-route created"),
        "{out}"
    );
    eventually(
        Duration::from_secs(10),
        "B serves the applied Service",
        || async {
            count(&b.status().await, "Service") == 1 && count(&b.status().await, "HTTPRoute") == 1
        },
    )
    .await;
    let (ok, out, _) = b.weft(&["apply", "-f", &mesh]);
    assert!(ok && out.contains("unchanged"), "{out}");

    // An invalid change: refused whole, with its file and line; nothing written.
    std::fs::write(dir.join("bad.yaml"), BAD).expect("write");
    let bad = dir.join("bad.yaml").display().to_string();
    let before = etcd.keys("/weft/resources/");
    let (ok, _, err) = a.weft(&["apply", "-f", &bad]);
    assert!(!ok, "an invalid change was accepted");
    assert!(err.contains(&format!("{bad}:7")), "no file:line in: {err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(etcd.keys("/weft/resources/"), before);
    let (ok, _, err) = a.weft(&["apply", "--dry-run", "-f", &mesh]);
    assert!(ok, "{err}");

    // A resource written into etcd by hand that fails validation: refused and reported; the
    // mesh keeps serving the last valid model, and takes changes again once it is gone.
    let generation = b.status().await["generation"].as_u64().unwrap_or(0);
    etcd.ctl(&[
        "put",
        "/weft/resources/HTTPRoute/default/by-hand",
        "kind: [unclosed",
    ])
    .expect("etcdctl put");
    eventually(
        Duration::from_secs(10),
        "B reports the hand-written key",
        || async {
            let s = b.status().await;
            s["rejected"]
                .to_string()
                .contains("etcd:/weft/resources/HTTPRoute/default/by-hand")
        },
    )
    .await;
    let s = b.status().await;
    assert_eq!(s["generation"].as_u64(), Some(generation), "{s}");
    assert_eq!(count(&s, "HTTPRoute"), 1, "{s}");
    etcd.ctl(&["del", "/weft/resources/HTTPRoute/default/by-hand"])
        .expect("etcdctl del");
    eventually(Duration::from_secs(10), "B takes changes again", || async {
        b.status().await["rejected"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;

    // Deleted through B: gone from A. A Service a route still uses cannot be deleted.
    let (ok, _, err) = b.weft(&["delete", "service/echo"]);
    assert!(!ok && err.contains("invalid"), "{err}");
    let (ok, out, err) = b.weft(&["delete", "httproute/echo-route"]);
    assert!(ok, "{out}{err}");
    eventually(
        Duration::from_secs(10),
        "A no longer serves the route",
        || async { count(&a.status().await, "HTTPRoute") == 0 },
    )
    .await;

    // A registration made through A is a lease in etcd: B sees it, A's restart keeps it,
    // and it ends when nobody renews it.
    assert_eq!(register(&a, "lease-1", 4).await, 200);
    eventually(
        Duration::from_secs(10),
        "B lists the registration",
        || async { b.workloads().await.contains("lease-1") },
    )
    .await;
    assert!(!etcd.keys("/weft/workloads/").is_empty());
    let _ = a.proc.child.kill();
    let _ = a.proc.child.wait();
    let args = a.args.clone();
    a.proc = Proc::spawn("control-1-again", &args, &dir);
    wait_ready(a.admin, &mut a.proc).await;
    assert!(a.workloads().await.contains("lease-1"), "lost at restart");
    // Renewed through B (any replica keeps the lease alive).
    assert_eq!(register(&b, "lease-1", 4).await, 200);
    eventually(
        Duration::from_secs(15),
        "the unrenewed lease ends",
        || async {
            !b.workloads().await.contains("lease-1") && !a.workloads().await.contains("lease-1")
        },
    )
    .await;

    // A join token minted through A is redeemed by B, once.
    std::fs::write(dir.join("workload.yaml"), WORKLOAD).expect("write");
    let (ok, out, err) = a.weft(&[
        "apply",
        "-f",
        &dir.join("workload.yaml").display().to_string(),
    ]);
    assert!(ok, "{out}{err}");
    let (ok, token, err) = a.weft(&["token", "create", "--workload", "joiner"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    assert_eq!(etcd.keys("/weft/tokens/").len(), 1);
    eventually(Duration::from_secs(10), "B serves the workload", || async {
        count(&b.status().await, "WorkloadEntry") == 1
    })
    .await;
    // Given both replicas, B first.
    let both = format!("{},{}", b.grpc(), a.grpc());
    let mut joined = proxy(&dir, &both, &b, &token, 30);
    wait_ready(
        format!("127.0.{BLOCK}.30:4191").parse().expect("addr"),
        &mut joined,
    )
    .await;
    let mut again = proxy(&dir, &a.grpc(), &a, &token, 31);
    let refused = Instant::now() + Duration::from_secs(10);
    while Instant::now() < refused && !again.log_tail().contains("already used") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        again.log_tail().contains("already used"),
        "a spent token was accepted: {}",
        again.log_tail()
    );
    let _ = again.child.kill();

    // B dies: the proxy moves to A, and holds A's next change.
    let _ = b.proc.child.kill();
    let _ = b.proc.child.wait();
    std::fs::write(dir.join("later.yaml"), LATER).expect("write");
    let (ok, out, err) = a.weft(&["apply", "-f", &dir.join("later.yaml").display().to_string()]);
    assert!(ok, "{out}{err}");
    eventually(
        Duration::from_secs(20),
        "the proxy is connected to A and holds its latest configuration",
        || async {
            let (_, body) = admin_get_as(a.admin, "/proxies", Some(&a.token()))
                .await
                .unwrap_or_default();
            let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            list["proxies"].as_array().is_some_and(|ps| {
                ps.iter().any(|p| {
                    p["node"] == "default/joiner" && p["connected"] == true && p["current"] == true
                })
            })
        },
    )
    .await;
    assert!(
        joined
            .log_tail()
            .lines()
            .any(|l| l.contains("connected to the control plane") && l.contains(&a.grpc())),
        "{}",
        joined.log_tail()
    );
    assert!(admin_get(
        format!("127.0.{BLOCK}.30:4191").parse().expect("addr"),
        "/ready"
    )
    .await
    .is_ok_and(|(code, _)| code == 200));
    let _ = joined.child.kill();
}

/// A Service applied after B is gone.
const LATER: &str = "apiVersion: v1
kind: Service
metadata: {name: later, namespace: default}
spec:
  selector: {app: later}
  ports: [{name: http, port: 80, targetPort: 8080}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_reach_etcd_over_tls_with_a_client_certificate() {
    let Some(dir) = etcd_support::test_dir("the etcd store tests", "weft-etcd-tls") else {
        return;
    };
    let ip = format!("127.0.{BLOCK}.101");
    let tls = etcd_support::TlsFiles::make(&dir.join("tls"), &ip);
    let etcd = etcd_support::Etcd::start_tls(&ip, &dir, &tls);
    let show = |p: &PathBuf| p.display().to_string();
    let (ca, cert, key) = (show(&tls.ca), show(&tls.client_cert), show(&tls.client_key));

    // Without a client certificate etcd refuses the replica, which says so and keeps trying.
    let mut refused = Replica::start_with(&dir, BLOCK, 6, &etcd.client_url, &["--etcd-ca", &ca]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !refused.proc.log_tail().contains("cannot read etcd yet") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused.proc.log_tail().contains("cannot read etcd yet"),
        "no complaint from a replica without a client certificate: {}",
        refused.proc.log_tail()
    );
    let _ = refused.proc.child.kill();

    // With one, through a first member that is down, it serves and writes.
    let endpoints = format!("https://127.0.{BLOCK}.102:2379,{}", etcd.client_url);
    let mut r = Replica::start_with(
        &dir,
        BLOCK,
        5,
        &endpoints,
        &["--etcd-ca", &ca, "--etcd-cert", &cert, "--etcd-key", &key],
    );
    wait_ready(r.admin, &mut r.proc).await;
    std::fs::write(dir.join("mesh.yaml"), MESH).expect("write");
    let (ok, out, err) = r.weft(&["apply", "-f", &dir.join("mesh.yaml").display().to_string()]);
    assert!(
        ok,
        "apply over TLS failed: {out}{err}\n{}",
        r.proc.log_tail()
    );
    assert!(out.contains("Service default/echo created"), "{out}");
    assert!(
        etcd.keys("/weft/resources/")
            .iter()
            .any(|k| k.ends_with("Service/default/echo")),
        "{:?}",
        etcd.keys("/weft/")
    );
    eventually(
        Duration::from_secs(10),
        "the replica serves what it wrote",
        || async { count(&r.status().await, "Service") == 1 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elected_replica_finishes_a_rotation_and_another_takes_over() {
    let Some(dir) = etcd_support::test_dir("the etcd store tests", "weft-etcd-elect") else {
        return;
    };
    let etcd = etcd_support::Etcd::start(&format!("127.0.{BLOCK}.103"), &dir);
    // Certificates of 3 s: a rotation may be finished 6 s after it started.
    let short = ["--cert-ttl", "3s"];
    let mut x = Replica::start_with(&dir, BLOCK, 8, &etcd.client_url, &short);
    let mut y = Replica::start_with(&dir, BLOCK, 9, &etcd.client_url, &short);
    wait_ready(x.admin, &mut x.proc).await;
    wait_ready(y.admin, &mut y.proc).await;

    let singleton = |s: serde_json::Value| s["singleton"].as_bool() == Some(true);
    eventually(
        Duration::from_secs(20),
        "one replica is elected",
        || async { singleton(x.status().await) != singleton(y.status().await) },
    )
    .await;
    let (leader, other) = if singleton(x.status().await) {
        (&mut x, &mut y)
    } else {
        (&mut y, &mut x)
    };

    // A rotation started through the replica that is not elected reaches both...
    let before = bundle(other).await;
    let (code, body) = post(other, "/ca/rotate").await;
    assert_eq!(code, 200, "{body}");
    eventually(Duration::from_secs(10), "both trust both roots", || async {
        roots(&bundle(leader).await) == 2 && roots(&bundle(other).await) == 2
    })
    .await;
    // ...and the elected one finishes it once the old certificates have expired.
    eventually(
        Duration::from_secs(30),
        "the rotation is finished",
        || async {
            let (l, o) = (bundle(leader).await, bundle(other).await);
            roots(&l) == 1 && l == o && l != before
        },
    )
    .await;

    // The term outlived many etcd request timeouts (5 s) without a step down: the lease's
    // renewals do not ride one long-lived stream that the timeout would cut.
    for r in [&*leader, &*other] {
        let log = std::fs::read_to_string(&r.proc.log).unwrap_or_default();
        assert!(
            !log.contains("stepping down") && !log.contains("singleton election: trying again"),
            "{log}"
        );
    }

    // The elected replica dies: the other is elected within the campaign lease's TTL.
    let _ = leader.proc.child.kill();
    let _ = leader.proc.child.wait();
    eventually(
        Duration::from_secs(25),
        "the other replica is elected",
        || async { singleton(other.status().await) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_join_through_any_replica_and_get_blocks_of_their_own() {
    let Some(dir) = etcd_support::test_dir("the etcd store tests", "weft-etcd-hosts") else {
        return;
    };
    let etcd = etcd_support::Etcd::start(&format!("127.0.{BLOCK}.104"), &dir);
    let mut a = Replica::start(&dir, BLOCK, 10, &etcd.client_url);
    let mut b = Replica::start(&dir, BLOCK, 11, &etcd.client_url);
    wait_ready(a.admin, &mut a.proc).await;
    wait_ready(b.admin, &mut b.proc).await;

    // Each host's record goes to a directory of the test's, never to /var/lib/weft (where it
    // would make this machine a joined host).
    let join = |r: &Replica, args: &[&str]| {
        let state = dir.join(format!("host-{}", args[0])).display().to_string();
        let mut all = vec!["host", "join"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state-dir", &state]);
        r.weft(&all)
    };
    let (ok, out, err) = join(&a, &["h1", "--address", "192.0.2.1"]);
    assert!(
        ok && out.contains("host h1 holds block 10.213.1.0/24"),
        "{out}{err}"
    );
    let (ok, out, err) = join(&b, &["h2"]);
    assert!(ok && out.contains("block 10.213.2.0/24"), "{out}{err}");
    // Joining again, through the other replica: the same block.
    let (ok, out, err) = join(&b, &["h1"]);
    assert!(ok && out.contains("block 10.213.1.0/24"), "{out}{err}");

    // Refused: another host's block, a second block, the default bridge's, outside the range,
    // a name that is not one.
    let (ok, _, err) = join(&a, &["h3", "--block", "10.213.1.0/24"]);
    assert!(!ok && err.contains("belongs to host h1"), "{err}");
    let (ok, _, err) = join(&a, &["h1", "--block", "10.213.9.0/24"]);
    assert!(
        !ok && err.contains("already holds block 10.213.1.0/24"),
        "{err}"
    );
    let (ok, _, err) = join(&a, &["h4", "--block", "10.213.0.0/24"]);
    assert!(!ok && err.contains("default bridge"), "{err}");
    let (ok, _, err) = join(&a, &["h4", "--block", "10.9.0.0/24"]);
    assert!(!ok && err.contains("outside"), "{err}");
    let (ok, _, err) = join(&a, &["Not_A_Host"]);
    assert!(!ok && err.contains("host name"), "{err}");

    // Two hosts joining at the same moment through two replicas get two blocks.
    let (ra, rb) = (&a, &b);
    let (x, y) = std::thread::scope(|s| {
        let x = s.spawn(|| join(ra, &["h5"]));
        let y = s.spawn(|| join(rb, &["h6"]));
        (x.join().expect("h5"), y.join().expect("h6"))
    });
    assert!(x.0 && y.0, "{x:?} {y:?}");
    let block = |out: &str| {
        out.rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_ne!(block(&x.1), block(&y.1), "{x:?} {y:?}");

    let (ok, out, err) = a.weft(&["host", "list"]);
    assert!(ok, "{err}");
    for host in ["h1", "h2", "h5", "h6"] {
        assert!(out.contains(host), "{out}");
    }
    assert!(out.contains("192.0.2.1"), "{out}");
    assert_eq!(
        etcd.keys("/weft/blocks/").len(),
        4,
        "{:?}",
        etcd.keys("/weft/")
    );

    // A host without the admin token joins with a single-use join token for its name.
    let (ok, token, err) = a.weft(&["host", "token", "h7"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let with_token = |name: &str, token: &str| {
        let out = Command::new(WEFT)
            .args(["host", "join", name, "--token", token])
            .args([
                "--state-dir",
                &dir.join(format!("host-{name}")).display().to_string(),
            ])
            .args(["--control", &b.admin.to_string()])
            .args(["--admin-token-file", "/nonexistent/admin-token"])
            .output()
            .expect("weft host join");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = with_token("h7", &token);
    assert!(ok && out.contains("host h7 holds block"), "{out}");
    assert!(dir.join("host-h7/host.json").exists());
    // Used, forged, another host's: refused, and why.
    let (ok, out) = with_token("h7", &token);
    assert!(!ok && out.contains("already used"), "{out}");
    let (ok, out) = with_token("h8", "0123456789ab.not-a-secret");
    assert!(!ok && out.contains("unknown"), "{out}");
    let (_, other, _) = a.weft(&["host", "token", "h8"]);
    let (ok, out) = with_token("h9", other.trim());
    assert!(!ok && out.contains("h8"), "{out}");
    let (ok, out) = with_token("h8", &format!("{}x", other.trim()));
    assert!(!ok && out.contains("forged"), "{out}");
    // A join token admits a join only: not a listing, nor another token.
    let anonymous = Request::get("/host-records")
        .header("host", "admin")
        .header("authorization", format!("Bearer {}", other.trim()))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let listed = send(a.admin, anonymous, false).await.expect("admin");
    assert_eq!(listed.status, 401);

    // A workload of a joined host registers with an address of that host's block only.
    let put = |name: &str, host: &str, address: &str| {
        let body = serde_json::json!({
            "service": "web",
            "address": address,
            "ports": [8080],
            "owner": "hosts-test",
            "ttlSeconds": 30,
            "host": host,
        });
        Request::put(format!("/workloads/default/{name}"))
            .header("host", "admin")
            .header("authorization", format!("Bearer {}", b.token()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request")
    };
    let a1 = send(b.admin, put("web-1", "h1", "10.213.1.5"), false)
        .await
        .expect("admin");
    assert_eq!(a1.status, 200, "{}", String::from_utf8_lossy(&a1.body));
    let a2 = send(b.admin, put("web-2", "h1", "10.213.2.5"), false)
        .await
        .expect("admin");
    let body = String::from_utf8_lossy(&a2.body).into_owned();
    assert_eq!(a2.status, 409, "{body}");
    assert!(
        body.contains("outside host h1's block 10.213.1.0/24"),
        "{body}"
    );
    let a3 = send(b.admin, put("web-3", "nobody", "10.213.3.5"), false)
        .await
        .expect("admin");
    let body = String::from_utf8_lossy(&a3.body).into_owned();
    assert!(
        a3.status == 409 && body.contains("has not joined"),
        "{body}"
    );
    // The replica lists registrations from its etcd watch, which may trail the write.
    eventually(Duration::from_secs(10), "B lists web-1", || async {
        b.workloads().await.contains("web-1")
    })
    .await;
    let listed = b.workloads().await;
    assert!(!listed.contains("web-2"), "{listed}");
}

/// The workload the join-token check gets a certificate for.
const WORKLOAD: &str = "apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: joiner, namespace: default}
spec: {address: 127.0.87.30, labels: {app: echo}, serviceAccount: echo}
";

/// A proxy for `joiner` at 127.0.BLOCK.host, given the control plane(s) `control`, trusting
/// `replica`'s bundle, joining with `token`.
fn proxy(dir: &Path, control: &str, replica: &Replica, token: &str, host: u8) -> Proc {
    let ip = format!("127.0.{BLOCK}.{host}");
    let ca = replica.state.join("ca/bundle.pem");
    let args = proxy_args(&ip, control, &ca, "joiner", token);
    Proc::spawn(&format!("proxy-{host}"), &args, dir)
}
