//! A real `weft proxy`'s memory in a small mesh and in the big one, each after calling ten
//! Services (it subscribes only to what it calls).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{mesh, spawn_control, wait_listening, Killed};

/// Returns (RSS in the small mesh, RSS in the big mesh), in MB.
pub async fn compare(weft: &PathBuf, big_dir: &Path, big_grpc: SocketAddr) -> Result<(f64, f64)> {
    let small_dir = big_dir.join("small");
    mesh::write(&small_dir.join("config"), 10, 1)?;
    let small_grpc: SocketAddr = "127.0.121.1:4180".parse()?;
    let small = spawn_control(weft, &small_dir, small_grpc, "127.0.121.1:4181".parse()?)?;
    wait_listening(small_grpc, Duration::from_secs(30)).await?;
    let small_rss = measure(weft, &small_dir, small_grpc, "127.0.121.2", 10).await?;
    drop(small);
    let big_rss = measure(weft, big_dir, big_grpc, "127.0.120.2", 10).await?;
    Ok((small_rss, big_rss))
}

async fn measure(
    weft: &PathBuf,
    dir: &Path,
    grpc: SocketAddr,
    ip: &str,
    calls: usize,
) -> Result<f64> {
    let workload = mesh::workload_name(1, 0);
    let out = Command::new(weft)
        .args([
            "token",
            "create",
            "--namespace",
            mesh::NS,
            "--workload",
            &workload,
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .output()?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let outbound: SocketAddr = format!("{ip}:4140").parse()?;
    let admin: SocketAddr = format!("{ip}:4191").parse()?;
    let proxy = Killed(
        Command::new(weft)
            .args(["proxy", "--control", &grpc.to_string(), "--control-ca"])
            .arg(dir.join("state/ca/bundle.pem"))
            .args([
                "--namespace",
                mesh::NS,
                "--workload",
                &workload,
                "--join-token",
                &token,
            ])
            .args([
                "--outbound-addr",
                &outbound.to_string(),
                "--inbound-addr",
                &format!("{ip}:4143"),
                "--admin-addr",
                &admin.to_string(),
            ])
            .env("WEFT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting weft proxy")?,
    );
    wait_listening(outbound, Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 1..=calls {
        // The endpoints are not real; the request makes the proxy subscribe, then fails fast.
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            request(outbound, &format!("svc-{i}.{}", mesh::NS)),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = crate::procstat::Tracked::tree("weft proxy", proxy.0.id()).peak_rss_mb()?;
    Ok(rss)
}

async fn request(proxy: SocketAddr, host: &str) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await?;
    s.write_all(format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    Ok(())
}
