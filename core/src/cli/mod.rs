//! The `ldbench` command line: argument parsing, and errors printed with their context and exit
//! code 2 (1 is left for "ran, and found a regression").

mod baseline;
mod inputs;
mod plugins;
mod simulate;
mod suite;
mod theory;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmarks for preconditioned Langevin dynamics near stationary points: closed-form expected
/// loss against simulation, and Hessian-rank estimates.
#[derive(Debug, Parser)]
#[command(name = "ldbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(suite::RunArgs),
    Validate(suite::ValidateArgs),
    Plan(suite::PlanArgs),
    Report(suite::ReportArgs),
    Merge(suite::MergeArgs),
    Theory(theory::Args),
    Simulate(simulate::Args),
    Plugins(plugins::ListArgs),
    Inspect(plugins::InspectArgs),
    PluginTest(plugins::TestArgs),
    SaveBaseline(baseline::SaveArgs),
    Compare(baseline::CompareArgs),
    Export(baseline::ExportArgs),
}

/// Parses the arguments, runs the command, prints errors; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => suite::run(&args).map(|()| true),
        Command::Validate(args) => suite::validate(&args).map(|()| true),
        Command::Plan(args) => suite::plan(&args).map(|()| true),
        Command::Report(args) => suite::report(&args).map(|()| true),
        Command::Merge(args) => suite::merge(&args).map(|()| true),
        Command::Theory(args) => theory::run(&args).map(|()| true),
        Command::Simulate(args) => simulate::run(&args).map(|()| true),
        Command::Plugins(args) => plugins::list(&args).map(|()| true),
        Command::Inspect(args) => plugins::inspect(&args).map(|()| true),
        Command::PluginTest(args) => plugins::test(&args),
        Command::SaveBaseline(args) => baseline::save(&args).map(|()| true),
        Command::Compare(args) => baseline::compare(&args),
        Command::Export(args) => baseline::export(&args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}
