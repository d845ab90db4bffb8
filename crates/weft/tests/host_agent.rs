//! `weft host agent` on loopback: it serves the host's tunnel and keeps the host's
//! control-plane replica running. Killed, the replica is started again (same arguments and
//! state) and answers again; a stop signal to the agent stops the replica too.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{admin_get, wait_listening, Proc};

const BLOCK: u8 = 70;

/// The pid of a child of `parent` whose command line contains `needle`.
fn child_with(parent: u32, needle: &str) -> Option<u32> {
    support::child_of(parent, |_, cmdline| cmdline.contains(needle))
}

async fn ready(admin: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if matches!(admin_get(admin, "/ready").await, Ok((200, _))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_serves_the_tunnel_and_starts_a_dead_replica_again() {
    let dir = std::env::temp_dir().join(format!("weft-host-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (state, config, replica_state) =
        (dir.join("host"), dir.join("config"), dir.join("replica"));
    for d in [&state, &config] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(
        state.join("host.json"),
        format!("{{\"name\": \"h1\", \"block\": \"127.0.{BLOCK}.0/24\"}}"),
    )
    .expect("host.json");
    let admin: SocketAddr = format!("127.0.{BLOCK}.9:4181").parse().expect("addr");
    let tunnel: SocketAddr = format!("127.0.{BLOCK}.200:4108").parse().expect("addr");
    let args: Vec<String> = [
        "host",
        "agent",
        "--state-dir",
        &state.display().to_string(),
        "--listen",
        &tunnel.to_string(),
        "--replica-admin",
        &admin.to_string(),
        "--",
        "--config-dir",
        &config.display().to_string(),
        "--state-dir",
        &replica_state.display().to_string(),
        "--grpc-addr",
        &format!("127.0.{BLOCK}.9:4180"),
        "--admin-addr",
        &admin.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = Proc::spawn("agent", &args, &dir);
    assert!(
        ready(admin, Duration::from_secs(20)).await,
        "{}",
        agent.log_tail()
    );
    wait_listening(tunnel).await;

    // The replica dies: the agent starts it again.
    let replica = child_with(agent.child.id(), "control").expect("the replica process");
    // SAFETY: kill(2) on a process this test's child started.
    unsafe { libc::kill(replica as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut again = None;
    while Instant::now() < deadline {
        again = child_with(agent.child.id(), "control").filter(|p| *p != replica);
        if again.is_some() && ready(admin, Duration::from_millis(200)).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "{}", agent.log_tail());
    assert!(
        ready(admin, Duration::from_secs(5)).await,
        "{}",
        agent.log_tail()
    );
    // The agent logs the restart once its own readiness check passes, a moment after ours.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.log_tail().contains("is running again") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = agent.log_tail();
    assert!(log.contains("is running again"), "{log}");

    // Stopping the agent stops the replica with it.
    let status = agent.terminate(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} {}",
        agent.log_tail()
    );
    let gone = again.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
    assert!(gone, "the replica outlived its agent");
    let _ = std::fs::remove_dir_all(&dir);
}
