//! Plain HTTP GETs against the daemon's endpoint and Prometheus's API, by `ureq`: a status
//! other than 2xx is an answer to look at, not an error.

use std::net::SocketAddr;
use std::time::Duration;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body as text.
    pub body: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build().into()
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, String> {
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok(Answer { status, content_type, body })
}

/// `GET http://addr/path` with `query` parameters (encoded here); `Err` only when there was no
/// answer (refused, timed out).
pub fn get(addr: SocketAddr, path: &str, query: &[(&str, &str)]) -> Result<Answer, String> {
    let mut request = agent().get(format!("http://{addr}{path}"));
    for (k, v) in query {
        request = request.query(*k, *v);
    }
    answer(request.call())
}

/// `POST http://addr/path` with an empty body.
pub fn post(addr: SocketAddr, path: &str) -> Result<Answer, String> {
    answer(agent().post(format!("http://{addr}{path}")).send_empty())
}
