//! `ldbench validate`, `plan`, `run` and `report`: suites from file to report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::plugins::PluginDirArg;
use crate::plugin::{Kind, PluginDir};
use crate::runner::{
    Existing, Record, ResultsFile, Status, prepare, read_records, run_suite, write_summary,
};
use crate::suite::{Case, Suite, SuiteError};

/// Check a suite without running it: the file, the sweep, the plugins, and every case's
/// parameters and step size. Exits with 2 if anything is wrong, listing every problem.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The suite file, e.g. suites/adam_vs_sgd.toml.
    suite: PathBuf,
    #[command(flatten)]
    dir: PluginDirArg,
}

/// List the expanded cases with their size and an estimate of their cost.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The suite file.
    suite: PathBuf,
    /// Only cases whose key contains this text.
    #[arg(long)]
    filter: Option<String>,
    #[command(flatten)]
    dir: PluginDirArg,
}

/// Run a suite: validate it, simulate every case, append results to DIR/results.jsonl, and write
/// summary.csv, metadata.json and the report (SVG plots, index.md, index.html).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The suite file.
    suite: PathBuf,
    /// The report folder [default: reports/<suite name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only cases whose key contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Cases run in parallel.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    jobs: usize,
    /// Keep the results already in the folder and run only the missing cases.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Delete the results already in the folder and start again.
    #[arg(long)]
    overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// After the simulations, time each (objective, preconditioner) pair with criterion — the
    /// gradient, the preconditioner's apply, one step, the closed form — as set in the suite's
    /// [timing] table; the estimates go to timings.json and the report.
    #[arg(long)]
    timing: bool,
    /// Run only shard I of N (1-based): the cases whose index is I−1 modulo N. Merge the shards'
    /// folders afterwards with `ldbench merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    #[command(flatten)]
    dir: PluginDirArg,
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => Ok((i, n)),
        _ => Err(format!(
            "'{text}' is not a shard I/N with 1 ≤ I ≤ N, e.g. 2/8"
        )),
    }
}

/// Merge the results folders of several shards into one folder and render its report; the
/// merge of all shards equals the unsharded run.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' report folders.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The merged report folder (must not hold results yet).
    #[arg(long)]
    out: PathBuf,
}

/// Render the report of a results folder again (plots, index.md, index.html, summary.csv).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The report folder holding results.jsonl.
    dir: PathBuf,
}

