//! ClickHouse: every statement carries a query_id, so a timed-out run can be killed by id.
//!
//! Streamed answers are read through [`Answer`]: a query that fails after ClickHouse has sent
//! the 200 and part of the body writes its exception into the body (docs/servers.md, "errors
//! in the middle of an answer"), and that text must be an error, never rows.

use std::time::Duration;

use bytes::Bytes;
use clickhouse::query::BytesCursor;

use crate::config::Config;
use stir_plan::quote::{ch_escape, ch_ident};

/// `KILL QUERY [ON CLUSTER c] WHERE cond ASYNC`.
pub fn kill_sql(cond: &str, cluster: Option<&str>) -> String {
    let on = cluster
        .map(|c| format!(" ON CLUSTER {}", ch_ident(c)))
        .unwrap_or_default();
    format!("KILL QUERY{on} WHERE {cond} ASYNC")
}

/// A failed ClickHouse call, with the statement's query_id.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WarehouseError {
    #[error("query `{query_id}` failed: {message}")]
    Query { query_id: String, message: String },
    #[error("query `{query_id}` answered `{answer}`, expected {expected}")]
    Unexpected {
        query_id: String,
        answer: String,
        expected: &'static str,
    },
}

/// A cheap-to-clone ClickHouse client (the HTTP interface).
#[derive(Clone)]
pub struct Warehouse {
    client: clickhouse::Client,
    /// The plan's cluster: kills then reach every replica (`ON CLUSTER`).
    cluster: Option<String>,
}

/// A ClickHouse client with the runtime's connection settings (shared by statements and syncs).
pub fn clickhouse_client(config: &Config) -> clickhouse::Client {
    let base = if crate::tls::is_https(&config.clickhouse_url) {
        match &config.clickhouse_tls {
            Some(tls) => crate::tls::clickhouse_https_client(tls),
            None => match crate::tls::clickhouse_tls(None) {
                Ok(tls) => crate::tls::clickhouse_https_client(&tls),
                Err(e) => {
                    // No CA to check the server against: every query fails (closed).
                    tracing::error!(error = %e, "ClickHouse over https: no trusted CA");
                    clickhouse::Client::default()
                }
            },
        }
    } else {
        clickhouse::Client::default()
    };
    let mut client = base.with_url(&config.clickhouse_url);
    if let Some(user) = &config.clickhouse_user {
        client = client.with_user(user);
    }
    if let Some(password) = &config.clickhouse_password {
        client = client.with_password(password);
    }
    for (k, v) in &config.clickhouse_settings {
        client = client.with_setting(k, v);
    }
    client.with_compression(if config.clickhouse_lz4 {
        clickhouse::Compression::Lz4
    } else {
        clickhouse::Compression::None
    })
}

impl Warehouse {
    pub fn new(config: &Config) -> Warehouse {
        Warehouse {
            client: clickhouse_client(config),
            cluster: None,
        }
    }

    /// Kills (and their checks) reach every replica of `cluster`.
    pub fn with_cluster(mut self, cluster: Option<String>) -> Warehouse {
        self.cluster = cluster;
        self
    }

    /// Run one statement; the SQL is sent verbatim (no `?` placeholders).
    pub async fn execute(&self, sql: &str, query_id: &str) -> Result<(), WarehouseError> {
        self.client
            .query_raw(sql)
            .with_setting("query_id", query_id)
            .execute()
            .await
            .map_err(|e| query_error(query_id, e))
    }

