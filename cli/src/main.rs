//! `nacre`: the command-line client for `nacred`. See `nacre --help` and the `cli` module.

use clap::Parser;
use nacre_cli::{self as cli, Cli, Outcome};
use std::io::Write;

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nacre: cannot start the runtime: {e}");
            std::process::exit(cli::EXIT_ERROR);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let result = runtime.block_on(cli::run(cli, &mut stdout));
    let flushed = stdout.flush();
    let code = match (result, flushed) {
        (Ok(Outcome::Done), Ok(())) => cli::EXIT_OK,
        (Ok(Outcome::NotFound(message)), Ok(())) => {
            eprintln!("nacre: not found: {message}");
            cli::EXIT_NOT_FOUND
        }
        (Ok(Outcome::Incomplete(message)), Ok(())) => {
            eprintln!("nacre: incomplete: {message}");
            cli::EXIT_ERROR
        }
        (Err(e), _) => {
            eprintln!("nacre: {e}");
            cli::EXIT_ERROR
        }
        (Ok(_), Err(e)) => {
            eprintln!("nacre: writing output: {e}");
            cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
