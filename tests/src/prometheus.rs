//! A real Prometheus server (Debian's `prometheus`) scraping a daemon's `/metrics`, and the
//! queries tests ask it through its HTTP API. [`Prometheus::wait_for`] is how a test waits for
//! a scrape without depending on timing: it polls a query until its value is the expected one,
//! for at most [`WAIT_TIMEOUT`].

use crate::http;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start, or a wait for a query's value, may take.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often Prometheus scrapes the target.
const SCRAPE_INTERVAL: &str = "1s";

/// A running Prometheus, killed when dropped.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping `target`'s `/metrics` every second,
    /// and waits until it is ready.
    ///
    /// # Panics
    ///
    /// If `prometheus` is not installed (`apt-get install prometheus`) or does not become ready.
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = crate::server::test_dir("prometheus-");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n\
                 scrape_configs:\n  - job_name: nacred\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let addr = crate::server::free_ports(0);
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("creating prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus (Debian package `prometheus`): {e}"));
        let prometheus = Prometheus { child, addr, log, _dir: dir };
        let deadline = Instant::now() + WAIT_TIMEOUT;
        while !http::get(addr, "/-/ready", &[]).is_ok_and(|a| a.status == 200) {
            assert!(Instant::now() < deadline, "prometheus did not become ready\n{}", prometheus.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// The value of the instant query `expr` when it gives exactly one sample, `None` when it
    /// gives none.
    ///
    /// # Panics
    ///
    /// If the query fails or gives more than one sample.
    pub fn scalar(&self, expr: &str) -> Option<f64> {
        let answer = http::get(self.addr, "/api/v1/query", &[("query", expr)])
            .unwrap_or_else(|e| panic!("querying {expr}: {e}"));
        assert_eq!(answer.status, 200, "query {expr}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("the API answers JSON");
        let result = json["data"]["result"].as_array().unwrap_or_else(|| panic!("no result for {expr}: {json}"));
        assert!(result.len() <= 1, "{expr} gives {} samples, not one: {json}", result.len());
        let value = result.first()?["value"][1].as_str().unwrap_or_else(|| panic!("no value for {expr}: {json}"));
        Some(value.parse().unwrap_or_else(|e| panic!("{expr}'s value {value:?}: {e}")))
    }

    /// Polls `expr` until `wanted` holds of its value, at most [`WAIT_TIMEOUT`]; the value.
    ///
    /// # Panics
    ///
    /// If it does not within the timeout (with the last value and Prometheus's log).
    pub fn wait_for(&self, expr: &str, what: &str, wanted: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let value = self.scalar(expr);
            if let Some(v) = value.filter(|v| wanted(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} is {value:?} after {WAIT_TIMEOUT:?}, not {what}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of Prometheus's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- prometheus log (tail) ---\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
