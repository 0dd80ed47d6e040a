//! The operations console: server-rendered HTML pages of the runtime itself on `--listen`
//! (schedules, grid, run, timeline, model, plan) read from the history in PostgreSQL, and
//! "Run now" / "Run again", which start a manual run through the same path as `--once`
//! ([`crate::run_once_with`]: the same history claim, the same refusals, `by_leader=false`).
//! Pages are minijinja templates (`templates/`, auto-escaped); no JavaScript.
//!
//! Split by noun: [`auth`] (who may write), [`reads`] (the history queries), [`pages`] (one
//! handler per page), [`words`] (cron and durations in words).

pub mod auth;
mod pages;
pub mod reads;
pub mod words;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, FromRef, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Deserialize;
use stir_plan::schedule::Zone;
use stir_plan::{Plan, Step};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{redact_text, Config};
use crate::history::PgHistory;
use crate::metrics::Metrics;
use crate::run::Tier;
use crate::scheduler;
use crate::{Options, RuntimeError};

/// What the console needs from the runtime that serves it.
pub struct Setup {
    pub plan: Arc<Plan>,
    pub config: Arc<Config>,
    pub history: Arc<PgHistory>,
    pub metrics: Metrics,
    /// The leader's options (step runner, alerts): manual runs started here use them.
    pub options: Options,
    /// This runtime process ([`crate::leader::instance_id`]).
    pub instance: String,
    /// Cancelled when the runtime stops (SIGTERM): manual runs started here are cancelled
    /// with it.
    pub stop: CancellationToken,
}

/// The console's state; cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    plan: Arc<Plan>,
    config: Arc<Config>,
    history: Arc<PgHistory>,
    metrics: Metrics,
    options: Options,
    instance: String,
    stop: CancellationToken,
    zone: Zone,
    tiers: Vec<Tier>,
    /// Per schedule: the tags of the models it builds (the page's tag filter).
    tags: BTreeMap<String, Vec<String>>,
    loaded_at: DateTime<Utc>,
    token: Option<auth::Token>,
    templates: Environment<'static>,
}

/// The console of the plan being run: a reload puts the new plan's console in its place, so
/// pages show, and "Run now" runs, the plan the scheduler fires. Each request reads it once.
#[derive(Clone)]
pub struct Consoles(Arc<std::sync::RwLock<Console>>);

impl From<Console> for Consoles {
    fn from(c: Console) -> Consoles {
        Consoles(Arc::new(std::sync::RwLock::new(c)))
    }
}

impl axum::extract::FromRef<Consoles> for Console {
    fn from_ref(slot: &Consoles) -> Console {
        match slot.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Consoles {
    /// Serve `plan` from now on (a reload took it); the rest stays as it was.
    pub fn replace(&self, plan: Arc<Plan>, config: Arc<Config>, options: Options) {
        let old = Console::from_ref(self);
        let next = Console::new(Setup {
            plan,
            config,
            history: old.0.history.clone(),
            metrics: old.0.metrics.clone(),
            options,
            instance: old.0.instance.clone(),
            stop: old.0.stop.clone(),
        });
        match (next, self.0.write()) {
            (Ok(c), Ok(mut slot)) => *slot = c,
            (Err(e), _) => warn!(error = %e, "the console keeps showing the previous plan"),
            (_, Err(_)) => warn!("the console keeps showing the previous plan"),
        }
    }
}

/// How long "Run now" waits for the run's start to be recorded (or refused) before it answers.
const START_WAIT: Duration = Duration::from_secs(20);

impl Console {
    pub fn new(s: Setup) -> Result<Console, RuntimeError> {
        let (zone, tiers) = scheduler::prepare(&s.plan)?;
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sched in &s.plan.schedules {
            let mut t: Vec<String> = sched
                .steps
                .iter()
                .filter_map(|st| match st {
                    Step::Run { models } => Some(models),
                    _ => None,
                })
                .flatten()
                .filter_map(|m| s.plan.model(m))
                .flat_map(|m| m.tags.iter().cloned())
                .collect();
            t.sort();
            t.dedup();
            tags.insert(sched.name.clone(), t);
        }
        Ok(Console(Arc::new(Inner {
            token: s.config.console_token.as_deref().map(auth::Token::new),
            plan: s.plan,
            config: s.config,
            history: s.history,
            metrics: s.metrics,
            options: s.options,
            instance: s.instance,
            stop: s.stop,
            zone,
            tiers,
            tags,
            loaded_at: Utc::now(),
            templates: templates(),
        })))
    }
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("schedules.html", include_str!("templates/schedules.html")),
        ("grid.html", include_str!("templates/grid.html")),
        ("run.html", include_str!("templates/run.html")),
        ("timeline.html", include_str!("templates/timeline.html")),
        ("models.html", include_str!("templates/models.html")),
        ("model.html", include_str!("templates/model.html")),
        ("plan.html", include_str!("templates/plan.html")),
        ("login.html", include_str!("templates/login.html")),
        ("message.html", include_str!("templates/message.html")),
    ] {
        // The templates are part of the binary: a broken one fails every console test.
        if let Err(e) = env.add_template(name, text) {
            warn!(template = name, error = %e, "console template does not parse");
        }
    }
    env
}

/// The console's routes.
pub fn router(c: impl Into<Consoles>) -> Router {
    let slot: Consoles = c.into();
    Router::<Consoles>::new()
        .route("/", get(pages::schedules))
        .route("/grid", get(pages::grid))
        .route("/runs/{id}", get(pages::run))
        .route("/timeline", get(pages::timeline))
        .route("/models", get(pages::models))
        .route("/models/{name}", get(pages::model))
        .route("/plan", get(pages::plan))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/schedules/{name}/run", post(run_now))
        .route("/runs/{id}/again", post(run_again))
        .layer(axum::middleware::map_response(harden))
        .with_state(slot)
}

/// Every console answer: no framing by another site (clickjacking a "Run now"), no script, no
/// resource from elsewhere, forms only to this console, nothing cached.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(k, axum::http::HeaderValue::from_static(v));
    }
    r
}

