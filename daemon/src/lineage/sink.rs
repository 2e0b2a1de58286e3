//! Where the lineage writer thread delivers each event: appended as a JSON line to
//! `[lineage] file`, POSTed as JSON to `[lineage] url`, or both. Runs on the writer thread
//! alone, never on a shard; a POST waits at most `post_timeout_ms`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lineage file, opened for appending.
struct File {
    out: std::fs::File,
    path: PathBuf,
}

/// The lineage URL and the HTTP client that POSTs to it.
struct Post {
    agent: ureq::Agent,
    url: String,
}

/// Every destination of the events.
pub(crate) struct Sink {
    file: Option<File>,
    post: Option<Post>,
}

impl Sink {
    /// Opens `file` (created if missing; `None` for no file) here, so a bad path stops the
    /// start, and prepares the POSTs to `url` (`None` for none), each bounded by `timeout`.
    pub(crate) fn open(file: Option<&Path>, url: Option<&str>, timeout: Duration) -> anyhow::Result<Sink> {
        let file = match file {
            None => None,
            Some(path) => {
                let out = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
                    anyhow::anyhow!("cannot open the lineage file {} (lineage.file): {e}", path.display())
                })?;
                Some(File { out, path: path.to_path_buf() })
            }
        };
        let post = url.map(|url| Post {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(true)
                .build()
                .into(),
            url: url.to_owned(),
        });
        Ok(Sink { file, post })
    }

    /// Delivers one event (`line`: its JSON and a newline) everywhere; false if any destination
    /// refused it (logged).
    pub(crate) fn deliver(&mut self, line: &str) -> bool {
        let mut delivered = true;
        if let Some(file) = &mut self.file {
            let written = file.out.write_all(line.as_bytes()).and_then(|()| file.out.flush());
            if let Err(e) = written {
                tracing::warn!(file = %file.path.display(), error = %e, "a lineage event was not written");
                delivered = false;
            }
        }
        if let Some(post) = &self.post {
            let sent = post.agent.post(&post.url).content_type("application/json").send(line.trim_end());
            if let Err(e) = sent {
                tracing::warn!(url = %post.url, error = %e, "a lineage event was not posted");
                delivered = false;
            }
        }
        delivered
    }
}
