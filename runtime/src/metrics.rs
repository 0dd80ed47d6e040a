//! `/healthz` and Prometheus `/metrics` on `--listen ADDR`: a tiny HTTP/1.1 responder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::executor::RunStatus;

#[derive(Default)]
struct Counters {
    runs: BTreeMap<(String, &'static str), u64>,
    duration_sum: BTreeMap<String, f64>,
    duration_count: BTreeMap<String, u64>,
    skipped: BTreeMap<(String, &'static str), u64>,
    /// Unix time of each model's last successful build, as the history shows it.
    model_success: BTreeMap<String, i64>,
}

/// Shared counters; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    counters: Arc<Mutex<Counters>>,
    leader: Arc<AtomicBool>,
    plan_hash: Arc<Mutex<String>>,
}

impl Metrics {
    pub fn new(plan_hash: &str) -> Metrics {
        let m = Metrics::default();
        if let Ok(mut h) = m.plan_hash.lock() {
            *h = plan_hash.to_string();
        }
        m
    }

    pub fn run_finished(&self, schedule: &str, status: RunStatus, took: Duration) {
        if let Ok(mut c) = self.counters.lock() {
            *c.runs
                .entry((schedule.to_string(), status.as_str()))
                .or_default() += 1;
            *c.duration_sum.entry(schedule.to_string()).or_default() += took.as_secs_f64();
            *c.duration_count.entry(schedule.to_string()).or_default() += 1;
        }
    }

    pub fn skipped(&self, schedule: &str, reason: &'static str) {
        if let Ok(mut c) = self.counters.lock() {
            *c.skipped.entry((schedule.to_string(), reason)).or_default() += 1;
        }
    }

    pub fn model_success(&self, model: &str, unix: i64) {
        if let Ok(mut c) = self.counters.lock() {
            c.model_success.insert(model.to_string(), unix);
        }
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let hash = self.plan_hash.lock().map(|h| h.clone()).unwrap_or_default();
        out.push_str(
            "# HELP stir_plan_info The plan this runtime runs.\n# TYPE stir_plan_info gauge\n",
        );
        out.push_str(&format!("stir_plan_info{{plan_hash=\"{hash}\"}} 1\n"));
        out.push_str("# HELP stir_leader 1 when this runtime holds the leader lock.\n# TYPE stir_leader gauge\n");
        out.push_str(&format!("stir_leader {}\n", u8::from(self.is_leader())));
        let Ok(c) = self.counters.lock() else {
            return out;
        };
        out.push_str("# HELP stir_runs_total Finished runs by schedule and status.\n# TYPE stir_runs_total counter\n");
        for ((s, st), n) in &c.runs {
            out.push_str(&format!(
                "stir_runs_total{{schedule=\"{}\",status=\"{st}\"}} {n}\n",
                label(s)
            ));
        }
        out.push_str("# HELP stir_run_duration_seconds Run durations (all attempts).\n# TYPE stir_run_duration_seconds summary\n");
        for (s, sum) in &c.duration_sum {
            let n = c.duration_count.get(s).copied().unwrap_or(0);
            out.push_str(&format!(
                "stir_run_duration_seconds_sum{{schedule=\"{}\"}} {sum:.3}\n",
                label(s)
            ));
            out.push_str(&format!(
                "stir_run_duration_seconds_count{{schedule=\"{}\"}} {n}\n",
                label(s)
            ));
        }
        out.push_str("# HELP stir_skipped_fires_total Fires that did not run, by reason.\n# TYPE stir_skipped_fires_total counter\n");
        for ((s, r), n) in &c.skipped {
            out.push_str(&format!(
                "stir_skipped_fires_total{{schedule=\"{}\",reason=\"{r}\"}} {n}\n",
                label(s)
            ));
        }
        out.push_str("# HELP stir_model_last_success_timestamp Unix time of the model's last successful build.\n# TYPE stir_model_last_success_timestamp gauge\n");
        for (m, t) in &c.model_success {
            out.push_str(&format!(
                "stir_model_last_success_timestamp{{model=\"{}\"}} {t}\n",
                label(m)
            ));
        }
        out
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Bind `addr` and serve until the task is dropped. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    info!(%local, "serving /healthz and /metrics");
    let task = tokio::spawn(async move {
        loop {
            let (mut sock, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while len < buf.len() {
                        match sock.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/healthz" => (
                        "200 OK",
                        "application/json",
                        format!("{{\"status\":\"ok\",\"leader\":{}}}\n", metrics.is_leader()),
                    ),
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_healthz_and_prometheus_metrics() {
        let m = Metrics::new("abc123");
        m.set_leader(true);
        m.run_finished("dbt_core", RunStatus::Ok, Duration::from_millis(1500));
        m.run_finished("dbt_core", RunStatus::Failed, Duration::from_millis(500));
        m.skipped("dbt_daily", "skipped_heavy");
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let client = reqwest::Client::new();
        let health = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(
            health.text().await.unwrap(),
            "{\"status\":\"ok\",\"leader\":true}\n"
        );
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in [
            "stir_plan_info{plan_hash=\"abc123\"} 1",
            "stir_leader 1",
            "stir_runs_total{schedule=\"dbt_core\",status=\"ok\"} 1",
            "stir_runs_total{schedule=\"dbt_core\",status=\"failed\"} 1",
            "stir_run_duration_seconds_sum{schedule=\"dbt_core\"} 2.000",
            "stir_run_duration_seconds_count{schedule=\"dbt_core\"} 2",
            "stir_skipped_fires_total{schedule=\"dbt_daily\",reason=\"skipped_heavy\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        let missing = client
            .get(format!("http://{addr}/nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        task.abort();
    }
}
