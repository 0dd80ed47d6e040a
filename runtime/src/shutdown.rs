//! SIGTERM / SIGINT, turned into the cancellation of a token ([`cancel_on`]; the tree below
//! it: docs/ARCHITECTURE.md, "Cancellation"); SIGHUP: a plan reload in the long-running mode
//! ([`hangups`], `reload.rs`), ignored by the one-shot modes.

use std::future::Future;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Resolves on SIGTERM or SIGINT (Ctrl-C). SIGHUP, whose default action would end the
/// process without draining its runs (a closed terminal, a `reload` by habit), is logged and
/// ignored: `--once`, `--bootstrap` and rollbacks have no plan to reload. The long-running
/// mode reloads on SIGHUP instead ([`terminate`] and [`hangups`]).
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
                        "SIGHUP ignored: only the long-running `stir-runtime plan.json` reloads its plan"
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

/// Resolves on SIGTERM or SIGINT; SIGHUP is left to [`hangups`].
pub async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A counter bumped by every SIGHUP, installed now (from here on a SIGHUP never ends the
/// process). Without signals (not unix, or none could be installed) it never changes.
pub fn hangups() -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tx.send_modify(|n| *n += 1);
                        if tx.is_closed() {
                            return;
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: plan reloads need a restart")
            }
        }
    }
    rx
}

/// `work` to its end, with `token` cancelled as soon as `signal` resolves: the work hears it
/// through the token and still finishes (its cleanup, its history) before this returns.
pub async fn cancel_on<T>(
    signal: impl Future<Output = ()>,
    token: &CancellationToken,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return out,
        _ = signal => token.cancel(),
    }
    work.await
}
