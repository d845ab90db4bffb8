//! The subcommands.

pub mod apply;
pub mod audit;
mod audit_doc;
pub mod authz;
pub mod ca;
pub mod check;
pub mod client;
pub mod completions;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod echo;
pub mod host;
pub mod host_args;
pub mod output;
pub mod proxy;
pub mod proxy_config;
mod proxy_diff;
mod proxy_sections;
pub mod run;
pub mod stat;
pub mod tap;
pub mod token;
pub mod up;
pub mod validate;

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C).
pub async fn shutdown_signal() {
    stop_signals(false).await
}

/// Installs the handlers for SIGTERM and SIGINT (and SIGHUP when `hangup`: the terminal of
/// `weft run` / `weft up` went away) at once, not when first polled: a signal that arrives
/// while the caller is still setting up is then held for it, instead of killing the process
/// with what it made half built. Call it from inside the runtime.
pub fn stop_signals(hangup: bool) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = hangup.then(|| signal(SignalKind::hangup()).ok()).flatten();
    async fn recv(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async move {
        if term.is_none() && int.is_none() {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
        tokio::select! {
            () = recv(&mut term) => {}
            () = recv(&mut int) => {}
            () = recv(&mut hup) => {}
        }
    }
}