    /// Run a query and return its answer as TabSeparated text.
    pub async fn text(&self, sql: &str, query_id: &str) -> Result<String, WarehouseError> {
        let cursor = self
            .client
            .query_raw(sql)
            .with_setting("query_id", query_id)
            .fetch_bytes("TabSeparated")
            .map_err(|e| query_error(query_id, e))?;
        let bytes = Answer::new(cursor)
            .collect()
            .await
            .map_err(|e| query_error(query_id, e.into_client_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A query answering one number (`EXISTS TABLE`, `count()`).
    pub async fn number(&self, sql: &str, query_id: &str) -> Result<u64, WarehouseError> {
        let text = self.text(sql, query_id).await?;
        text.trim().parse().map_err(|_| WarehouseError::Unexpected {
            query_id: query_id.to_string(),
            answer: text.trim().chars().take(200).collect(),
            expected: "one number",
        })
    }

    /// `KILL QUERY` by id. ClickHouse answers even when the query already ended.
    pub async fn kill(&self, query_id: &str, kill_id: &str) -> Result<(), WarehouseError> {
        let sql = kill_sql(
            &format!("query_id = '{}'", ch_escape(query_id)),
            self.cluster.as_deref(),
        );
        self.execute(&sql, kill_id).await
    }

    /// Kill every query whose id starts with `prefix` (every query of a run starts with its
    /// run id), on every replica, and wait until none is left, up to `wait`. `Ok` only when
    /// ClickHouse confirms that none runs: the caller may then start what must not overlap.
    pub async fn kill_prefix(
        &self,
        prefix: &str,
        kill_id: &str,
        wait: std::time::Duration,
    ) -> Result<(), WarehouseError> {
        let cond = format!("startsWith(query_id, '{}')", ch_escape(prefix));
        let cluster = self.cluster.as_deref();
        self.execute(&kill_sql(&cond, cluster), kill_id).await?;
        let processes = match cluster {
            Some(c) => format!("clusterAllReplicas('{}', system.processes)", ch_escape(c)),
            None => "system.processes".to_string(),
        };
        let count = format!("SELECT count() FROM {processes} WHERE {cond}");
        let until = tokio::time::Instant::now() + wait;
        let mut n = 0;
        loop {
            let left = self.number(&count, &format!("{kill_id}-check-{n}")).await?;
            if left == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(WarehouseError::Unexpected {
                    query_id: kill_id.to_string(),
                    answer: left.to_string(),
                    expected: "no query left running after KILL QUERY",
                });
            }
            n += 1;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Tables named `*__stir_new` in `database`: what a crashed build left behind.
    pub async fn leftovers(
        &self,
        database: &str,
        query_id: &str,
    ) -> Result<Vec<String>, WarehouseError> {
        let sql = format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND endsWith(name, '__stir_new') ORDER BY name",
            ch_escape(database)
        );
        let text = self.text(&sql, query_id).await?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    pub async fn ping(&self) -> Result<(), WarehouseError> {
        self.number("SELECT 1", "stir-ping").await.map(|_| ())
    }
}

/// The most of an exception block [`Answer`] reads (ClickHouse caps the block at 16 KiB).
const MAX_EXCEPTION_BLOCK: usize = 64 * 1024;
/// How long [`Answer`] waits for the rest of an exception block before it reports what it has.
const EXCEPTION_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MARKER: &[u8] = b"__exception__\r\n";

/// Why a streamed answer could not be read.
#[derive(Debug)]
pub enum AnswerError {
    /// ClickHouse's exception, found in the body after the answer had started.
    Exception(String),
    /// What the `clickhouse` crate reported before the body (a 500) or a network error. (The
    /// crate recognises the block itself when it arrives whole with its
    /// `X-ClickHouse-Exception-Tag`; that is an `Exception` here too.)
    Client(clickhouse::error::Error),
}

impl AnswerError {
    /// As the crate's error (an exception becomes `BadResponse`, like the crate's own finding).
    pub fn into_client_error(self) -> clickhouse::error::Error {
        match self {
            AnswerError::Exception(m) => clickhouse::error::Error::BadResponse(format!(
                "ClickHouse failed after the answer had started: {m}"
            )),
            AnswerError::Client(e) => e,
        }
    }
}

/// A streamed answer in TabSeparated or JSONEachRow. Both escape control characters, so a raw
/// carriage return never belongs to a row: it starts ClickHouse's exception block
/// (`\r\n__exception__\r\n<tag>\r\n<message>\n<length> <tag>\r\n__exception__\r\n`). The chunk
/// holding it is never handed out, so not even the rows before it in that chunk are used.
/// This does not depend on the block arriving in one piece or on the tag header, which the
/// crate's own check needs (a proxy may re-chunk the body or drop the header).
pub struct Answer {
    cursor: BytesCursor,
    /// Some of the body has arrived (so a `BadResponse` now is the crate's find of the block).
    started: bool,
}

impl Answer {
    pub fn new(cursor: BytesCursor) -> Answer {
        Answer {
            cursor,
            started: false,
        }
    }

    /// The next chunk of the answer; `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, AnswerError> {
        let chunk = match self.cursor.next().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(clickhouse::error::Error::BadResponse(m)) if self.started => {
                return Err(AnswerError::Exception(m))
            }
            Err(e) => return Err(AnswerError::Client(e)),
        };
        self.started = true;
        match memchr::memchr(b'\r', &chunk) {
            None => Ok(Some(chunk)),
            Some(at) => Err(AnswerError::Exception(
                self.exception(chunk[at..].to_vec()).await,
            )),
        }
    }

    /// The whole answer.
    pub async fn collect(mut self) -> Result<Bytes, AnswerError> {
        let mut all = Vec::new();
        while let Some(c) = self.next().await? {
            all.extend_from_slice(&c);
        }
        Ok(Bytes::from(all))
    }

    /// Read the rest of the block (ClickHouse then cuts the connection) and answer its message.
    async fn exception(&mut self, mut block: Vec<u8>) -> String {
        while block.len() < MAX_EXCEPTION_BLOCK && exception_message(&block).is_none() {
            match tokio::time::timeout(EXCEPTION_READ_TIMEOUT, self.cursor.next()).await {
                Ok(Ok(Some(c))) => {
                    let room = MAX_EXCEPTION_BLOCK - block.len();
                    block.extend_from_slice(&c[..c.len().min(room)]);
                }
                // The crate found the end of the block in this piece: its message is whole.
                Ok(Err(clickhouse::error::Error::BadResponse(m))) => return m,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
        exception_message(&block).unwrap_or_else(|| partial_exception(&block))
    }
}

/// The message of a complete exception block at the start of `block` (from its `\r`).
fn exception_message(block: &[u8]) -> Option<String> {
    let start = memchr::memmem::find(block, MARKER)? + MARKER.len();
    let rest = &block[start..];
    let tag_end = memchr::memmem::find(rest, b"\r\n")?;
    let tag = &rest[..tag_end];
    let body = &rest[tag_end + 2..];
    // `<message>\n<length> <tag>\r\n__exception__\r\n`: the length is what makes it exact.
    let mut end = Vec::with_capacity(tag.len() + MARKER.len() + 3);
    end.push(b' ');
    end.extend_from_slice(tag);
    end.extend_from_slice(b"\r\n");
    end.extend_from_slice(MARKER);
    let at = memchr::memmem::rfind(body, &end)?;
    let digits_from = memchr::memrchr(b'\n', &body[..at]).map_or(0, |i| i + 1);
    let len: usize = std::str::from_utf8(&body[digits_from..at])
        .ok()?
        .parse()
        .ok()?;
    let message = body.get(digits_from.checked_sub(len)?..digits_from)?;
    Some(String::from_utf8_lossy(message).trim().to_string())
}

/// What can be said of a block that did not arrive whole (or of a stray carriage return).
fn partial_exception(block: &[u8]) -> String {
    match memchr::memmem::find(block, MARKER) {
        Some(i) => {
            let rest = &block[i + MARKER.len()..];
            let body = memchr::memmem::find(rest, b"\r\n").map_or(&[][..], |t| &rest[t + 2..]);
            let text = String::from_utf8_lossy(body);
            format!(
                "{} (the exception block was cut short)",
                text.trim().chars().take(16 * 1024).collect::<String>()
            )
        }
        // Not a block: no row value is quoted, the answer is refused as a whole.
        None => "the answer holds a raw carriage return, which ClickHouse never writes in \
                 TabSeparated or JSONEachRow (unless `output_format_tsv_crlf_end_of_line` is \
                 set): the answer is corrupt, or not ClickHouse's, and is refused"
            .to_string(),
    }
}

fn query_error(query_id: &str, e: clickhouse::error::Error) -> WarehouseError {
    let mut message = e.to_string().trim().to_string();
    // The crate says only "network error: client error (Connect)": add the causes (a TLS
    // refusal is among them) and say what to check.
    if matches!(e, clickhouse::error::Error::Network(_)) {
        message = crate::config::error_causes(&e);
        message.push_str(match crate::tls::certificate_problem(&message) {
            Some(crate::tls::CertProblem::UnknownIssuer) => {
                "\nhelp: the server's certificate is not signed by a CA the runtime trusts: set \
                 STIR_CLICKHOUSE_CA to the CA's certificate file (PEM)"
            }
            Some(crate::tls::CertProblem::WrongName) => {
                "\nhelp: the server's certificate does not name the URL's host: use a host name \
                 it holds in STIR_CLICKHOUSE_URL"
            }
            None => " (is ClickHouse reachable at STIR_CLICKHOUSE_URL?)",
        });
    }
    // UNKNOWN_TABLE: on a new warehouse, or for a new model, the table another schedule
    // builds may not exist yet.
    if message.contains("Code: 60.") {
        message.push_str(
            "\nhelp: if the table is a model another schedule builds, it may not exist yet; \
             `stir-runtime plan.json --bootstrap` builds every missing model",
        );
    }
    WarehouseError::Query {
        query_id: query_id.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_reach_every_replica_of_the_plans_cluster() {
        assert_eq!(
            kill_sql("startsWith(query_id, 'd-1-')", None),
            "KILL QUERY WHERE startsWith(query_id, 'd-1-') ASYNC"
        );
        assert_eq!(
            kill_sql("query_id = 'q'", Some("main`x")),
            "KILL QUERY ON CLUSTER `main\\`x` WHERE query_id = 'q' ASYNC"
        );
    }

    /// ClickHouse 26.9's block, as its HTTP docs show it.
    fn block(message: &str, tag: &str) -> Vec<u8> {
        format!(
            "\r\n__exception__\r\n{tag}\r\n{message}\n{} {tag}\r\n__exception__\r\n",
            message.len() + 1
        )
        .into_bytes()
    }

    #[test]
    fn the_exception_block_gives_clickhouse_s_message() {
        let msg = "Code: 395. DB::Exception: cut short: while executing 'FUNCTION throwIf(...)'. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 26.9.2.1)";
        let b = block(msg, "abcdefghijklmnop");
        assert_eq!(exception_message(&b).as_deref(), Some(msg));
        // A message holding newlines and text like the block's own lines.
        let tricky = "Code: 1. DB::Exception: a\nb\n12 abcdefghijklmnop\r\n__exception__ c";
        let b = block(tricky, "abcdefghijklmnop");
        assert_eq!(exception_message(&b).as_deref(), Some(tricky));
        // Not whole yet: no message until the end arrives; then what there is, marked.
        let cut = &b[..b.len() - 5];
        assert_eq!(exception_message(cut), None);
        assert!(
            partial_exception(cut).contains("cut short"),
            "{}",
            partial_exception(cut)
        );
        assert!(partial_exception(b"\rrow").contains("raw carriage return"));
    }

    #[test]
    fn an_unknown_table_points_at_bootstrap() {
        let e = query_error(
            "q1",
            clickhouse::error::Error::BadResponse(
                "Code: 60. DB::Exception: Unknown table expression identifier 'dbt.mart_x'".into(),
            ),
        );
        let shown = e.to_string();
        assert!(
            shown.contains("Unknown table") && shown.contains("--bootstrap"),
            "{shown}"
        );
        let other = query_error(
            "q2",
            clickhouse::error::Error::BadResponse("Code: 62. DB::Exception: Syntax error".into()),
        )
        .to_string();
        assert!(!other.contains("--bootstrap"), "{other}");
    }
}
