//! Failpoints for crash tests: `NACRE_FAILPOINT=<name>` in nacred's environment makes the
//! process kill itself with SIGKILL when it reaches the step of that name, exactly as a crash
//! there would. Unset (always, outside tests), a failpoint is one environment lookup. The names
//! are listed where they are hit (`bulk_link.rs`). [`hold`] instead pauses a step while a file
//! exists (`shard.rs` holds `recovery`, before a shard opens its partitions).

/// The environment variable naming the failpoint to trip.
pub const ENV: &str = "NACRE_FAILPOINT";

/// Kills the process if `name` is the armed failpoint.
pub fn hit(name: &str) {
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        tracing::error!(failpoint = name, "failpoint reached: killing the process");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; this only runs if sending it failed.
        std::process::abort();
    }
}

/// The environment variable naming a step to hold at and the file that holds it:
/// `NACRE_HOLD=<name>:<path>`.
pub const HOLD_ENV: &str = "NACRE_HOLD";

/// Waits at step `name` while the file the hold names exists, if `name` is the held step: so a
/// test can look at the daemon mid-step (its readiness during recovery, say) and then let it
/// go on, without depending on how long the step takes. Unset, one environment lookup.
pub async fn hold(name: &str) {
    let Ok(armed) = std::env::var(HOLD_ENV) else { return };
    let Some((step, path)) = armed.split_once(':') else { return };
    if step != name {
        return;
    }
    tracing::warn!(step = name, file = path, "held at a step until the file is removed");
    while std::path::Path::new(path).exists() {
        glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
    }
}
