//! `weft dashboard`: opens the control plane's dashboard from this machine. It listens on a
//! local address (default `127.0.0.1:4190`) and relays the page's requests to the control
//! plane's admin address with the admin token added, so the browser never holds the token
//! (as `linkerd viz dashboard` port-forwards). Only GETs are relayed: the dashboard reads.
//! Each relayed request is bounded in time, except the live tap's stream, which the control
//! plane and the proxies bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::client::ControlArgs;

/// How long the control plane has to start answering a relayed request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// Where to serve the dashboard on this machine.
    #[arg(long, default_value = "127.0.0.1:4190")]
    listen: SocketAddr,
    /// Do not try to open a browser; print the address only.
    #[arg(long)]
    no_browser: bool,
    #[command(flatten)]
    control: ControlArgs,
}

type Body = BoxBody<Bytes, hyper::Error>;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let token = args.control.token()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let url = format!("http://{}/dashboard/", listener.local_addr()?);
        println!(
            "weft dashboard: {url} (the control plane at {}); Ctrl-C stops",
            args.control.control
        );
        if !args.no_browser {
            open_browser(&url);
        }
        let stop = super::stop_signals(false);
        tokio::pin!(stop);
        let upstream = args.control.control;
        loop {
            let accepted = tokio::select! {
                () = &mut stop => return Ok(ExitCode::SUCCESS),
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let token = token.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let token = token.clone();
                    async move { Ok::<_, Infallible>(relay(upstream, &token, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// The control plane's answer to `req`, with the admin token added; an error page otherwise.
async fn relay(upstream: SocketAddr, token: &str, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "the dashboard only reads\n");
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let path = if path == "/" {
        "/dashboard/".to_string()
    } else {
        path
    };
    let forwarded = async {
        let stream = tokio::net::TcpStream::connect(upstream)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut out = Request::get(path.as_str())
            .header(header::HOST, upstream.to_string())
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(accept) = req.headers().get(header::ACCEPT) {
            out = out.header(header::ACCEPT, accept);
        }
        let out = out
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        sender.send_request(out).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, forwarded).await {
        Ok(Ok(resp)) => resp.map(|b| b.boxed()),
        Ok(Err(e)) => plain(
            StatusCode::BAD_GATEWAY,
            &format!("the control plane at {upstream} did not answer: {e}\n"),
        ),
        Err(_) => plain(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the control plane at {upstream} did not answer within {ANSWER_TIMEOUT:?}\n"),
        ),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(text.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Opens `url` in the desktop's browser when there is a desktop; a failure only means the
/// address printed above is to be opened by hand.
fn open_browser(url: &str) {
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if desktop {
        let _ = std::process::Command::new("xdg-open")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
