//! `request` steps, the scrape-request pattern: run the plan's query in ClickHouse
//! (JSONEachRow), render the body template once per row (minijinja, `row` = the row object)
//! and POST each body to `STIR_ENDPOINT_<NAME>` + path, `concurrency` at a time (1 unless the
//! manifest says otherwise, as today's request DAGs post), and with `rate` no more than that
//! many POSTs a second, every try counted: the scraping API sees today's pace.
//!
//! - Every body is rendered before the first POST: a template error sends nothing.
//! - Strings inserted by `{{ … }}` are JSON-escaped without quotes (the body is JSON and the
//!   template writes the quotes: `"shortcode": "{{ row.shortcode }}"`), so a quote or a
//!   backslash in a value cannot break the document; numbers and booleans print as they are.
//! - A POST is retried on connection errors, timeouts, 5xx and 429 (`attempts` tries, backoff
//!   doubling); a 4xx is a failure at once.
//! - The step fails when the failed share is above `max_failures_pct`; its error names both
//!   counts. `StepOutcome.rows` is the number this attempt delivered.
//! - A retry of the run (schedule `retries`) posts only the rows whose POST no earlier attempt
//!   of the same fire got a 2xx for ([`crate::step::Delivered`]: rows by the sha256 of their
//!   rendered body). The failed share counts those rows as delivered.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use minijinja::{Environment, UndefinedBehavior, Value};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::config::EnvFn;
use crate::config::{redact_text, redact_url};
use crate::step::{StepCtx, StepError, StepOutcome};
use crate::warehouse::clickhouse_client;
use crate::warehouse::{Answer, AnswerError};

/// Retries and timeouts of the POSTs.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Tries per row (1 = no retry).
    pub attempts: u32,
    /// Per-POST timeout.
    pub timeout: Duration,
    /// First retry delay; doubles per try.
    pub backoff: Duration,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            attempts: 3,
            timeout: Duration::from_secs(10),
            backoff: Duration::from_millis(500),
        }
    }
}

/// Query settings of a request's query (URL parameters): a server default, a user profile or
/// a session could otherwise cut its rows short (`max_result_rows` with
/// `result_overflow_mode='break'`, `limit`, a `break` on another limit), filter them, answer
/// from the query cache or quote its numbers, and fewer or different requests would go out
/// with no error. A `SETTINGS` clause in the query itself still wins: it is the author's.
/// Unlike the export's (which the sync checks against `system.settings`), these are all old
/// settings, present in every ClickHouse since 23.1, so none can make the query fail as unknown.
pub const RESULT_SETTINGS: &[(&str, &str)] = &[
    ("additional_result_filter", ""),
    ("additional_table_filters", "{}"),
    ("distinct_overflow_mode", "throw"),
    ("group_by_overflow_mode", "throw"),
    ("join_overflow_mode", "throw"),
    ("limit", "0"),
    ("max_result_bytes", "0"),
    ("max_result_rows", "0"),
    ("offset", "0"),
    ("output_format_json_quote_64bit_integers", "0"),
    ("read_overflow_mode", "throw"),
    ("result_overflow_mode", "throw"),
    ("set_overflow_mode", "throw"),
    ("skip_unavailable_shards", "0"),
    ("sort_overflow_mode", "throw"),
    ("timeout_overflow_mode", "throw"),
    ("transfer_overflow_mode", "throw"),
    ("use_query_cache", "0"),
];

/// `beat` -> `STIR_ENDPOINT_BEAT`, `my-api` -> `STIR_ENDPOINT_MY_API`.
pub fn endpoint_variable(endpoint: &str) -> String {
    format!(
        "STIR_ENDPOINT_{}",
        endpoint.to_ascii_uppercase().replace('-', "_")
    )
}

/// The template environment: strict undefined, JSON-escaped strings.
fn environment(name: &str, body: &str) -> Result<Environment<'static>, StepError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_formatter(|out, state, value| {
        // A NULL of the query is JSON's null, not Jinja's `none`.
        if value.is_none() {
            return out.write_str("null").map_err(minijinja::Error::from);
        }
        if !value.is_safe() {
            if let Some(s) = value.as_str() {
                let quoted = serde_json::to_string(s).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
                })?;
                return out
                    .write_str(&quoted[1..quoted.len() - 1])
                    .map_err(minijinja::Error::from);
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_template_owned("body", body.to_string())
        .map_err(|e| StepError::Other(format!("request `{name}`: the body template: {e}")))?;
    Ok(env)
}

