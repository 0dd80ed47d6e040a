//! High availability: runtimes on one plan elect a leader with a PostgreSQL advisory lock
//! (`pg_try_advisory_lock`) taken on a dedicated session held for the leader's lifetime.
//! When that session dies, PostgreSQL releases the lock and a follower's next poll takes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::config::redact_url;
use crate::executor::cancelled;
use crate::history::{pg_message, HistoryError};

/// The lock key of a deployment: its history schema (`STIR_HISTORY_SCHEMA`, in the history's
/// database). Runtimes that write one history share one leader whatever their plans say, so
/// a plan that renames the project or the warehouse database in a rolling upgrade never gives
/// two leaders; two deployments on one PostgreSQL database keep apart by their schemas.
pub fn lock_key(history_schema: &str) -> i64 {
    let hex = stir::plan::sha256_hex(format!("stir-runtime/history/{history_schema}").as_bytes());
    let n = u64::from_str_radix(hex.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    n as i64
}

/// This runtime holds the lock while this value lives.
pub struct Leader {
    client: Arc<Client>,
    lost: watch::Receiver<bool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Leader {
    /// Resolves when the lock session is gone (the lock may be someone else's now).
    pub async fn lost(&mut self) {
        cancelled(&mut self.lost).await;
    }

    /// Give the lock back and close the session.
    pub async fn release(self, key: i64) {
        self.heartbeat.abort();
        if let Err(e) = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
        {
            warn!(error = %pg_message(&e), "could not release the leader lock (the session end releases it)");
        }
    }
}

/// Try to become leader every `poll` until it works (`Some`) or `stop` turns true (`None`).
pub async fn acquire(
    url: &str,
    key: i64,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Leader> {
    let mut said_follower = false;
    loop {
        match try_acquire(url, key, poll).await {
            Ok(Some(leader)) => {
                info!(key, "leader: holding the lock");
                return Some(leader);
            }
            Ok(None) => {
                if !said_follower {
                    info!(
                        key,
                        poll_ms = poll.as_millis() as u64,
                        "follower: another runtime holds the lock"
                    );
                    said_follower = true;
                }
            }
            Err(e) => warn!(error = %e, "leader election: PostgreSQL unavailable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = cancelled(stop) => return None,
        }
    }
}

/// One attempt on a fresh session.
pub async fn try_acquire(
    url: &str,
    key: i64,
    heartbeat: Duration,
) -> Result<Option<Leader>, HistoryError> {
    let refused = |reason: String| HistoryError::Connect {
        url: redact_url(url),
        reason,
    };
    let mut pg = crate::tls::postgres(url).map_err(refused)?;
    pg.config
        .application_name("stir-runtime leader")
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = pg.connect().await.map_err(refused)?;
    let (lost_tx, lost) = watch::channel(false);
    let conn_lost = lost_tx.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %pg_message(&e), "leader session closed");
        }
        let _ = conn_lost.send(true);
    });
    // Let the server notice a dead runtime within about a minute (so the lock is freed).
    client
        .batch_execute("SET tcp_keepalives_idle = 15; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
        .await?;
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?;
    let got: bool = row.get(0);
    if !got {
        return Ok(None);
    }
    // Watch the session: a failed or stuck ping means the lock can no longer be trusted.
    let client = Arc::new(client);
    let hb_client = client.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(heartbeat).await;
            let ok = matches!(
                tokio::time::timeout(heartbeat * 3, hb_client.simple_query("SELECT 1")).await,
                Ok(Ok(_))
            );
            if !ok {
                warn!("leader session does not answer: giving up leadership");
                let _ = lost_tx.send(true);
                return;
            }
        }
    });
    Ok(Some(Leader {
        client,
        lost,
        heartbeat,
    }))
}