impl Console {
    /// Render `template` with the page's values and the parts every page shows.
    fn page(
        &self,
        status: StatusCode,
        template: &str,
        headers: &HeaderMap,
        page: minijinja::Value,
    ) -> Response {
        let c = &self.0;
        let logged_in = c.token.as_ref().is_some_and(|t| t.logged_in(headers));
        let common = minijinja::context! {
            project => c.plan.project.clone(),
            plan_hash => short_hash(&c.plan.plan_hash),
            leader => c.metrics.is_leader(),
            read_only => c.token.is_none(),
            logged_in => logged_in,
            csrf => if logged_in { c.token.as_ref().map(|t| t.csrf().to_string()) } else { None },
            now => fmt_time(Utc::now()),
        };
        let html = c
            .templates
            .get_template(template)
            .and_then(|t| t.render(minijinja::context! { c => common, p => page }));
        match html {
            Ok(h) => (status, Html(h)).into_response(),
            Err(e) => {
                warn!(template, error = %e, "console page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page failed to render; see the runtime's log\n",
                )
                    .into_response()
            }
        }
    }

    fn message(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        title: &str,
        text: &str,
    ) -> Response {
        self.page(
            status,
            "message.html",
            headers,
            minijinja::context! { title => title, text => text },
        )
    }

    /// Text from the history or an error as a page may show it: URLs without passwords, no
    /// secret of this runtime's environment, no quoted literal (a row value) of a message.
    fn shown(&self, text: &str) -> String {
        shown_error(text, &secrets(&self.0.config))
    }
}

