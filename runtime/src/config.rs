//! The runtime's environment: connections and secrets come from here, never from the plan.

pub use crate::conninfo::{key_value_items, KvItem};
pub use crate::errors::error_causes;
pub use crate::redact::{redact_text, redact_url};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use stir_plan::signature::{KeyError, PublicKey, SecretKey, PUBLIC_VAR, SECRET_VAR};

/// Why the environment cannot be used (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("`{name}` is not set")]
    Missing { name: &'static str },
    #[error("`{name}` is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{0}\nhelp: {help}", help = .0.help())]
    Key(#[from] KeyError),
    /// A variable the plan needs (`STIR_POSTGRES_URL_<NAME>`, `STIR_SLACK_WEBHOOK_<NAME>`) is
    /// missing or invalid.
    #[error("`{var}` {reason}")]
    Var { var: String, reason: String },
}

/// Everything the runtime reads from its environment and command line.
#[derive(Clone)]
pub struct Config {
    pub clickhouse_url: String,
    pub clickhouse_user: Option<String>,
    pub clickhouse_password: Option<String>,
    /// TLS of an `https://` ClickHouse URL: trusting `STIR_CLICKHOUSE_CA` (a PEM file), or the
    /// system's CAs. Built when the environment is read; `None` with an https URL (a config
    /// made in code) trusts the system's CAs.
    pub clickhouse_tls: Option<crate::tls::ClickHouseTls>,
    /// LZ4 on ClickHouse answers (`STIR_CLICKHOUSE_COMPRESSION=lz4`); off by default: a sync's
    /// export is read at COPY's pace, far below a LAN's bandwidth, so compressing it would only
    /// spend CPU at both ends. Turn it on when the runtime reaches ClickHouse over a slow link.
    pub clickhouse_lz4: bool,
    /// Settings sent with every ClickHouse query, as a session would set them. Not read from
    /// the environment: for code that embeds the runtime, and for tests that play a server
    /// profile (stir's own queries must give the same answer whatever a session sets).
    pub clickhouse_settings: Vec<(String, String)>,
    /// `STIR_POSTGRES_URL`: the unnamed serving target, and the runtime's state when
    /// `STIR_STATE_URL` is not set.
    pub postgres_url: Option<String>,
    /// `STIR_STATE_URL`: the run history and the leader lock (the runtime's own state).
    pub state_url: Option<String>,
    /// `STIR_POSTGRES_URL_<NAME>` of each named serving target of the plan
    /// ([`Config::read_targets`]).
    pub target_urls: std::collections::BTreeMap<String, String>,
    /// PostgreSQL schema of the run history (`STIR_HISTORY_SCHEMA`, default `stir`).
    pub history_schema: String,
    pub slack_webhook: Option<String>,
    /// `STIR_SLACK_WEBHOOK_<NAME>` of each webhook the plan's `notify` names
    /// ([`Config::read_webhooks`]).
    pub webhooks: std::collections::BTreeMap<String, String>,
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
    /// `STIR_CONSOLE_TOKEN`: the console's writes ("Run now") need it; unset, it is read-only.
    pub console_token: Option<String>,
    /// Plans must be signed by one of these (`STIR_PLAN_PUBLIC_KEY`, and the public half of
    /// `STIR_PLAN_KEY` when that is set here); empty: plans are not verified.
    pub plan_keys: Vec<PublicKey>,
    /// `STIR_PLAN_KEY` (a key that can sign plans) is in this environment: warned at start.
    pub signing_key_in_env: bool,
    /// The only project whose plans this runtime runs (`STIR_PROJECT`, `--project`).
    pub project: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            clickhouse_url: "http://127.0.0.1:8123".into(),
            clickhouse_user: None,
            clickhouse_password: None,
            clickhouse_tls: None,
            clickhouse_lz4: false,
            clickhouse_settings: Vec::new(),
            postgres_url: None,
            state_url: None,
            target_urls: Default::default(),
            history_schema: "stir".into(),
            slack_webhook: None,
            webhooks: Default::default(),
            s3_endpoint: None,
            grace: Duration::from_secs(60),
            listen: None,
            retry_backoff: Duration::from_secs(30),
            leader_poll: Duration::from_secs(5),
            console_token: None,
            plan_keys: Vec::new(),
            signing_key_in_env: false,
            project: None,
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
        let scheme_ok = ["http://", "https://"].iter().any(|p| {
            c.clickhouse_url
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        });
        if !scheme_ok {
            return Err(ConfigError::Invalid {
                name: "STIR_CLICKHOUSE_URL",
                reason: format!(
                    "`{}` is not an http:// or https:// URL",
                    redact_url(&c.clickhouse_url)
                ),
            });
        }
        let ca = non_empty("STIR_CLICKHOUSE_CA");
        if crate::tls::is_https(&c.clickhouse_url) {
            let tls = crate::tls::clickhouse_tls(ca.as_deref().map(std::path::Path::new));
            c.clickhouse_tls = Some(tls.map_err(|reason| ConfigError::Invalid {
                name: if ca.is_some() {
                    "STIR_CLICKHOUSE_CA"
                } else {
                    "STIR_CLICKHOUSE_URL"
                },
                reason,
            })?);
        } else if ca.is_some() {
            // A CA to check the server with, and a URL that never checks it: fail closed.
            return Err(ConfigError::Invalid {
                name: "STIR_CLICKHOUSE_URL",
                reason:
                    "STIR_CLICKHOUSE_CA is set but the URL is http:// (plain text): use https://"
                        .into(),
            });
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
        c.state_url = non_empty("STIR_STATE_URL");
        for (name, url) in [
            ("STIR_POSTGRES_URL", &c.postgres_url),
            ("STIR_STATE_URL", &c.state_url),
        ] {
            if let Some(url) = url {
                // sslmode, sslrootcert and the rest are checked now, not at the first connection.
                crate::tls::postgres(url)
                    .map_err(|reason| ConfigError::Invalid { name, reason })?;
            }
        }
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
        c.console_token = non_empty("STIR_CONSOLE_TOKEN");
        if let Some(t) = &c.console_token {
            // A guessable token guards nothing.
            if t.trim().chars().count() < 16 {
                return Err(ConfigError::Invalid {
                    name: "STIR_CONSOLE_TOKEN",
                    reason:
                        "shorter than 16 characters; use a long random one (`openssl rand -hex 32`)"
                            .into(),
                });
            }
        }
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
        // Set but empty is an error, never "not set": a blank line of a templated env file
        // must not turn verification or the project pin off.
        c.plan_keys = PublicKey::list_from_var(get(PUBLIC_VAR).as_deref())?;
        if let Some(v) = get(SECRET_VAR) {
            let public = SecretKey::from_var(Some(&v))?.public();
            c.signing_key_in_env = true;
            if !c.plan_keys.contains(&public) {
                c.plan_keys.push(public);
            }
        }
        c.project = match get("STIR_PROJECT") {
            None => None,
            Some(p) if p.trim().is_empty() => return Err(ConfigError::Invalid {
                name: "STIR_PROJECT",
                reason:
                    "it is set but empty; name the one project this runtime may run, or unset it"
                        .into(),
            }),
            Some(p) => Some(p.trim().to_string()),
        };
        Ok(c)
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_env_with(|k| std::env::var(k).ok())
    }

    /// The unnamed serving target's URL.
    pub fn require_postgres(&self) -> Result<&str, ConfigError> {
        self.postgres_url.as_deref().ok_or(ConfigError::Missing {
            name: "STIR_POSTGRES_URL",
        })
    }

    /// Where the runtime keeps its state (history, leader lock): `STIR_STATE_URL`, else the
    /// single serving database: `STIR_POSTGRES_URL`, or the URL of the plan's only named
    /// target ([`Config::read_targets`]).
    pub fn require_state(&self) -> Result<&str, ConfigError> {
        if let Some(u) = self.state_url.as_deref().or(self.postgres_url.as_deref()) {
            return Ok(u);
        }
        match self.target_urls.values().collect::<Vec<_>>().as_slice() {
            [only] => Ok(only.as_str()),
            [] => Err(ConfigError::Missing {
                name: "STIR_STATE_URL",
            }),
            _ => Err(ConfigError::Invalid {
                name: "STIR_STATE_URL",
                reason: "it is not set, and the plan has several serving targets: say in which database the runtime keeps its history and leader lock (one of the targets' URLs, or a database of its own)".into(),
            }),
        }
    }

    /// Read the URL of each named serving target of `plan` (`STIR_POSTGRES_URL_<NAME>`)
    /// through `get`, checked now: a missing or invalid one refuses the start, not a sync hours
    /// later.
    pub fn read_targets(
        &mut self,
        plan: &stir_plan::Plan,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if self.postgres_url.is_none() && plan.syncs.iter().any(|s| s.target.is_none()) {
            return Err(ConfigError::Var {
                var: stir_plan::target_url_var(None),
                reason: "is not set: it is the URL of the plan's unnamed serving target (`serving postgres schema=..`), which syncs write".into(),
            });
        }
        for t in &plan.targets {
            let var = stir_plan::target_url_var(Some(&t.name));
            let url =
                get(&var)
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| ConfigError::Var {
                        var: var.clone(),
                        reason: format!(
                            "is not set: it is the URL of the plan's serving target `{}`",
                            t.name
                        ),
                    })?;
            crate::tls::postgres(&url).map_err(|reason| ConfigError::Var {
                var: var.clone(),
                reason: format!("is invalid: {reason}"),
            })?;
            self.target_urls.insert(t.name.clone(), url);
        }
        Ok(())
    }

    /// Read the URL of each named webhook the plan's `notify` nodes name
    /// (`STIR_SLACK_WEBHOOK_<NAME>`, upper-cased, `-` as `_`) through `get`: a missing one
    /// refuses the start rather than losing a team's alerts.
    pub fn read_webhooks(
        &mut self,
        plan: &stir_plan::Plan,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let named = plan
            .notify
            .iter()
            .chain(plan.schedules.iter().filter_map(|s| s.notify.as_ref()))
            .filter_map(|n| n.webhook.clone());
        for name in named {
            let var = webhook_var(&name);
            let url = get(&var)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::Var {
                    var: var.clone(),
                    reason: format!(
                        "is not set: it is the URL of webhook `{name}`, which the plan's `notify` names"
                    ),
                })?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::Var {
                    var,
                    reason: "is not an http(s) URL".into(),
                });
            }
            self.webhooks.insert(name, url);
        }
        Ok(())
    }

    /// The URL of serving target `name` (`None`: the unnamed one).
    pub fn target_url(&self, name: Option<&str>) -> Result<&str, ConfigError> {
        match name {
            None => self.require_postgres(),
            Some(n) => {
                self.target_urls
                    .get(n)
                    .map(String::as_str)
                    .ok_or_else(|| ConfigError::Var {
                        var: stir_plan::target_url_var(Some(n)),
                        reason: format!("is not set: it is the URL of serving target `{n}`"),
                    })
            }
        }
    }
}

