//! `nacre bulk link`, `status` and `rollback`: the requests, and how loads print.

use super::args::{BulkCommand, VerifyArg};
use super::command::{CliError, Outcome};
use super::render::Format;
use super::time::rfc3339_millis;
use nacre_wire::{BulkLoadInfo, BulkMode, Client, LinkVerify};
use serde_json::json;
use std::io::Write;

/// Runs a bulk command that talks to the server.
pub async fn run(client: &Client, command: BulkCommand, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (loads, format) = match command {
        BulkCommand::Link(args) => {
            let dir = std::path::absolute(&args.dir)?;
            let verify = match args.verify {
                VerifyArg::Full => LinkVerify::Full,
                VerifyArg::Checksums => LinkVerify::Checksums,
            };
            (vec![client.bulk_link_verified(&dir.to_string_lossy(), verify).await?], args.output)
        }
        BulkCommand::Status { load, output } => (client.bulk_status(load).await?, output),
        BulkCommand::Rollback { load, output } => (vec![client.bulk_rollback(load).await?], output),
        BulkCommand::Build(_) => unreachable!("bulk build runs offline, before connecting"),
    };
    let format = if format.json { Format::Json } else { Format::Table };
    out.write_all(render(format, &loads).as_bytes())?;
    Ok(Outcome::Done)
}

fn mode(m: BulkMode) -> &'static str {
    match m {
        BulkMode::Merge => "merge",
        BulkMode::Replace => "replace",
    }
}

/// Loads, one per line: a table, or JSON lines.
pub fn render(format: Format, loads: &[BulkLoadInfo]) -> String {
    let mut out = String::new();
    for l in loads {
        let line = match format {
            Format::Json => json!({
                "load_id": l.load_id,
                "table": l.table,
                "mode": mode(l.mode),
                "snapshot_ms": l.snapshot_ms,
                "state": l.state.name(),
                "dir": l.dir,
                "files": l.files,
                "bytes": l.bytes,
                "entries": l.entries,
                "changed_at": rfc3339_millis(l.changed_at_ms),
                "note": l.note,
                "validate_ms": l.validate_ms,
                "prepare_ms": l.prepare_ms,
                "commit_ms": l.commit_ms,
            })
            .to_string(),
            Format::Table => {
                let mut line = format!(
                    "load {} {}: table {} {} at {} — {} files, {} bytes, {} entries, since {}",
                    l.load_id,
                    l.state.name(),
                    l.table,
                    mode(l.mode),
                    rfc3339_millis(l.snapshot_ms),
                    l.files,
                    l.bytes,
                    l.entries,
                    rfc3339_millis(l.changed_at_ms),
                );
                if l.validate_ms + l.prepare_ms + l.commit_ms > 0 {
                    line.push_str(&format!(
                        " (validate {} ms, prepare {} ms, commit {} ms)",
                        l.validate_ms, l.prepare_ms, l.commit_ms
                    ));
                }
                if let Some(note) = &l.note {
                    line.push_str(&format!(" [{note}]"));
                }
                line
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
