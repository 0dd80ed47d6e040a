//! The runtime's environment: connections and secrets come from here, never from the plan.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why the environment cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("`{name}` is not set")]
    Missing { name: &'static str },
    #[error("`{name}` is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything the runtime reads from its environment and command line.
#[derive(Clone)]
pub struct Config {
    pub clickhouse_url: String,
    pub clickhouse_user: Option<String>,
    pub clickhouse_password: Option<String>,
    /// LZ4 on ClickHouse answers (`STIR_CLICKHOUSE_COMPRESSION=lz4`); off by default: a sync's
    /// export is read at COPY's pace, far below a LAN's bandwidth, so compressing it would only
    /// spend CPU at both ends. Turn it on when the runtime reaches ClickHouse over a slow link.
    pub clickhouse_lz4: bool,
    /// Settings sent with every ClickHouse query, as a session would set them. Not read from
    /// the environment: for code that embeds the runtime, and for tests that play a server
    /// profile (stir's own queries must give the same answer whatever a session sets).
    pub clickhouse_settings: Vec<(String, String)>,
    /// `STIR_POSTGRES_URL`: run history and the leader lock (and sync targets).
    pub postgres_url: Option<String>,
    /// PostgreSQL schema of the run history (`STIR_HISTORY_SCHEMA`, default `stir`).
    pub history_schema: String,
    pub slack_webhook: Option<String>,
    /// `STIR_S3_ENDPOINT`; credentials come from the standard AWS variables.
    pub s3_endpoint: Option<String>,
    /// SIGTERM: how long running work may go on before it is cancelled.
    pub grace: Duration,
    /// `/healthz` and `/metrics`.
    pub listen: Option<SocketAddr>,
    /// First retry delay; doubles per attempt (`STIR_RETRY_BACKOFF`, default 30s).
    pub retry_backoff: Duration,
    /// How often a follower tries to become leader (`STIR_LEADER_POLL`, default 5s).
    pub leader_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clickhouse_url: "http://127.0.0.1:8123".into(),
            clickhouse_user: None,
            clickhouse_password: None,
            clickhouse_lz4: false,
            clickhouse_settings: Vec::new(),
            postgres_url: None,
            history_schema: "stir".into(),
            slack_webhook: None,
            s3_endpoint: None,
            grace: Duration::from_secs(60),
            listen: None,
            retry_backoff: Duration::from_secs(30),
            leader_poll: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Read `STIR_*` variables through `get` (the process environment in production).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut c = Config::default();
        if let Some(u) = non_empty("STIR_CLICKHOUSE_URL") {
            c.clickhouse_url = u;
        }
        c.clickhouse_user = non_empty("STIR_CLICKHOUSE_USER");
        c.clickhouse_password = get("STIR_CLICKHOUSE_PASSWORD");
        if let Some(v) = non_empty("STIR_CLICKHOUSE_COMPRESSION") {
            c.clickhouse_lz4 = match v.trim() {
                "lz4" => true,
                "none" => false,
                other => {
                    return Err(ConfigError::Invalid {
                        name: "STIR_CLICKHOUSE_COMPRESSION",
                        reason: format!("`{other}` is not `none` or `lz4`"),
                    })
                }
            };
        }
        c.postgres_url = non_empty("STIR_POSTGRES_URL");
        if let Some(s) = non_empty("STIR_HISTORY_SCHEMA") {
            if !is_identifier(&s) {
                return Err(ConfigError::Invalid {
                    name: "STIR_HISTORY_SCHEMA",
                    reason: format!("`{s}` is not a plain identifier ([a-z_][a-z0-9_]*)"),
                });
            }
            c.history_schema = s;
        }
        c.slack_webhook = non_empty("STIR_SLACK_WEBHOOK");
        c.s3_endpoint = non_empty("STIR_S3_ENDPOINT");
        if let Some(d) = non_empty("STIR_RETRY_BACKOFF") {
            c.retry_backoff = parse_duration(&d).map_err(|reason| ConfigError::Invalid {
                name: "STIR_RETRY_BACKOFF",
                reason,
            })?;
        }
        if let Some(d) = non_empty("STIR_LEADER_POLL") {
            c.leader_poll = parse_duration(&d).map_err(|reason| ConfigError::Invalid {
                name: "STIR_LEADER_POLL",
                reason,
            })?;
        }
        Ok(c)
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_env_with(|k| std::env::var(k).ok())
    }

    pub fn require_postgres(&self) -> Result<&str, ConfigError> {
        self.postgres_url.as_deref().ok_or(ConfigError::Missing {
            name: "STIR_POSTGRES_URL",
        })
    }
}

