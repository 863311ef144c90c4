//! `cargo xtask`: project automation, driven through `cargo` and the `ldbench` binary so that
//! this crate stays cheap to compile (ARCHITECTURE.md, invariant 4).
//!
//! - `cargo xtask bench <suite.toml>`: build in release and run a suite, printing where the report is.
//! - `cargo xtask plugin-test <name>`: build a plugin and run the conformance checks on it.
//! - `cargo xtask new-plugin precond|objective <name>`: a new plugin crate from the template.
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
    /// Build ldbench and the plugins in release and run a suite; the report goes to
    /// reports/<suite name>/ (index.html, index.md, SVG plots, summary.csv, results.jsonl).
    Bench {
        /// The suite file, e.g. suites/adam_vs_sgd.toml.
        suite: PathBuf,
        /// Keep the results of an interrupted run and finish it, instead of starting again.
        #[arg(long)]
        resume: bool,
        /// Skip the criterion timings (the suite's [timing] table) after the simulations.
        #[arg(long)]
        no_timing: bool,
        /// Also store the run as the baseline NAME in baselines/NAME.json (one file per
        /// release; commit it), for `cargo xtask compare NAME`.
        #[arg(long, value_name = "NAME")]
        save_baseline: Option<String>,
    },
    /// Compare a baseline with another or with the latest runs (reports/<suite>/): Markdown on
    /// stdout, reports/compare/compare.{md,svg}; exit code 1 on a significant regression.
    /// Arguments go to `ldbench compare` (see `cargo xtask compare -- --help`).
    Compare {
        /// OLD [NEW] [--time-threshold F] [--accuracy-threshold Z] [--out DIR].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Export a baseline or a run for github-action-benchmark or Bencher; arguments go to
    /// `ldbench export` (see `cargo xtask export -- --help`).
    Export {
        /// SOURCE --format github-action-benchmark|bencher [--out FILE].
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Time the paper's deep-linear Langevin loop in ldbench and in a straightforward NumPy
    /// implementation (xtask/numpy/linear_nets.py, needs python3 with numpy), side by side on one
    /// core each, and print seconds per 1000 iterations per chain and their ratio.
    NumpyCompare {
        /// Network widths (depth 5).
        #[arg(long, value_delimiter = ',', default_value = "8,16,32")]
        widths: Vec<usize>,
        /// Chains (Monte-Carlo runs), simulated together.
        #[arg(long, default_value_t = 100)]
        chains: usize,
        /// Iterations timed.
        #[arg(long, default_value_t = 2000)]
        steps: usize,
        /// The Python interpreter with numpy.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Build a plugin (and ldbench) in release and run the conformance checks on it.
    PluginTest {
        /// The plugin's package name, e.g. precond-adam.
        name: String,
        /// Its parameters as TOML [default: its defaults].
        #[arg(long)]
        params: Option<String>,
    },
    /// Create plugins/<name>/ from the template: a crate that builds and passes conformance as is.
    NewPlugin {
        /// What the plugin provides.
        kind: PluginKind,
        /// Package name: precond-<something> or objective-<something>, lowercase, digits and '-'.
        name: String,
    },
    /// Run what CI runs (the README's test command), then `cargo fmt --check` and clippy.
    Ci,
}

/// The two kinds of plugin.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum PluginKind {
    /// A preconditioner G.
    Precond,
    /// An objective f.
    Objective,
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
        Task::Bench {
            suite,
            resume,
            no_timing,
            save_baseline,
        } => bench(&root, &suite, resume, !no_timing, save_baseline.as_deref()),
        Task::NumpyCompare {
            widths,
            chains,
            steps,
            python,
        } => numpy_compare(&root, &python, &widths, chains, steps),
        Task::Compare { args } => ldbench_passthrough(&root, "compare", &args),
        Task::Export { args } => ldbench_passthrough(&root, "export", &args),
        Task::PluginTest { name, params } => {
            plugin_test(&root, &name, params.as_deref().unwrap_or(""))
        }
        Task::NewPlugin { kind, name } => {
            let dir = new_plugin(&root, kind, &name)?;
            eprintln!(
                "created {}; check it with: cargo xtask plugin-test {name}",
                dir.display()
            );
            Ok(())
        }
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

fn bench(
    root: &Path,
    suite: &Path,
    resume: bool,
    timing: bool,
    save_baseline: Option<&str>,
) -> anyhow::Result<()> {
    let name = suite
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: not a suite file name", suite.display()))?;
    eprintln!("building ldbench and the plugins (release)…");
    build_everything(root)?;
    let release = release_dir(root);
    let out = root.join("reports").join(name);
    let status = Command::new(release.join("ldbench"))
        .arg("run")
        .arg(suite)
        .arg("--out")
        .arg(&out)
        .arg(if resume { "--resume" } else { "--overwrite" })
        .args(timing.then_some("--timing"))
        .arg("--plugin-dir")
        .arg(&release)
        .status()
        .context("running ldbench")?;
    if !status.success() {
        bail!("ldbench run {} failed ({status})", suite.display());
    }
    if let Some(name) = save_baseline {
        let status = Command::new(release.join("ldbench"))
            .args(["save-baseline", name, "--from"])
            .arg(&out)
            .arg("--baselines")
            .arg(root.join("baselines"))
            .status()
            .context("running ldbench save-baseline")?;
        if !status.success() {
            bail!("saving the baseline {name} failed ({status})");
        }
    }
    eprintln!(
        "open {} (or index.md) to read the report",
        out.join("index.html").display()
    );
    Ok(())
}

/// Builds ldbench and every plugin in release (into the one target directory).
fn build_everything(root: &Path) -> anyhow::Result<()> {
    cargo(
        root,
        &[
            "build",
            "--release",
            "--workspace",
            "--lib",
            "--bins",
            "--quiet",
        ],
    )
}

/// Builds the ldbench binary in release, with cargo's `extra` arguments (more packages, --quiet).
fn build_ldbench(root: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let mut args = vec![
        "build",
        "--release",
        "--package",
        "ldbench-core",
        "--bin",
        "ldbench",
    ];
    args.extend_from_slice(extra);
    cargo(root, &args)
}

/// Builds ldbench and runs `ldbench <command> <args>` from the workspace root, passing its
/// exit code on (compare exits with 1 on a regression).
fn ldbench_passthrough(root: &Path, command: &str, args: &[String]) -> anyhow::Result<()> {
    build_ldbench(root, &["--quiet"])?;
    let status = Command::new(release_dir(root).join("ldbench"))
        .arg(command)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running ldbench {command}"))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => bail!("ldbench {command} was killed ({status})"),
    }
}

fn numpy_compare(
    root: &Path,
    python: &str,
    widths: &[usize],
    chains: usize,
    steps: usize,
) -> anyhow::Result<()> {
    let numpy = Command::new(python)
        .args(["-c", "import numpy; print(numpy.__version__)"])
        .output();
    match numpy {
        Ok(out) if out.status.success() => {}
        _ => bail!(
            "the NumPy side needs {python} with numpy (e.g. `pip install numpy`, or --python a/venv/bin/python); ldbench's side alone is `cargo xtask bench suites/linear_nets.toml`"
        ),
    }
    build_everything(root)?;
    let release = release_dir(root);
    let scratch =
        std::env::temp_dir().join(format!("ldbench-numpy-compare-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    println!(
        "| width | n | chains | steps | ldbench s/1000 it/chain | NumPy s/1000 it/chain | NumPy / ldbench |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &width in widths {
        // The same loop as the NumPy script: G = I, σ² = 2e-5, η = 1e-4, one block of chains.
        let suite = scratch.join(format!("w{width}.toml"));
        std::fs::write(
            &suite,
            format!(
                "seed = 5\n[run]\nchains = {chains}\nsteps = {steps}\neta = 1e-4\n[noise]\nscale = 0.2\n[rank]\nestimators = [\"paper\"]\n[[objective]]\nplugin = \"objective-deep-linear\"\nparams = {{ depth = 5, width = {width} }}\n[[preconditioner]]\nplugin = \"precond-sgd\"\n"
            ),
        )?;
        let out = scratch.join(format!("w{width}"));
        let status = Command::new(release.join("ldbench"))
            .arg("run")
            .arg(&suite)
            .arg("--out")
            .arg(&out)
            .args(["--overwrite", "--quiet", "--jobs", "1", "--plugin-dir"])
            .arg(&release)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .context("running ldbench")?;
        if !status.success() {
            bail!("ldbench run {} failed ({status})", suite.display());
        }
        let record = std::fs::read_to_string(out.join("results.jsonl"))?;
        let ours = json_number(&record, "\"seconds\":")
            .context("no simulation seconds in the ldbench record")?
            / (steps as f64 / 1000.0)
            / chains as f64;
        let numpy = Command::new(python)
            .envs(ONE_THREAD.map(|v| (v, "1")))
            .arg(root.join("xtask/numpy/linear_nets.py"))
            .args([
                "--width",
                &width.to_string(),
                "--chains",
                &chains.to_string(),
            ])
            .args([
                "--steps",
                &steps.to_string(),
                "--burn-in",
                &(steps / 2).to_string(),
            ])
            .output()
            .context("running the NumPy script")?;
        if !numpy.status.success() {
            bail!(
                "the NumPy script failed: {}",
                String::from_utf8_lossy(&numpy.stderr)
            );
        }
        let theirs = json_number(
            &String::from_utf8_lossy(&numpy.stdout),
            "\"seconds_per_1000_iterations_per_chain\":",
        )
        .context("no timing in the NumPy script's output")?;
        println!(
            "| {width} | {} | {chains} | {steps} | {ours:.4} | {theirs:.4} | {:.1} |",
            5 * width * width,
            theirs / ours
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Thread-count variables of NumPy's BLAS back ends: one core each side.
const ONE_THREAD: [&str; 3] = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];

/// The number after the last occurrence of `key` in a JSON text (xtask keeps to clap and
/// anyhow: no JSON parser for two numbers).
fn json_number(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.rfind(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE ".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// The release directory cargo builds into (honouring CARGO_TARGET_DIR).
fn release_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release")
}

fn plugin_test(root: &Path, name: &str, params: &str) -> anyhow::Result<()> {
    build_ldbench(root, &["--package", name])?;
    let release = release_dir(root);
    let status = Command::new(release.join("ldbench"))
        .args(["plugin-test", name, "--params", params, "--plugin-dir"])
        .arg(&release)
        .status()
        .context("running ldbench plugin-test")?;
    if !status.success() {
        bail!("{name} does not pass conformance ({status})");
    }
    Ok(())
}

const TEMPLATE_CARGO: &str = include_str!("../templates/Cargo.toml.tmpl");
const TEMPLATE_README: &str = include_str!("../templates/README.md.tmpl");
const TEMPLATE_PRECOND: &str = include_str!("../templates/precond.rs.tmpl");
const TEMPLATE_OBJECTIVE: &str = include_str!("../templates/objective.rs.tmpl");

/// Writes plugins/<name>/ (Cargo.toml, src/lib.rs, README.md) under `root` from the template.
fn new_plugin(root: &Path, kind: PluginKind, name: &str) -> anyhow::Result<PathBuf> {
    let (prefix, kind_name, source, summary, example) = match kind {
        PluginKind::Precond => (
            "precond-",
            "preconditioner",
            TEMPLATE_PRECOND,
            "G = alpha (diag C + delta)^-1",
            "alpha = 1.0\ndelta = 1e-8",
        ),
        PluginKind::Objective => (
            "objective-",
            "objective",
            TEMPLATE_OBJECTIVE,
            "a diagonal quadratic of chosen rank",
            "dim = 10\nrank = 5\ncurvature = 1.0",
        ),
    };
    let valid = name.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if !valid {
        bail!(
            "'{name}' is not a valid {kind_name} plugin name: use {prefix}<name> with lowercase letters, digits and '-', e.g. {prefix}my-idea"
        );
    }
    let dir = root.join("plugins").join(name);
    if dir.exists() {
        bail!("{} already exists; choose another name", dir.display());
    }
    let render = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{kind}}", kind_name)
            .replace("{{summary}}", summary)
            .replace("{{example}}", example)
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("Cargo.toml"), render(TEMPLATE_CARGO))?;
    std::fs::write(dir.join("src/lib.rs"), render(source))?;
    std::fs::write(dir.join("README.md"), render(TEMPLATE_README))?;
    Ok(dir)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The templates, instantiated in a scratch workspace shaped like this one, build and pass
    /// conformance without edits.
    #[test]
    fn new_plugins_build_and_pass_conformance_as_generated() {
        let root = workspace_root();
        let scratch = root.join("target").join("xtask-template-check");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(scratch.join("plugins")).unwrap();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let start = manifest.find("members = [").unwrap();
        let end = start + manifest[start..].find(']').unwrap() + 1;
        let manifest = format!(
            "{}members = [\"plugins/*\"]{}",
            &manifest[..start],
            &manifest[end..]
        )
        .replace(
            "path = \"plugins/sdk\"",
            &format!("path = {:?}", root.join("plugins/sdk")),
        );
        std::fs::write(scratch.join("Cargo.toml"), manifest).unwrap();

        assert!(new_plugin(&scratch, PluginKind::Precond, "precond-Bad").is_err());
        assert!(new_plugin(&scratch, PluginKind::Objective, "precond-x").is_err());
        new_plugin(&scratch, PluginKind::Precond, "precond-template-check").unwrap();
        new_plugin(&scratch, PluginKind::Objective, "objective-template-check").unwrap();
        assert!(
            new_plugin(&scratch, PluginKind::Precond, "precond-template-check").is_err(),
            "refuses to overwrite"
        );

        let target = scratch.join("target");
        let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = Command::new(&cargo_bin)
            .args(["build", "--release", "--workspace", "--quiet"])
            .current_dir(&scratch)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .unwrap();
        assert!(build.success());
        cargo(
            &root,
            &[
                "build",
                "--release",
                "--quiet",
                "--package",
                "ldbench-core",
                "--bin",
                "ldbench",
            ],
        )
        .unwrap();
        for name in ["precond-template-check", "objective-template-check"] {
            let out = Command::new(release_dir(&root).join("ldbench"))
                .args(["plugin-test", name, "--plugin-dir"])
                .arg(target.join("release"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{name}:\n{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(" 0 failed"), "{stdout}");
        }
    }
}
