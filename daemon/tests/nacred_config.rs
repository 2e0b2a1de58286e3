//! `nacred`'s behaviour before it opens anything: `--print-default-config` prints a file that
//! is itself a valid configuration, and a configuration whose limits contradict each other is
//! refused at start with the settings at fault named, before a data directory is touched.
//! (Being an integration test of this package, this file also makes `cargo test --workspace`
//! build `nacred` before the end-to-end tests run.)

use std::process::Command;

fn nacred() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nacred"))
}

#[test]
fn the_printed_default_configuration_is_the_default_and_valid() {
    let output = nacred().arg("--print-default-config").output().expect("running nacred");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(printed, nacre_daemon::config::DEFAULT_CONFIG);
    let parsed = nacre_daemon::config::Config::from_toml(&printed).expect("the printed file parses");
    assert_eq!(parsed, nacre_daemon::config::Config::default());
    parsed.validate(1).expect("and is valid");
    for section in ["[limits]", "[memory]", "[wal]", "[resp]", "[kafka]"] {
        assert!(printed.contains(section), "{section} missing");
    }
}

#[test]
fn contradicting_limits_are_refused_at_start_naming_both_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("nacred.toml");
    std::fs::write(&config, "[limits]\nmax_batch_bytes = 1024\nmax_value_bytes = 4096\n").expect("write");
    let data = dir.path().join("data");
    let output = nacred()
        .args(["--config", &config.display().to_string(), "--data-dir", &data.display().to_string(), "--cores", "1"])
        .output()
        .expect("running nacred");
    assert!(!output.status.success(), "nacred started with a value limit over its batch limit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.max_value_bytes") && stderr.contains("limits.max_batch_bytes"), "{stderr}");
    assert!(!data.exists(), "the refused start made its data directory");
}
