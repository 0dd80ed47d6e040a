//! SIGTERM / SIGINT, turned into a watch channel every task can hear; SIGHUP ignored.

use std::future::Future;

use tokio::sync::watch;

/// Resolves on SIGTERM or SIGINT (Ctrl-C). SIGHUP, whose default action would end the
/// process without draining its runs (a closed terminal, a `reload` by habit), is logged and
/// ignored: there is no in-place plan reload.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        match signal(SignalKind::terminate()) {
            Ok(mut term) => loop {
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = term.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                    Some(()) = hangup => tracing::warn!(
                        "SIGHUP ignored: stir-runtime does not reload a plan in place; restart it to run a new plan (docs/operations.md, \"Upgrading to a new plan\")"
                    ),
                }
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A receiver that turns true when `fut` resolves.
pub fn watch_future(fut: impl Future<Output = ()> + Send + 'static) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = fut => { let _ = tx.send(true); }
            _ = tx.closed() => {}
        }
    });
    rx
}