/// Render the body for each row.
pub fn render_bodies(
    name: &str,
    body: &str,
    rows: &[serde_json::Value],
) -> Result<Vec<String>, StepError> {
    let env = environment(name, body)?;
    let template = env
        .get_template("body")
        .map_err(|e| StepError::Other(format!("request `{name}`: {e}")))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            template
                .render(minijinja::context! { row => Value::from_serialize(row) })
                .map_err(|e| {
                    StepError::Other(format!(
                        "request `{name}`: cannot render the body for row {}: {e}",
                        i + 1
                    ))
                })
        })
        .collect()
}

/// Run one request step.
pub async fn run(
    ctx: &StepCtx,
    name: &str,
    run_id: &str,
    env: &EnvFn,
    options: &RequestOptions,
) -> Result<StepOutcome, StepError> {
    let Some(req) = ctx.plan.requests.iter().find(|r| r.name == name) else {
        return Err(StepError::Other(format!("no request `{name}` in the plan")));
    };
    let var = endpoint_variable(&req.endpoint);
    let Some(base) = env(&var).filter(|v| !v.trim().is_empty()) else {
        return Err(StepError::Other(format!(
            "request `{name}`: `{var}` is not set (the base URL of endpoint `{}`)",
            req.endpoint
        )));
    };
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        req.path.trim_start_matches('/')
    );
    let shown_url = redact_url(&url);

    // The rows.
    let qid = ctx.query_id(run_id, 0);
    ctx.queries.begin(&qid);
    let answer = async {
        let mut query = clickhouse_client(&ctx.config)
            .query_raw(&req.sql)
            .with_setting("query_id", &qid)
            // Pinned: with 1 (a server profile may set it) an error would come as a JSON row.
            .with_setting("http_write_exception_in_output_format", "0");
        for (k, v) in RESULT_SETTINGS {
            query = query.with_setting(*k, *v);
        }
        let cursor = query.fetch_bytes("JSONEachRow")?;
        // An exception ClickHouse writes into the body after the 200 is an error, never rows.
        Answer::new(cursor)
            .collect()
            .await
            .map_err(AnswerError::into_client_error)
    }
    .await;
    ctx.queries.end(&qid);
    let answer = answer.map_err(|e| {
        StepError::Other(format!(
            "request `{name}`: the query (query_id `{qid}`) failed, nothing was sent: {}",
            redact_text(e.to_string().trim())
        ))
    })?;
    let mut rows = Vec::new();
    for (i, line) in answer.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
            StepError::Other(format!(
                "request `{name}`: row {} of the query is not JSON: {e}",
                i + 1
            ))
        })?;
        rows.push(v);
    }
    if let Some(limit) = req.limit {
        rows.truncate(limit as usize);
    }
    let bodies = render_bodies(name, &req.body, &rows)?;
    let total = bodies.len() as u64;
    // Rows an earlier attempt of this fire delivered are not posted again.
    let mut earlier = ctx.delivered.accepted(ctx.idx, name);
    let mut skipped = 0u64;
    let mut pending = Vec::with_capacity(bodies.len());
    for body in bodies {
        let key: [u8; 32] = Sha256::digest(body.as_bytes()).into();
        match earlier.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                skipped += 1;
            }
            _ => pending.push((key, body)),
        }
    }

    // The POSTs.
    let http = reqwest::Client::builder()
        .connect_timeout(options.timeout)
        // A 301/302 would turn the POST into a GET without its body and still look sent.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StepError::Http(format!("request `{name}`: {e}")))?;
    let http = Arc::new(http);
    let pace = req.rate_per_sec.map(Pace::new);
    let pace = pace.as_ref();
    let results: Vec<Result<(), String>> = stream::iter(pending)
        .map(|(key, body)| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let r = post(&http, &url, body, options, pace).await;
                if r.is_ok() {
                    ctx.delivered.record(ctx.idx, name, key);
                }
                r
            }
        })
        .buffer_unordered(req.concurrency.max(1) as usize)
        .collect()
        .await;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let sent = results.len() as u64 - failed.len() as u64;
    let pct = if total == 0 {
        0.0
    } else {
        failed.len() as f64 * 100.0 / total as f64
    };
    info!(request = name, url = %shown_url, total, sent, already_delivered = skipped, failed = failed.len(), "requests done");
    if !failed.is_empty() {
        let first = failed[0];
        if pct > req.max_failures_pct {
            let earlier = if skipped > 0 {
                format!(", {skipped} accepted by an earlier attempt of this fire (not sent again)")
            } else {
                String::new()
            };
            return Err(StepError::Http(format!(
                "request `{name}`: {} of {total} POSTs to {shown_url} failed ({pct:.1}%, more than max-failures {}%), {sent} sent{earlier}; first error: {first}",
                failed.len(),
                req.max_failures_pct
            )));
        }
        warn!(request = name, failed = failed.len(), total, first_error = %first, "some POSTs failed (within max-failures)");
    }
    Ok(StepOutcome {
        rows: Some(sent),
        ..Default::default()
    })
}

