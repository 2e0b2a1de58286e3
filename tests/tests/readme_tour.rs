//! README's "Run it" section, run as written: every `nacre` command of its client block, in
//! order, against a fresh daemon (the block's `cargo run ... --bin nacre --` stands for the
//! built `nacre`, pointed at the test's daemon). Each must exit 0, and what they print must be
//! what the section promises: the value back as JSON, its history, and `explain`'s verdict. A
//! command added to, or changed in, the README is run here too.

use nacre_tests::server::{Server, nacre_binary};
use std::process::Command;
use std::time::Duration;

const CLI_PREFIX: &str = "cargo run --release -p nacre-cli --bin nacre -- ";

/// The shell lines of the `sh` blocks in README's "Run it" section that run the CLI.
fn tour_commands(readme: &str) -> Vec<String> {
    let section = readme.split("\n## Run it\n").nth(1).expect("README has a \"Run it\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in section.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            command if in_sh && command.starts_with(CLI_PREFIX) => commands.push(command.to_owned()),
            _ => {}
        }
    }
    commands
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = include_str!("../../README.md");
    let commands = tour_commands(readme);
    assert!(commands.len() >= 5, "the tour's client block has its commands: {commands:?}");
    let server = Server::start();
    let nacre = format!("{} --addr {}", nacre_binary().display(), server.addr());
    let mut printed = Vec::new();
    for command in &commands {
        let line = command.replacen(CLI_PREFIX, &format!("{nacre} "), 1);
        let out = nacre_tests::program::run(Command::new("bash").args(["-c", &line]), b"", Duration::from_secs(60));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README's `{command}` failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push((command.clone(), stdout));
    }
    let output_of = |verb: &str| {
        printed
            .iter()
            .find(|(command, _)| command[CLI_PREFIX.len()..].starts_with(verb))
            .map(|(_, out)| out.as_str())
            .unwrap_or_else(|| panic!("the tour has no `nacre {verb}`"))
    };
    let got: serde_json::Value = serde_json::from_str(output_of("get").trim()).expect("get --json prints JSON");
    assert_eq!(got["value"], r#"{"tier":"gold"}"#, "{got}");
    assert!(output_of("versions").contains("direct/"), "versions lists the put with its origin");
    assert!(output_of("explain").contains("verdict: visible"), "explain: {}", output_of("explain"));
}

#[test]
fn the_tour_extractor_finds_only_the_client_commands() {
    let readme = "# x\n\n## Run it\n\n```sh\ncargo run --release -p nacre-daemon --bin nacred -- --data-dir d\n```\n\n\
                  ```sh\ncargo run --release -p nacre-cli --bin nacre -- table create t\n```\n\n## Next\n\n\
                  ```sh\ncargo run --release -p nacre-cli --bin nacre -- get t k\n```\n";
    assert_eq!(tour_commands(readme), ["cargo run --release -p nacre-cli --bin nacre -- table create t"]);
}
