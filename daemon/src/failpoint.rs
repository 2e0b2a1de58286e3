//! Failpoints for crash tests: `NACRE_FAILPOINT=<name>` in nacred's environment makes the
//! process kill itself with SIGKILL when it reaches the step of that name, exactly as a crash
//! there would. Unset (always, outside tests), a failpoint is one environment lookup. The names
//! are listed where they are hit (`bulk_link.rs`).

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
