//! The scheduler's notion of "now": the system clock in production, or wall time mapped onto
//! tokio's clock so tests drive fires with `tokio::time::pause`/`advance`.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub enum Clock {
    /// `Utc::now()`; sleeps are cut into pieces so a wall-clock jump is noticed.
    System,
    /// `base_wall` at tokio instant `base`; wall time advances exactly with tokio's clock.
    Tokio {
        base_wall: DateTime<Utc>,
        base: Instant,
    },
}

/// Longest single sleep on the system clock (NTP steps, suspend/resume).
const SYSTEM_SLICE: Duration = Duration::from_secs(30);

impl Clock {
    /// Wall time `start` now, following tokio's (possibly paused) clock from here on.
    pub fn tokio_at(start: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            base_wall: start,
            base: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { base_wall, base } => {
                let elapsed = Instant::now().saturating_duration_since(*base);
                *base_wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX)
            }
        }
    }

    /// The tokio instant at which the wall clock reads `t` (now if `t` has passed).
    pub fn instant_at(&self, t: DateTime<Utc>) -> Instant {
        Instant::now() + until(self.now(), t)
    }

    /// Sleep until the wall clock reads `t` or later.
    pub async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = until(self.now(), t);
            if left.is_zero() {
                return;
            }
            match self {
                Clock::System => tokio::time::sleep(left.min(SYSTEM_SLICE)).await,
                Clock::Tokio { .. } => tokio::time::sleep(left).await,
            }
        }
    }
}

/// `to - from`, or zero when `to` is not later.
pub fn until(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}