/// `team-growth` -> `STIR_SLACK_WEBHOOK_TEAM_GROWTH`.
pub fn webhook_var(name: &str) -> String {
    format!(
        "STIR_SLACK_WEBHOOK_{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
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
            .field("clickhouse_tls", &self.clickhouse_tls)
            .field(
                "postgres_url",
                &self.postgres_url.as_deref().map(redact_url),
            )
            .field("state_url", &self.state_url.as_deref().map(redact_url))
            .field(
                "target_urls",
                &self
                    .target_urls
                    .iter()
                    .map(|(k, v)| (k.as_str(), redact_url(v)))
                    .collect::<Vec<_>>(),
            )
            .field("history_schema", &self.history_schema)
            .field("slack_webhook", &self.slack_webhook.as_ref().map(|_| "***"))
            .field("webhooks", &self.webhooks.keys().collect::<Vec<_>>())
            .field("s3_endpoint", &self.s3_endpoint.as_deref().map(redact_url))
            .field("grace", &self.grace)
            .field("listen", &self.listen)
            .field("retry_backoff", &self.retry_backoff)
            .field("leader_poll", &self.leader_poll)
            .field("console_token", &self.console_token.as_ref().map(|_| "***"))
            .field("plan_keys", &self.plan_keys)
            .field("signing_key_in_env", &self.signing_key_in_env)
            .field("project", &self.project)
            .finish()
    }
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

/// Reads a variable of the environment (the process's in production; a map in tests).
pub type EnvFn = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + std::marker::Sync>;

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

    /// A password as a PostgreSQL URL carries it: percent-encoded where the URL syntax needs.
    fn pct(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// libpq's quoting of a key=value value.
    fn kv_quoted(s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    fn kv_bare(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_whitespace() || c == '\\' || c == '\'' {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// No password, whatever its characters, survives redaction in any form a PostgreSQL
        /// URL or key=value string takes, alone or inside an error message. Passwords start
        /// with a marker found nowhere else, so any leak of their head is seen.
        #[test]
        fn no_password_survives_redaction(
            tail in "[ -~]{0,24}|\\PC{0,12}",
            form in 0usize..9,
        ) {
            let pw = format!("Qz7{tail}");
            let s = match form {
                0 => format!("postgres://stir:{}@db.example:5432/stir", pct(&pw)),
                // Typed without encoding: `/`, `#`, `?`, `@` and all.
                1 => format!("postgres://stir:{pw}@db.example:5432/stir?sslmode=require"),
                2 => format!("postgresql://db.example/stir?user=stir&password={}", pct(&pw)),
                3 => format!("postgresql://db.example/stir?password={pw}&sslmode=require"),
                4 => format!("host=db user=stir password={} dbname=stir", kv_bare(&pw)),
                5 => format!("host=db password = {} user=stir", kv_quoted(&pw)),
                6 => format!("host=db password={} sslmode=require", kv_quoted(&pw)),
                7 => format!("https://hooks.example/api?token={}&x=1", pct(&pw)),
                _ => format!("sslpassword={} host=db", kv_quoted(&pw)),
            };
            let shown = redact_url(&s);
            proptest::prop_assert!(!shown.contains("Qz7"), "{s} -> {shown}");
            if form != 1 || !pw.contains(char::is_whitespace) {
                let text = redact_text(&format!("error connecting to {s}: refused"));
                proptest::prop_assert!(!text.contains("Qz7"), "{s} -> {text}");
            }
        }
    }

    /// The state lives in STIR_STATE_URL, else the single serving database; several targets
    /// and no STIR_STATE_URL is refused, never a guess.
    #[test]
    fn state_url_defaults_to_the_single_serving_database() {
        let plan = |targets: &[&str]| {
            let mut p: stir_plan::Plan = serde_json::from_value(serde_json::json!({
                "format_version": 6, "manifest_hash": "", "project": "p", "timezone": "UTC",
                "warehouse": {"database": "d", "cluster": null, "threads": 1},
                "serving": null, "staging": null, "notify": null, "endpoints": [],
                "blackouts": [], "schedules": [], "models": [], "syncs": [], "requests": [],
                "plan_hash": ""
            }))
            .unwrap();
            p.targets = targets
                .iter()
                .map(|n| stir_plan::Target {
                    name: n.to_string(),
                    schema: "public".into(),
                })
                .collect();
            p
        };
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let a = "postgres://u:pa@a/x";
        let b = "postgres://u:pb@b/x";
        let s = "postgres://u:ps@s/x";
        // Only the unnamed target: the state is beside it.
        let c =
            Config::from_env_with(env(&[("STIR_POSTGRES_URL", "postgres://u:pa@a/x")])).unwrap();
        assert_eq!(c.require_state().unwrap(), a);
        // One named target: its URL.
        let mut c = Config::from_env_with(env(&[])).unwrap();
        assert!(c.require_state().is_err());
        c.read_targets(
            &plan(&["prod"]),
            env(&[("STIR_POSTGRES_URL_PROD", "postgres://u:pa@a/x")]),
        )
        .unwrap();
        assert_eq!(c.require_state().unwrap(), a);
        assert_eq!(c.target_url(Some("prod")).unwrap(), a);
        // Two named targets: STIR_STATE_URL decides, and is required.
        let two = env(&[
            ("STIR_POSTGRES_URL_PROD", "postgres://u:pa@a/x"),
            ("STIR_POSTGRES_URL_STAGING_EU", "postgres://u:pb@b/x"),
        ]);
        let mut c = Config::from_env_with(env(&[])).unwrap();
        c.read_targets(&plan(&["prod", "staging-eu"]), two).unwrap();
        assert_eq!(c.target_url(Some("staging-eu")).unwrap(), b);
        let e = c.require_state().unwrap_err().to_string();
        assert!(e.contains("STIR_STATE_URL") && e.contains("several"), "{e}");
        let mut c =
            Config::from_env_with(env(&[("STIR_STATE_URL", "postgres://u:ps@s/x")])).unwrap();
        c.read_targets(&plan(&["prod", "staging-eu"]), two).unwrap();
        assert_eq!(c.require_state().unwrap(), s);
        // A target without its URL, or with a bad one, refuses the start; no URL is shown.
        let mut c = Config::from_env_with(env(&[])).unwrap();
        let e = c
            .read_targets(
                &plan(&["prod", "staging-eu"]),
                env(&[("STIR_POSTGRES_URL_PROD", "postgres://u:pa@a/x")]),
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`STIR_POSTGRES_URL_STAGING_EU` is not set") && e.contains("`staging-eu`"),
            "{e}"
        );
        let mut c = Config::from_env_with(env(&[])).unwrap();
        let e = c
            .read_targets(
                &plan(&["prod"]),
                env(&[(
                    "STIR_POSTGRES_URL_PROD",
                    "postgres://u:pa@a/x?sslmode=bogus",
                )]),
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("STIR_POSTGRES_URL_PROD") && !e.contains("pa@"),
            "{e}"
        );
        assert!(!format!("{c:?}").contains(":pa@"));

        // A webhook the plan's notify names must be set; its URL never shows.
        let mut p = plan(&[]);
        p.notify = Some(stir_plan::Notify {
            on: stir_plan::NotifyOn::Failure,
            webhook: Some("team-growth".into()),
            link: None,
            repeat_secs: 3600,
        });
        let mut c = Config::from_env_with(env(&[])).unwrap();
        let e = c.read_webhooks(&p, env(&[])).unwrap_err().to_string();
        assert!(
            e.contains("`STIR_SLACK_WEBHOOK_TEAM_GROWTH` is not set")
                && e.contains("`team-growth`"),
            "{e}"
        );
        c.read_webhooks(
            &p,
            env(&[(
                "STIR_SLACK_WEBHOOK_TEAM_GROWTH",
                "https://hooks.example.com/services/SECRET",
            )]),
        )
        .unwrap();
        assert_eq!(c.webhooks.len(), 1);
        assert!(!format!("{c:?}").contains("SECRET"));
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

    #[test]
    fn console_token_must_be_long() {
        let with = |v: &'static str| {
            Config::from_env_with(move |k| (k == "STIR_CONSOLE_TOKEN").then(|| v.into()))
        };
        assert_eq!(Config::from_env_with(|_| None).unwrap().console_token, None);
        let err = with("short-token").unwrap_err().to_string();
        assert!(
            err.contains("STIR_CONSOLE_TOKEN") && err.contains("openssl rand"),
            "{err}"
        );
        let c = with("0123456789abcdef0123").unwrap();
        assert_eq!(c.console_token.as_deref(), Some("0123456789abcdef0123"));
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "never printed"
        );
    }
}