/// The secret values of `config`, to blank wherever they appear.
fn secrets(config: &Config) -> Vec<String> {
    let mut v: Vec<String> = [
        config.clickhouse_password.clone(),
        config.slack_webhook.clone(),
        config.console_token.clone(),
        std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        std::env::var("AWS_SESSION_TOKEN").ok(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.trim().len() >= 4)
    .collect();
    v.sort();
    v.dedup();
    v
}

/// See [`Console::shown`].
pub fn shown_error(text: &str, secrets: &[String]) -> String {
    let mut t = redact_text(text);
    for s in secrets {
        t = t.replace(s.as_str(), "***");
    }
    let t = mask_literals(&t);
    let mut out: String = t.chars().take(4000).collect();
    if out.len() < t.len() {
        out.push('…');
    }
    out
}

/// `'...'` literals (a value, as ClickHouse and PostgreSQL quote them) become `'…'`; an
/// apostrophe inside a word (`doesn't`) is not a quote.
fn mask_literals(t: &str) -> String {
    let chars: Vec<char> = t.chars().collect();
    let mut out = String::with_capacity(t.len());
    let mut i = 0;
    while i < chars.len() {
        let opens = chars[i] == '\'' && (i == 0 || !chars[i - 1].is_alphanumeric());
        if !opens {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() {
            if chars[j] == '\'' && chars.get(j + 1).is_none_or(|c| !c.is_alphanumeric()) {
                break;
            }
            j += 1;
        }
        out.push_str("'…'");
        i = j + 1;
    }
    out
}

pub(crate) fn short_hash(h: &str) -> String {
    h.chars().take(12).collect()
}

pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn login_page(State(c): State<Console>, headers: HeaderMap) -> Response {
    c.page(
        StatusCode::OK,
        "login.html",
        &headers,
        minijinja::context! { wrong => false },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(State(c): State<Console>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let Some(token) = &c.0.token else {
        return c.message(
            StatusCode::FORBIDDEN,
            &headers,
            "Read-only console",
            "No STIR_CONSOLE_TOKEN is set on this runtime: the console only reads.",
        );
    };
    if let Err(r) = auth::same_site(&headers) {
        return c.message(r.status, &headers, "Refused", &r.message);
    }
    match token.check(&f.token) {
        Ok(()) => {}
        Err(r) if r.status == StatusCode::TOO_MANY_REQUESTS => {
            warn!("console login refused: too many wrong tokens lately");
            return c.message(r.status, &headers, "Too many wrong tokens", &r.message);
        }
        Err(_) => {
            warn!("console login with a wrong token");
            return c.page(
                StatusCode::UNAUTHORIZED,
                "login.html",
                &headers,
                minijinja::context! { wrong => true },
            );
        }
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    (
        [(header::SET_COOKIE, token.session_cookie(secure))],
        Redirect::to("/"),
    )
        .into_response()
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!(
                "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                auth::COOKIE
            ),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

/// The `csrf` field of a write's form body (hex, so no decoding); a script's bearer request
/// may send no body at all.
fn csrf_field(body: &[u8]) -> String {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("csrf="))
        .unwrap_or("")
        .to_string()
}

async fn run_now(
    State(c): State<Console>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    c.start(&name, &headers, &csrf_field(&body), None).await
}

async fn run_again(
    State(c): State<Console>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = match c.find_run(&headers, &id).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    c.start(&run.schedule, &headers, &csrf_field(&body), Some(&id))
        .await
}

impl Console {
    /// "Run now" / "Run again": the checks of a write, then a manual run of `schedule` in the
    /// background, as `--once` runs it. Answers with the run's page once its start is
    /// recorded, or with the refusal `--once` would print.
    async fn start(
        &self,
        schedule: &str,
        headers: &HeaderMap,
        csrf: &str,
        again: Option<&str>,
    ) -> Response {
        let c = &self.0;
        if let Err(r) = auth::may_write(c.token.as_ref(), headers, csrf) {
            return self.message(r.status, headers, "Refused", &r.message);
        }
        if c.plan.schedule(schedule).is_none() {
            return self.message(
                StatusCode::NOT_FOUND,
                headers,
                "No such schedule",
                &format!("The plan this runtime runs has no schedule `{schedule}`."),
            );
        }
        if !c.metrics.is_leader() {
            return self.message(
                StatusCode::CONFLICT,
                headers,
                "Refused: this runtime is a follower",
                "Manual runs start in the leader's process. Open the console of the replica whose /healthz says \"leader\":true.",
            );
        }
        info!(schedule, again = ?again, "manual run requested from the console");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let options = Options {
            claimed: Some(Arc::new(std::sync::Mutex::new(Some(tx)))),
            force: false,
            ..c.options.clone()
        };
        let stop = c.stop.clone().cancelled_owned();
        let (plan, config, name) = ((*c.plan).clone(), (*c.config).clone(), schedule.to_string());
        let mut task =
            tokio::spawn(
                async move { crate::run_once_with(plan, config, &name, options, stop).await },
            );
        let outcome = tokio::time::timeout(START_WAIT, async {
            tokio::select! {
                id = rx => match id {
                    Ok(id) => Ok(id),
                    // Dropped unsent: the run never started; the task says why.
                    Err(_) => Err((&mut task).await),
                },
                r = &mut task => Err(r),
            }
        })
        .await;
        let refused = |text: String| {
            warn!(schedule, refusal = %text, "manual run from the console refused");
            self.message(StatusCode::CONFLICT, headers, "Refused", &text)
        };
        match outcome {
            Ok(Ok(id)) => Redirect::to(&format!("/runs/{}", url_segment(&id))).into_response(),
            Ok(Err(Ok(Err(e)))) => refused(self.shown(&e.to_string())),
            Ok(Err(Ok(Ok(status)))) => refused(format!("the run ended ({}) before its start was recorded", status.as_str())),
            Ok(Err(Err(e))) => refused(format!("the run's task ended abnormally: {e}")),
            Err(_) => self.message(
                StatusCode::ACCEPTED,
                headers,
                "Starting",
                &format!("The run of `{schedule}` has not recorded its start after {}s (PostgreSQL is slow?); it goes on in the background: see the grid.", START_WAIT.as_secs()),
            ),
        }
    }
}

/// A run id or name in a URL path (ids are `[A-Za-z0-9_.@-]`, but stay safe for any).
pub(crate) fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_lose_passwords_secrets_and_row_values() {
        let secrets = vec!["hunter2-secret".to_string()];
        let shown = shown_error(
            "step `m` failed: Code: 6. DB::Exception: Cannot parse string 'alice@example.com' as UInt64: syntax error; url postgres://stir:pw@db:5432/x; token hunter2-secret. Table doesn't exist",
            &secrets,
        );
        for leak in ["alice@example.com", "pw@", "hunter2-secret"] {
            assert!(!shown.contains(leak), "{leak} in {shown}");
        }
        assert!(
            shown.contains("Cannot parse string '…' as UInt64"),
            "{shown}"
        );
        assert!(shown.contains("doesn't exist"), "{shown}");
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(
            url_segment("core-20260101T000000000Z-a1"),
            "core-20260101T000000000Z-a1"
        );
        assert_eq!(url_segment("a/b c"), "a%2Fb%20c");
    }
}
