//! The HTTP endpoint (`--http-listen`, `[http] listen`; off by default): `/metrics` in the
//! OpenMetrics text format, `/health` (the process is alive) and `/ready` (recovery is done and
//! every shard serves). It runs on a thread of its own, never a shard's, and serves one request
//! at a time; `/metrics` asks shard 0 for every shard's statistics through
//! [`stats_bridge`], as a client's `Stats` does, and waits at most [`METRICS_TIMEOUT`].

pub mod exposition;
pub(crate) mod metric_catalog;
pub mod stats_bridge;

use crate::shard::Process;
use exposition::ProcessState;
use stats_bridge::StatsAsker;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The longest `/metrics` waits for the shards' statistics before answering 503.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// A running endpoint; [`HttpEndpoint::stop`] ends its thread.
pub struct HttpEndpoint {
    server: Arc<tiny_http::Server>,
    thread: std::thread::JoinHandle<()>,
}

impl HttpEndpoint {
    /// Binds `addr` (so a port in use stops the start here, with the address) and serves on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, process: Arc<Process>, asker: StatsAsker) -> anyhow::Result<HttpEndpoint> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("opening the HTTP endpoint on {addr} (http.listen): {e}"))?;
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || serve(&serving, &process, asker))
            .map_err(|e| anyhow::anyhow!("starting the HTTP thread: {e}"))?;
        tracing::info!(%addr, "HTTP endpoint: /metrics, /health, /ready");
        Ok(HttpEndpoint { server, thread })
    }

    /// Stops serving and waits for the thread.
    pub fn stop(self) {
        self.server.unblock();
        if self.thread.join().is_err() {
            tracing::error!("the HTTP thread panicked");
        }
    }
}

fn state(process: &Process) -> ProcessState {
    ProcessState {
        shards: process.shard_count,
        serving: process.serving.load(Ordering::SeqCst),
        stopping: process.stop.load(Ordering::SeqCst),
    }
}

fn serve(server: &tiny_http::Server, process: &Process, mut asker: StatsAsker) {
    while let Ok(request) = server.recv() {
        let (status, content_type, body) = answer(request.method(), request.url(), process, &mut asker);
        let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
        let response = tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "an HTTP client went away before its answer");
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Status, content type and body for one request.
fn answer(
    method: &tiny_http::Method,
    url: &str,
    process: &Process,
    asker: &mut StatsAsker,
) -> (u16, &'static str, String) {
    let path = url.split('?').next().unwrap_or(url);
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return (405, TEXT, format!("{method} is not served; use GET\n"));
    }
    let state = state(process);
    match path {
        "/health" => (200, TEXT, "alive\n".into()),
        "/ready" if state.ready() => (200, TEXT, "ready\n".into()),
        "/ready" if state.stopping => (503, TEXT, "not ready: stopping\n".into()),
        "/ready" => {
            (503, TEXT, format!("not ready: {} of {} shards have recovered and serve\n", state.serving, state.shards))
        }
        "/metrics" => {
            // Before every shard serves, only what the process knows of itself.
            let stats = if state.ready() {
                match asker.ask(METRICS_TIMEOUT) {
                    Ok(stats) => stats,
                    Err(e) => return (503, TEXT, format!("statistics unavailable: {e}\n")),
                }
            } else {
                Vec::new()
            };
            match exposition::encode(&stats, state) {
                Ok(text) => (200, exposition::CONTENT_TYPE, text),
                Err(e) => (500, TEXT, format!("encoding the metrics failed: {e}\n")),
            }
        }
        _ => (404, TEXT, "not found: the endpoint serves /metrics, /health and /ready\n".into()),
    }
}
