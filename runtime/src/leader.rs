//! High availability: runtimes on one plan elect a leader with a PostgreSQL advisory lock
//! (`pg_try_advisory_lock`) taken on a dedicated session held for the leader's lifetime.
//! When that session dies, PostgreSQL releases the lock and a follower's next poll takes it.
//!
//! The same session also holds the runtime's *instance lock* ([`instance_key`]) from the
//! moment it leads until its last run has ended, also after it handed the leader lock over
//! while draining: another runtime that can take a runtime's instance lock knows that
//! runtime is gone, and that the runs it left `running` are orphans to kill.

pub use crate::run::{instance_id, instance_key, lock_key};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::redact_url;
use crate::history::{pg_message, HistoryError};

/// How long the leader session may leave a heartbeat unanswered before the lock counts as
/// lost. PostgreSQL frees the lock of a client it cannot reach after its keepalive gives up
/// (25 s idle, then 3 probes 5 s apart: 40 s, set in [`try_acquire`]); the leader gives up
/// first, so a follower never leads beside it. Shorter stalls only pause firing.
pub const STALL_LIMIT: Duration = Duration::from_secs(20);

/// This runtime holds the lock while this value lives.
pub struct Leader {
    client: Arc<Client>,
    /// Cancelled when the session is gone or stalled: the root of this term's cancellation
    /// tree ([`Leader::term`]).
    lost: CancellationToken,
    /// A state, not a stop: false while the session is slow to answer, true again when it
    /// answers (firing pauses meanwhile, nothing is cancelled).
    confirmed: watch::Receiver<bool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Leader {
    /// Resolves when the lock session is gone or stalled past [`STALL_LIMIT`] (the lock may
    /// be someone else's now).
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// A node below the session: cancelled, with everything under it, when the session is
    /// lost. Whatever must not outlive this leadership (the runs of its term) hangs here.
    pub fn term(&self) -> CancellationToken {
        self.lost.child_token()
    }

    /// True while the session answers its heartbeat: only then may the leader fire.
    pub fn confirmed(&self) -> watch::Receiver<bool> {
        self.confirmed.clone()
    }

    /// Give the leader lock to whoever polls next, keeping the session and with it the
    /// instance lock: this runtime's running work stays visibly alive while it drains.
    pub async fn hand_over(&self, key: i64) {
        match self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
        {
            Ok(_) => info!(key, "leader: lock handed over; draining running work"),
            Err(e) => {
                warn!(error = %pg_message(&e), "could not hand the leader lock over (the session end releases it)")
            }
        }
    }

    /// Give every lock back and close the session.
    pub async fn release(self) {
        self.heartbeat.abort();
        if let Err(e) = self
            .client
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .await
        {
            warn!(error = %pg_message(&e), "could not release the leader lock (the session end releases it)");
        }
    }
}

/// Try to become leader every `poll` until it works (`Some`) or `stop` is cancelled (`None`).
pub async fn acquire(
    url: &str,
    key: i64,
    instance: i64,
    poll: Duration,
    stop: &CancellationToken,
) -> Option<Leader> {
    let mut said_follower = false;
    loop {
        match try_acquire(url, key, instance, poll).await {
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
            _ = stop.cancelled() => return None,
        }
    }
}

/// One attempt on a fresh session; on success the session also holds `instance`.
pub async fn try_acquire(
    url: &str,
    key: i64,
    instance: i64,
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
    let lost = CancellationToken::new();
    let conn_lost = lost.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %pg_message(&e), "leader session closed");
        }
        conn_lost.cancel();
    });
    // Let the server notice an unreachable runtime within 40 s (so the lock is freed), later
    // than the runtime itself gives up (STALL_LIMIT).
    client
        .batch_execute("SET tcp_keepalives_idle = 25; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3")
        .await?;
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?;
    let got: bool = row.get(0);
    if !got {
        return Ok(None);
    }
    client
        .execute("SELECT pg_advisory_lock($1)", &[&instance])
        .await?;
    // Watch the session. A slow ping pauses firing; a failed one, or one unanswered for
    // STALL_LIMIT, means the lock can no longer be trusted. The session is still ours while
    // it answers late, so a short stall of PostgreSQL cancels nothing.
    let client = Arc::new(client);
    let hb_client = client.clone();
    let (confirmed_tx, confirmed) = watch::channel(true);
    let lost_tx = lost.clone();
    let heartbeat = tokio::spawn(async move {
        let slow = (heartbeat * 3).min(STALL_LIMIT);
        loop {
            tokio::time::sleep(heartbeat).await;
            let ping = hb_client.simple_query("SELECT 1");
            tokio::pin!(ping);
            let answered = match tokio::time::timeout(slow, &mut ping).await {
                Ok(r) => r.is_ok(),
                Err(_) => {
                    warn!(
                        waited_ms = slow.as_millis() as u64,
                        "leader session is slow to answer: not firing until it does"
                    );
                    let _ = confirmed_tx.send(false);
                    let answered = matches!(
                        tokio::time::timeout(STALL_LIMIT - slow, &mut ping).await,
                        Ok(Ok(_))
                    );
                    if answered {
                        info!("leader session answers again: firing resumes");
                        let _ = confirmed_tx.send(true);
                    }
                    answered
                }
            };
            if !answered {
                warn!(
                    "leader session failed or stalled past {STALL_LIMIT:?}: giving up leadership"
                );
                let _ = confirmed_tx.send(false);
                lost_tx.cancel();
                return;
            }
        }
    });
    Ok(Some(Leader {
        client,
        lost,
        confirmed,
        heartbeat,
    }))
}
