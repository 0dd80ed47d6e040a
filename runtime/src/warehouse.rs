//! ClickHouse: every statement carries a query_id, so a timed-out run can be killed by id.

use crate::config::Config;

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
}

/// A ClickHouse client with the runtime's connection settings (shared by statements and syncs).
pub fn clickhouse_client(config: &Config) -> clickhouse::Client {
    let mut client = clickhouse::Client::default().with_url(&config.clickhouse_url);
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
        }
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
        let mut cursor = self
            .client
            .query_raw(sql)
            .with_setting("query_id", query_id)
            .fetch_bytes("TabSeparated")
            .map_err(|e| query_error(query_id, e))?;
        let bytes = cursor
            .collect()
            .await
            .map_err(|e| query_error(query_id, e))?;
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
        let sql = format!(
            "KILL QUERY WHERE query_id = '{}' ASYNC",
            escape_literal(query_id)
        );
        self.execute(&sql, kill_id).await
    }

    /// Tables named `*__stir_new` in `database`: what a crashed build left behind.
    pub async fn leftovers(
        &self,
        database: &str,
        query_id: &str,
    ) -> Result<Vec<String>, WarehouseError> {
        let sql = format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND endsWith(name, '__stir_new') ORDER BY name",
            escape_literal(database)
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

fn query_error(query_id: &str, e: clickhouse::error::Error) -> WarehouseError {
    let mut message = e.to_string().trim().to_string();
    // The crate says only "network error: client error (Connect)"; say what to check.
    if matches!(e, clickhouse::error::Error::Network(_)) {
        message.push_str(" (is ClickHouse reachable at STIR_CLICKHOUSE_URL?)");
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

/// Escape for a single-quoted ClickHouse string literal.
pub fn escape_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Quote an identifier with backticks.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