/// Never prints a secret: passwords are `***`, the webhook URL (its path is the secret) is
/// shown as set or not.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("clickhouse_url", &redact_url(&self.clickhouse_url))
            .field("clickhouse_user", &self.clickhouse_user)
            .field("clickhouse_settings", &self.clickhouse_settings)
            .field(
                "clickhouse_password",
                &self.clickhouse_password.as_ref().map(|_| "***"),
            )
            .field(
                "postgres_url",
                &self.postgres_url.as_deref().map(redact_url),
            )
            .field("history_schema", &self.history_schema)
            .field("slack_webhook", &self.slack_webhook.as_ref().map(|_| "***"))
            .field("s3_endpoint", &self.s3_endpoint.as_deref().map(redact_url))
            .field("grace", &self.grace)
            .field("listen", &self.listen)
            .field("retry_backoff", &self.retry_backoff)
            .field("leader_poll", &self.leader_poll)
            .finish()
    }
}

/// An error and its causes, each once (`dispatch failure: … Connection refused`), URL-free.
pub fn error_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut m = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    redact_url(&m)
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`; also hides
/// `password=...` in key-value connection strings.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            return format!(
                "{}{}@{}{}",
                &url[..scheme_end + 3],
                shown,
                &authority[at + 1..],
                redact_query(&rest[authority_end..])
            );
        }
        return format!(
            "{}{}",
            &url[..scheme_end + 3 + authority_end],
            redact_query(&rest[authority_end..])
        );
    }
    // key=value form: host=.. password=..
    url.split_whitespace()
        .map(|kv| {
            if kv.to_ascii_lowercase().starts_with("password=") {
                "password=***".to_string()
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_string();
    };
    let (path, query) = tail.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword") {
                format!("{key}=***")
            } else {
                kv.to_string()
            }
        })
        .collect();
    format!("{path}{}", parts.join("&"))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `90s`, `15m`, `2h`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 60s, 5m or 1h"))?;
    let secs = |k: u64| Duration::from_secs(n.saturating_mul(k));
    match unit {
        "" | "s" => Ok(secs(1)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        _ => Err(format!("`{s}` has an unknown unit (use ms, s, m or h)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_everywhere() {
        assert_eq!(
            redact_url("postgres://stir:s3cret@127.0.0.1:55432/stir"),
            "postgres://stir:***@127.0.0.1:55432/stir"
        );
        assert_eq!(redact_url("http://127.0.0.1:8123"), "http://127.0.0.1:8123");
        assert_eq!(
            redact_url("postgres://h/db?user=a&password=x"),
            "postgres://h/db?user=a&password=***"
        );
        assert_eq!(
            redact_url("host=h user=u password=x"),
            "host=h user=u password=***"
        );
        let c = Config {
            clickhouse_password: Some("pw1".into()),
            postgres_url: Some("postgres://u:pw2@h/d".into()),
            slack_webhook: Some("https://hooks.slack.com/services/SECRET".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        for secret in ["pw1", "pw2", "SECRET"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn clickhouse_compression() {
        let with = |v: &'static str| {
            Config::from_env_with(move |k| (k == "STIR_CLICKHOUSE_COMPRESSION").then(|| v.into()))
        };
        assert!(!Config::from_env_with(|_| None).unwrap().clickhouse_lz4);
        assert!(with("lz4").unwrap().clickhouse_lz4);
        assert!(!with("none").unwrap().clickhouse_lz4);
        let err = with("zstd").unwrap_err().to_string();
        assert!(err.contains("STIR_CLICKHOUSE_COMPRESSION"), "{err}");
    }
}
