//! The runtime's HTTP side on `--listen ADDR`: `/healthz`, Prometheus `/metrics` and the
//! operations console ([`crate::console`]), on axum.

use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracing::{info, warn};

use std::sync::Arc;

use stir_plan::Plan;

use crate::config::Config;
use crate::console::Consoles;
use crate::history::PgHistory;
use crate::metrics::{Metrics, CONTENT_TYPE};
use crate::{Options, RuntimeError};

/// The routes: health and metrics always, the console when given.
pub fn router(metrics: Metrics, console: Option<Consoles>) -> Router {
    let health = {
        let m = metrics.clone();
        move || async move {
            let (plan, reload) = m.plan();
            let body = format!(
                "{{\"status\":\"ok\",\"leader\":{},\"plan_hash\":{},\"last_reload\":\"{}\"}}\n",
                m.is_leader(),
                serde_json::Value::from(plan),
                reload.as_str()
            );
            ([(header::CONTENT_TYPE, "application/json")], body)
        }
    };
    let scrape = move || async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()) };
    let base = Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(scrape));
    let app = match console {
        Some(c) => base.merge(crate::console::router(c)),
        None => base,
    };
    app.fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() })
}

/// Bind `addr` and serve until the task is dropped. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    console: Option<Consoles>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    info!(%local, console = console.is_some(), "serving /healthz, /metrics and the console");
    let app = router(metrics, console);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            warn!(error = %e, "the HTTP server stopped");
        }
    });
    Ok((local, task))
}

/// A console over `history` alone, outside a runtime, served on `addr`: its pages read; it is
/// no leader, so it starts no run. (The bench and tests; a browsing tool.)
pub async fn serve_history(
    addr: std::net::SocketAddr,
    plan: Arc<Plan>,
    config: Arc<Config>,
    history: Arc<PgHistory>,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), RuntimeError> {
    let metrics = Metrics::new(&plan.plan_hash);
    let console = crate::console::Console::new(crate::console::Setup {
        plan,
        config,
        history,
        metrics: metrics.clone(),
        options: Options::default(),
        instance: crate::run::instance_id(),
        // Nothing stops it but dropping its task.
        stop: tokio_util::sync::CancellationToken::new(),
    })?;
    serve(addr, metrics, Some(console.into()))
        .await
        .map_err(|e| RuntimeError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunStatus;
    use std::time::Duration;

    /// The value of the sample `name` in an exposition, if it is there.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[tokio::test]
    async fn serves_healthz_and_every_documented_metric() {
        let m = Metrics::new("abc123");
        m.set_leader(true);
        m.run_finished("dbt_core", RunStatus::Ok, Duration::from_millis(1500));
        m.run_finished("dbt_core", RunStatus::Failed, Duration::from_millis(500));
        m.skipped("dbt_daily", "skipped_heavy");
        m.model_success("stg_events", 1_767_225_600);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m, None)
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let health = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(
            health.text().await.unwrap(),
            "{\"status\":\"ok\",\"leader\":true,\"plan_hash\":\"abc123\",\"last_reload\":\"none\"}\n"
        );
        let resp = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert!(resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let text = resp.text().await.unwrap();
        // Every name and label docs/operations.md lists.
        for (name, want) in [
            ("stir_plan_info{plan_hash=\"abc123\"}", 1.0),
            ("stir_leader", 1.0),
            ("stir_runs_total{schedule=\"dbt_core\",status=\"ok\"}", 1.0),
            (
                "stir_runs_total{schedule=\"dbt_core\",status=\"failed\"}",
                1.0,
            ),
            ("stir_run_duration_seconds_sum{schedule=\"dbt_core\"}", 2.0),
            (
                "stir_run_duration_seconds_count{schedule=\"dbt_core\"}",
                2.0,
            ),
            (
                "stir_skipped_fires_total{schedule=\"dbt_daily\",reason=\"skipped_heavy\"}",
                1.0,
            ),
            (
                "stir_model_last_success_timestamp{model=\"stg_events\"}",
                1_767_225_600.0,
            ),
        ] {
            assert_eq!(sample(&text, name), Some(want), "`{name}` in\n{text}");
        }
        let missing = client
            .get(format!("http://{addr}/nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        task.abort();
    }

    #[tokio::test]
    async fn label_values_are_escaped() {
        let m = Metrics::new("h");
        m.skipped("we\"ird\\name", "missed");
        let text = m.render();
        assert!(
            text.contains(
                r#"stir_skipped_fires_total{schedule="we\"ird\\name",reason="missed"} 1"#
            ),
            "{text}"
        );
    }
}
