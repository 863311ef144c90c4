//! `cargo xtask`: project automation, driven through `cargo` and the `ldbench` binary so that
//! this crate stays cheap to compile (ARCHITECTURE.md, invariant 4).
//!
//! - `cargo xtask bench <suite.toml>`: build in release and run a suite, printing where the report is.
//! - `cargo xtask ci`: what CI runs (the README's test command), plus formatting and lints.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ldbench project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build ldbench in release and run a suite; the report goes to reports/<suite name>/.
    Bench {
        /// The suite file, e.g. suites/adam_vs_sgd.toml.
        suite: PathBuf,
    },
    /// Run what CI runs (the README's test command), then `cargo fmt --check` and clippy.
    Ci,
}

fn main() -> ExitCode {
    match run(Cli::parse().task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    let root = workspace_root();
    match task {
        Task::Bench { suite } => bench(&root, &suite),
        Task::Ci => {
            cargo(&root, &["test", "--workspace", "--release"])?;
            cargo(&root, &["fmt", "--all", "--check"])?;
            cargo(
                &root,
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--release",
                    "--",
                    "-D",
                    "warnings",
                ],
            )
        }
    }
}

/// Suites with a built-in end-to-end job, until the suite runner reads suite files.
const BUILT_IN: &[&str] = &["adam_vs_sgd"];

fn bench(root: &Path, suite: &Path) -> anyhow::Result<()> {
    let name = suite
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: not a suite file name", suite.display()))?;
    if !BUILT_IN.contains(&name) {
        bail!(
            "{}: the suite runner does not read suite files yet; the built-in jobs are {}",
            suite.display(),
            BUILT_IN
                .iter()
                .map(|b| format!("suites/{b}.toml"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "note: running the built-in '{name}' job (core/examples/{name}.rs) until suites/*.toml files are read"
    );
    let out = root.join("reports").join(name);
    let out = out.to_str().context("the report path is not UTF-8")?;
    cargo(
        root,
        &[
            "run",
            "--release",
            "--package",
            "ldbench-core",
            "--example",
            name,
            "--",
            out,
        ],
    )
}

/// Runs `cargo <args>` in the workspace root, failing on a non-zero exit.
fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the workspace root")
        .to_path_buf()
}
