//! The commands' bodies, one module per command group; `main.rs` holds their flags and
//! hands each parsed command to its module.

pub mod api_keys;
pub mod deliveries;
pub mod dlq;
pub mod events;
pub mod listen;
pub mod local;
pub mod output;
pub mod subscribers;

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c().await,
            };
        tokio::select! {
            _ = ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}
