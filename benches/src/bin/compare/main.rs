//! `compare`: our clients against async-nats (and the deprecated synchronous `nats` crate, `nats-sync`) on one
//! nats-server (and a fake server for ingest), with figures that hold on a shared, noisy machine.
//!
//! `cargo run --release -p benches --bin compare -- [--quick] [--only publish,reqrep] [--runs N] [--markdown]`
//! prints a table and writes `target/bench/compare.json` (see `--help`).
//!
//! - Every run of every cell is its own process (`compare --child <json>`), so CPU and RSS are one client's.
//! - Before each run the parent waits until processes other than ours use under a threshold of CPU, and a run
//!   during which they did not stay under it is kept but not counted: a cell is repeated until it has its clean
//!   runs.
//! - Clients alternate within each round, and ratios to async-nats pair runs of the same round, because
//!   absolute figures drift on a shared machine.

mod args;
mod child;
mod orchestrate;
mod plan;
mod proc;
mod quiet;
mod report;
mod spec;
mod stats;

use std::process::ExitCode;

use args::Mode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let mode = match args::parse(&argv[1..]) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::Help => print!("{}", args::HELP),
        Mode::FakeIngest { size, messages } => child::serve_fake_ingest(size, messages),
        Mode::Child(spec) => {
            if let Err(e) = child::main(&spec) {
                eprintln!("compare child: {e}");
                return ExitCode::FAILURE;
            }
        }
        Mode::Compare(options) => return compare(&options, &argv.join(" ")),
    }
    ExitCode::SUCCESS
}

/// The orchestrator: runs everything, prints the table (and the markdown), writes the JSON.
fn compare(options: &args::Options, command: &str) -> ExitCode {
    let outcome = orchestrate::run(options, |so_far| {
        if let Err(e) = report::write_json(so_far, options, command) {
            eprintln!("compare: writing the JSON: {e}");
        }
    });
    report::print_table(&outcome.cells);
    match report::write_json(&outcome, options, command) {
        Ok(path) => println!("\nwrote {}", path.display()),
        Err(e) => {
            eprintln!("compare: writing the JSON: {e}");
            return ExitCode::FAILURE;
        }
    }
    if options.markdown {
        println!("\n{}", report::markdown(&outcome.cells, command));
    }
    println!("command: {command}");
    ExitCode::SUCCESS
}
