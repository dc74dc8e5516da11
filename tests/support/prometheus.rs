//! A private Prometheus server for a test: Debian's `prometheus` scraping one target every
//! second, with exemplar storage on, in a fresh directory, killed when dropped. A missing
//! server fails with instructions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/bin/prometheus";

pub struct PrometheusServer {
    pub address: String,
    dir: PathBuf,
    child: Child,
}

use super::free_port;

fn missing() -> String {
    format!(
        "Prometheus is not installed ({BINARY} missing): install Debian's prometheus \
         (`apt-get install -y prometheus`; scripts/test does it when it is missing)"
    )
}

/// `promtool`, beside the server.
pub fn promtool() -> Command {
    assert!(PathBuf::from("/usr/bin/promtool").exists(), "{}", missing());
    Command::new("/usr/bin/promtool")
}

impl PrometheusServer {
    /// Starts a server scraping `target` (`host:port`, path `/metrics`) and waits until it is
    /// ready.
    pub async fn start(target: &str) -> Self {
        assert!(PathBuf::from(BINARY).exists(), "{}", missing());
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "hyperfleet-prometheus-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: component\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
        let server = Self {
            address,
            dir,
            child,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/-/ready", self.address);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Prometheus at {} was not ready within 30 s", self.address);
    }

    async fn api(&self, path: &str, query: &[(&str, String)]) -> serde_json::Value {
        let url = reqwest::Url::parse_with_params(
            &format!("http://{}/api/v1/{path}", self.address),
            query,
        )
        .unwrap();
        let response = reqwest::get(url).await.unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"].clone()
    }

    /// The value of an instant query that returns one series; `None` when it returns none.
    pub async fn value(&self, query: &str) -> Option<f64> {
        let data = self.api("query", &[("query", query.to_owned())]).await;
        let result = data["result"].as_array()?;
        let series = result.first()?;
        series["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query` returns `expected` (bounded), and returns what it returned last.
    pub async fn wait_for_value(&self, query: &str, expected: f64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.value(query).await;
            if value == Some(expected) || Instant::now() > deadline {
                return value;
            }
            // The next scrape comes within a second.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The `trace_id` label of every exemplar stored for `query` over the last hour.
    pub async fn exemplar_trace_ids(&self, query: &str) -> Vec<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let data = self
            .api(
                "query_exemplars",
                &[
                    ("query", query.to_owned()),
                    ("start", (now - 3600).to_string()),
                    ("end", (now + 60).to_string()),
                ],
            )
            .await;
        data.as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