/// Spaces the starts of a step's POSTs, every try, at least `1 / rate` seconds apart, across
/// its concurrent POSTs.
struct Pace(tokio::sync::Mutex<tokio::time::Interval>);

impl Pace {
    fn new(rate_per_sec: f64) -> Pace {
        let period = Duration::from_secs_f64(1.0 / rate_per_sec.clamp(0.001, 1000.0));
        let mut i = tokio::time::interval(period);
        // A slow POST does not earn a burst afterwards.
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pace(tokio::sync::Mutex::new(i))
    }

    async fn wait(&self) {
        self.0.lock().await.tick().await;
    }
}

/// One POST with retries; the error says what the last try got.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: String,
    options: &RequestOptions,
    pace: Option<&Pace>,
) -> Result<(), String> {
    let mut delay = options.backoff;
    let mut last = String::new();
    let attempts = options.attempts.max(1);
    for attempt in 1..=attempts {
        if let Some(p) = pace {
            p.wait().await;
        }
        let r = http
            .post(url)
            .timeout(options.timeout)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if resp.status().is_redirection() => {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(redact_url)
                    .unwrap_or_else(|| "nowhere".into());
                return Err(format!(
                    "HTTP {}: the endpoint redirects to {location}; redirects are not followed (a POST \
                     must reach the endpoint itself): point STIR_ENDPOINT_<NAME> at the new address",
                    resp.status().as_u16()
                ));
            }
            Ok(resp) => {
                let status = resp.status();
                let text: String = resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                last = format!("HTTP {}: {}", status.as_u16(), text.trim());
                if status.is_client_error() && status.as_u16() != 429 {
                    return Err(last);
                }
            }
            Err(e) if e.is_timeout() => last = format!("timed out after {:?}", options.timeout),
            Err(e) => last = crate::config::error_causes(&e.without_url()),
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(format!("{last} (after {attempts} tries)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names() {
        assert_eq!(endpoint_variable("beat"), "STIR_ENDPOINT_BEAT");
        assert_eq!(endpoint_variable("my-api"), "STIR_ENDPOINT_MY_API");
    }

    #[test]
    fn bodies_escape_strings_for_json() {
        let rows = vec![
            serde_json::json!({"shortcode": "ab\"c\\d", "n": 5}),
            serde_json::json!({"shortcode": "x\ny", "n": 18446744073709551615u64}),
        ];
        let bodies = render_bodies(
            "t",
            "{\"s\": \"{{ row.shortcode }}\", \"n\": {{ row.n }}}",
            &rows,
        )
        .unwrap();
        for (b, r) in bodies.iter().zip(&rows) {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(v["s"], r["shortcode"]);
            assert_eq!(v["n"], r["n"]);
        }
        let nulls = render_bodies(
            "t",
            "{\"s\": {{ row.s }}, \"n\": {{ row.n }}}",
            &[serde_json::json!({"s": null, "n": null})],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&nulls[0]).unwrap();
        assert_eq!(v, serde_json::json!({"s": null, "n": null}), "{}", nulls[0]);
        let err = render_bodies("t", "{{ row.missing }}", &rows).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }
}