/// Loads the suite and checks its plugins and every case, before any work.
fn checked(suite_file: &Path, plugins: &PluginDir, filter: Option<&str>) -> anyhow::Result<Suite> {
    let mut suite = Suite::load(suite_file)?;
    let mut problems: Vec<String> = Vec::new();
    let entries = suite
        .spec
        .objective
        .iter()
        .map(|e| (e, Kind::Objective))
        .chain(
            suite
                .spec
                .preconditioner
                .iter()
                .map(|e| (e, Kind::Preconditioner)),
        );
    for (entry, kind) in entries {
        match plugins.load(&entry.plugin) {
            Ok(p) if p.info().kind != kind => problems.push(
                suite
                    .error_at(
                        &format!("\"{}\"", entry.plugin),
                        format!(
                            "'{}' is {}, listed as {}",
                            entry.plugin,
                            p.info().kind.with_article(),
                            kind.with_article()
                        ),
                    )
                    .to_string(),
            ),
            Ok(_) => {}
            Err(e) => problems.push(
                suite
                    .error_at(&format!("\"{}\"", entry.plugin), e.to_string())
                    .to_string(),
            ),
        }
    }
    if problems.is_empty() {
        if let Some(filter) = filter {
            suite.cases.retain(|c| c.key.contains(filter));
        }
        for case in &suite.cases {
            if let Err(reason) = prepare(case, plugins)
                .map(drop)
                .and_then(|()| settings_problem(case))
            {
                problems.push(case_problem(&suite, case, &reason).to_string());
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{} problem(s) in {}:\n  {}",
            problems.len(),
            suite_file.display(),
            problems.join("\n  ")
        );
    }
    Ok(suite)
}

/// Run settings that cannot work, found without simulating.
fn settings_problem(case: &Case) -> Result<(), String> {
    let run = &case.run;
    if !(run.eta_fraction > 0.0 && run.eta_fraction < 1.0) && run.eta.is_none() {
        return Err(format!(
            "run.eta_fraction = {} must lie in (0, 1): η = fraction · 2/λ_max",
            run.eta_fraction
        ));
    }
    let burn_in = run.burn_in.unwrap_or(run.steps / 2);
    if run.chains == 0
        || burn_in >= run.steps
        || run.steps - burn_in < run.batches as u64
        || run.batches < 2
    {
        return Err(format!(
            "run settings chains = {}, steps = {}, burn_in = {burn_in}, batches = {} leave no window to average; \
             need chains ≥ 1, batches ≥ 2 and steps − burn_in ≥ batches",
            run.chains, run.steps, run.batches
        ));
    }
    Ok(())
}

fn case_problem(suite: &Suite, case: &Case, reason: &str) -> SuiteError {
    let needle = if reason.contains("eta") {
        "eta".to_owned()
    } else {
        format!("\"{}\"", case.objective.plugin)
    };
    suite.error_at(
        &needle,
        format!(
            "case {} ({} | {} | {} noise): {reason}",
            case.index,
            case.objective.label,
            case.preconditioner.label,
            case.noise.structure.name()
        ),
    )
}

pub(super) fn validate(args: &ValidateArgs) -> anyhow::Result<()> {
    let suite = checked(&args.suite, &args.dir.resolve(), None)?;
    println!(
        "{}: valid, {} cases",
        args.suite.display(),
        suite.cases.len()
    );
    Ok(())
}

#[derive(Serialize)]
struct PlanRow<'a> {
    index: usize,
    objective: &'a str,
    preconditioner: &'a str,
    noise: &'a str,
    dim: usize,
    eta: f64,
    chains: usize,
    steps: u64,
    /// Coordinate-steps n·m·steps: the simulation's size.
    coordinate_steps: f64,
}

pub(super) fn plan(args: &PlanArgs) -> anyhow::Result<()> {
    let plugins = args.dir.resolve();
    let suite = checked(&args.suite, &plugins, args.filter.as_deref())?;
    println!(
        "{:>5}  {:<32} {:<24} {:<16} {:>6} {:>10} {:>7} {:>8} {:>12}",
        "case",
        "objective",
        "preconditioner",
        "noise",
        "n",
        "eta",
        "chains",
        "steps",
        "coord-steps"
    );
    let mut total = 0.0;
    for case in &suite.cases {
        let p = prepare(case, &plugins).map_err(|reason| case_problem(&suite, case, &reason))?;
        let dim = p.theory.dim();
        let row = PlanRow {
            index: case.index,
            objective: &case.objective.label,
            preconditioner: &case.preconditioner.label,
            noise: case.noise.structure.name(),
            dim,
            eta: p.eta,
            chains: case.run.chains,
            steps: case.run.steps,
            coordinate_steps: (dim * case.run.chains) as f64 * case.run.steps as f64,
        };
        total += row.coordinate_steps;
        println!(
            "{:>5}  {:<32} {:<24} {:<16} {:>6} {:>10.3e} {:>7} {:>8} {:>12.2e}",
            row.index,
            row.objective,
            row.preconditioner,
            row.noise,
            row.dim,
            row.eta,
            row.chains,
            row.steps,
            row.coordinate_steps
        );
    }
    // About 3 ns per coordinate-step for diagonal problems on one core (see the benchmarks);
    // dense problems cost a matrix product per step on top.
    println!(
        "{} cases, {total:.2e} coordinate-steps: at least {:.0} s on one core",
        suite.cases.len(),
        total * 3e-9
    );
    Ok(())
}

