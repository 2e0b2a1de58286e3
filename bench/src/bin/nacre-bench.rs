//! `nacre-bench`: Nacre's comparisons against its peers. `nacre-bench compare` runs each
//! section side by side with its peer in one run, interleaving rounds (peer, then Nacre), and
//! writes `report.md` and `report.json`. It reports; it asserts no speed.

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use nacre_bench::compare::SectionName;
use nacre_bench::compare::context::Context;
use nacre_bench::compare::report::{self, Report};
use nacre_bench::process::sibling_binary;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Parser, Debug)]
#[command(name = "nacre-bench", about = "Nacre against its peers, side by side, in one run")]
struct Args {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Runs the comparisons and writes report.md and report.json.
    Compare(CompareArgs),
}

#[derive(Parser, Debug)]
struct CompareArgs {
    /// Short runs on small data, one round: a first look, and CI's check that every section runs.
    #[arg(long)]
    quick: bool,
    /// Interleaved rounds per figure; default 1 with --quick, 3 otherwise.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=20))]
    rounds: Option<u64>,
    /// Sections to run, comma-separated; default: all.
    #[arg(long, value_enum, value_delimiter = ',')]
    sections: Vec<SectionName>,
    /// Where report.md and report.json go (created if missing).
    #[arg(long, default_value = "nacre-bench-report")]
    out: PathBuf,
    /// Scratch space for the servers' data (ext4 or xfs: nacred needs O_DIRECT); emptied first.
    #[arg(long, default_value = "/var/tmp/nacre-bench-compare")]
    work: PathBuf,
    /// Seed for every loadgen run; default: random (written in the report).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() {
    let Commands::Compare(args) = Args::parse().command;
    if let Err(e) = compare(&args) {
        eprintln!("nacre-bench: {e:#}");
        std::process::exit(1);
    }
}

fn compare(args: &CompareArgs) -> Result<()> {
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work).with_context(|| format!("creating {}", args.work.display()))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let rounds = args.rounds.map_or(if args.quick { 1 } else { 3 }, |r| usize::try_from(r).expect("at most 20"));
    let ctx = Context {
        quick: args.quick,
        rounds,
        nacred: sibling_binary("nacred", "nacre-daemon")?,
        nacre: sibling_binary("nacre", "nacre-cli")?,
        loadgen: sibling_binary("nacre-loadgen", "nacre-loadgen")?,
        work: args.work.clone(),
        out: args.out.clone(),
        seed: args.seed.unwrap_or_else(|| fastrand::u64(..)),
    };
    let sections = if args.sections.is_empty() { SectionName::ALL.to_vec() } else { args.sections.clone() };
    let mut report = Report {
        machine: nacre_bench::compare::machine::describe(),
        when: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        mode: format!("{}, {rounds} round(s), loadgen seed {}", if args.quick { "quick" } else { "full" }, ctx.seed),
        sections: Vec::new(),
    };
    for section in sections {
        eprintln!("nacre-bench compare: {section:?}");
        let outcome = section.run(&ctx).with_context(|| format!("section {section:?}"))?;
        report.sections.push(outcome);
        // Written after every section, so an interrupted run keeps what it measured.
        write(&args.out, &report)?;
    }
    let _ = std::fs::remove_dir_all(&args.work);
    print!("{}", report::markdown(&report));
    eprintln!("nacre-bench compare: wrote {}", args.out.join("report.md").display());
    Ok(())
}

fn write(out: &std::path::Path, report: &Report) -> Result<()> {
    let md = out.join("report.md");
    std::fs::write(&md, report::markdown(report)).with_context(|| format!("writing {}", md.display()))?;
    let json = out.join("report.json");
    let text = serde_json::to_string_pretty(&report::json(report)).expect("a JSON value serialises");
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}