#[derive(Serialize)]
struct Metadata<'a> {
    ldbench_version: &'a str,
    results_schema: u32,
    suite: String,
    git_revision: Option<String>,
    plugins: Vec<PluginRecord>,
    machine: Machine,
    seed: u64,
    started: u64,
    finished: u64,
    cases: usize,
    failed: usize,
}

#[derive(Serialize)]
struct PluginRecord {
    #[serde(flatten)]
    info: crate::plugin::PluginInfo,
    /// SHA-256 of the library file, to tell rebuilt plugins apart.
    sha256: String,
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    std::fs::read(path)
        .map(|bytes| format!("{:x}", sha2::Sha256::digest(bytes)))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Machine {
    os: &'static str,
    arch: &'static str,
    threads: usize,
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn git_revision(suite: &Path) -> Option<String> {
    let dir = suite
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(super) fn run(args: &RunArgs) -> anyhow::Result<()> {
    let started = unix_seconds();
    let plugins = args.dir.resolve();
    let suite = checked(&args.suite, &plugins, args.filter.as_deref())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&suite.name));
    let existing = match (args.resume, args.overwrite) {
        (true, _) => Existing::Resume,
        (_, true) => Existing::Overwrite,
        _ => Existing::Refuse,
    };
    let (results, done) = ResultsFile::open(&out, existing)?;
    let done_keys: std::collections::BTreeSet<&str> =
        done.iter().map(|r| r.case.key.as_str()).collect();
    let todo: Vec<&Case> = shard_cases(&suite, args.shard)
        .into_iter()
        .filter(|c| !done_keys.contains(c.key.as_str()))
        .collect();
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(todo.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} cases, {elapsed} elapsed, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(suite.name.clone());
    if !done.is_empty() {
        // Through `suspend`, so that it prints whether or not the bar is drawn (not on a terminal).
        bar.suspend(|| {
            eprintln!(
                "resuming: {} of {} cases already in {}",
                done.len(),
                suite.cases.len(),
                results.path().display()
            )
        });
    }
    run_suite(&todo, &plugins, &results, args.jobs, &|record: &Record| {
        if record.status == Status::Failed {
            bar.suspend(|| {
                eprintln!(
                    "case {} failed: {}",
                    record.case.index,
                    record.reason.clone().unwrap_or_default()
                )
            });
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    let records = read_records(results.path(), false)?;
    if args.timing {
        time_pairs(
            &suite,
            &shard_cases(&suite, args.shard),
            &records,
            &plugins,
            &out,
        )?;
    }
    let failed = records
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    let metadata = Metadata {
        ldbench_version: env!("CARGO_PKG_VERSION"),
        results_schema: crate::runner::RESULTS_SCHEMA,
        suite: args.suite.display().to_string(),
        git_revision: git_revision(&args.suite),
        plugins: plugins
            .list()
            .into_iter()
            .filter_map(Result::ok)
            .map(|info| PluginRecord {
                sha256: sha256(&info.file),
                info,
            })
            .collect(),
        machine: Machine {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            threads: args.jobs,
        },
        seed: suite.spec.seed,
        started,
        finished: unix_seconds(),
        cases: records.len(),
        failed,
    };
    std::fs::write(
        out.join("metadata.json"),
        serde_json::to_string_pretty(&metadata)?,
    )?;
    let index = render(&out, &suite.name, &suite.spec.description, &records)?;
    println!(
        "{} cases ({failed} failed); report: {}",
        records.len(),
        index.display()
    );
    Ok(())
}

/// The cases of this run (its shard, or all).
fn shard_cases(suite: &Suite, shard: Option<(usize, usize)>) -> Vec<&Case> {
    suite
        .cases
        .iter()
        .filter(|c| shard.is_none_or(|(i, n)| c.index % n == i - 1))
        .collect()
}

/// The timing phase: every pair with at least one simulated case (a pair whose cases all failed
/// may hang or crash again, so it is not timed).
fn time_pairs(
    suite: &Suite,
    cases: &[&Case],
    records: &[Record],
    plugins: &PluginDir,
    out: &Path,
) -> anyhow::Result<()> {
    let ok: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .map(|r| r.case.key.as_str())
        .collect();
    let pairs = crate::timing::pairs(
        cases
            .iter()
            .copied()
            .filter(|c| ok.contains(c.key.as_str())),
    );
    let spec = &suite.spec.timing;
    let seconds =
        pairs.len() as f64 * spec.parts.len() as f64 * (spec.warm_up + spec.measurement + 0.2);
    eprintln!(
        "timing {} (objective, preconditioner) pairs × {} parts with criterion (about {seconds:.0} s)…",
        pairs.len(),
        spec.parts.len()
    );
    let done = std::cell::Cell::new(0);
    let file = crate::timing::measure(&pairs, plugins, spec, out, &|case| {
        done.set(done.get() + 1);
        eprintln!(
            "timed {}/{}: {} | {}",
            done.get(),
            pairs.len(),
            case.objective.label,
            case.preconditioner.label
        );
    });
    let path = file.write(out)?;
    let failed = file.timings.iter().filter(|t| t.error.is_some()).count();
    eprintln!(
        "{} timings in {} ({failed} not timed)",
        file.timings.len(),
        path.display()
    );
    Ok(())
}

fn render(
    dir: &Path,
    name: &str,
    description: &str,
    records: &[Record],
) -> anyhow::Result<PathBuf> {
    write_summary(dir, records)?;
    crate::report::render(dir, name, description, records)
}

pub(super) fn merge(args: &MergeArgs) -> anyhow::Result<()> {
    let mut merged: std::collections::BTreeMap<String, Record> = std::collections::BTreeMap::new();
    for dir in &args.dirs {
        let path = dir.join(ResultsFile::NAME);
        let records = read_records(&path, false)?;
        if records.is_empty() {
            anyhow::bail!(
                "{}: no results (is this a shard's report folder?)",
                path.display()
            );
        }
        for record in records {
            match merged.get(&record.case.key) {
                Some(seen) if seen.case.index != record.case.index => anyhow::bail!(
                    "{}: case '{}' has index {} here but {} in another shard: the shards come from different suite files",
                    path.display(),
                    record.case.key,
                    record.case.index,
                    seen.case.index
                ),
                Some(_) => {}
                None => {
                    merged.insert(record.case.key.clone(), record);
                }
            }
        }
    }
    let (results, existing) = ResultsFile::open(&args.out, Existing::Refuse)?;
    if !existing.is_empty() {
        anyhow::bail!("{} already holds results", args.out.display());
    }
    let mut records: Vec<Record> = merged.into_values().collect();
    records.sort_by_key(|r| r.case.index);
    for record in &records {
        results.append(record)?;
    }
    // The shards' timings (each timed the pairs of its own cases), one entry per key.
    let mut timings: Option<crate::timing::TimingsFile> = None;
    for dir in &args.dirs {
        if let Some(shard) = crate::timing::TimingsFile::read(dir)? {
            match &mut timings {
                None => timings = Some(shard),
                Some(all) => {
                    for t in shard.timings {
                        if !all.timings.iter().any(|seen| seen.key == t.key) {
                            all.timings.push(t);
                        }
                    }
                }
            }
        }
    }
    if let Some(t) = timings {
        t.write(&args.out)?;
    }
    let name = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("merged");
    let index = render(&args.out, name, "", &records)?;
    println!(
        "merged {} cases from {} shards; report: {}",
        records.len(),
        args.dirs.len(),
        index.display()
    );
    Ok(())
}

pub(super) fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let path = args.dir.join(ResultsFile::NAME);
    let records = read_records(&path, false)?;
    if records.is_empty() {
        anyhow::bail!("{}: no results to report", path.display());
    }
    let name = args
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("report")
        .to_owned();
    let index = render(&args.dir, &name, "", &records)
        .with_context(|| format!("rendering {}", args.dir.display()))?;
    println!("report: {}", index.display());
    Ok(())
}
