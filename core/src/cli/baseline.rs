//! `ldbench save-baseline`, `compare` and `export`: regression tracking across releases.

use std::path::PathBuf;

use crate::baseline::{self, Places, Thresholds};

/// Where names are looked up.
#[derive(Debug, clap::Args)]
pub struct PlacesArgs {
    /// Folder of baseline files, <DIR>/<name>.json.
    #[arg(long, value_name = "DIR", default_value = "baselines")]
    baselines: PathBuf,
    /// Folder of report folders, <DIR>/<suite>/ (the latest run of each suite).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    reports: PathBuf,
}

impl PlacesArgs {
    fn places(&self) -> Places {
        Places {
            baselines: self.baselines.clone(),
            reports: self.reports.clone(),
        }
    }
}

/// Store a run's timings and accuracy metrics as the baseline NAME (baselines/NAME.json; a
/// suite already in the file is replaced, the others kept).
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// The baseline's name, e.g. a release tag such as v0.2.0.
    name: String,
    /// The report folder of the run.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    #[command(flatten)]
    places: PlacesArgs,
}

/// Compare two baselines, case by case and benchmark by benchmark: a Markdown table on stdout,
/// compare.md and compare.svg in --out. Exits with 1 when anything regressed.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The older side: a baseline name, a baseline file or a report folder.
    old: String,
    /// The newer side, likewise [default: the latest run of each of OLD's suites, reports/<suite>/].
    new: Option<String>,
    /// A timing regresses when it is slower by more than this fraction (and its 95% interval
    /// excludes no change).
    #[arg(long, default_value_t = Thresholds::default().time)]
    time_threshold: f64,
    /// An accuracy metric regresses when its magnitude grows by more than this many standard
    /// errors.
    #[arg(long, default_value_t = Thresholds::default().accuracy_z)]
    accuracy_threshold: f64,
    /// Where compare.md and compare.svg go [default: reports/compare/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    places: PlacesArgs,
}

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// github-action-benchmark's customSmallerIsBetter JSON.
    GithubActionBenchmark,
    /// Bencher's Metric Format (BMF) JSON.
    Bencher,
}

/// Write a baseline or a run in a continuous-benchmarking service's format.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A baseline name, a baseline file or a report folder.
    source: String,
    /// The format.
    #[arg(long)]
    format: Format,
    /// The output file [default: stdout].
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    places: PlacesArgs,
}

pub(super) fn save(args: &SaveArgs) -> anyhow::Result<()> {
    let file = args.places.baselines.join(format!("{}.json", args.name));
    let suite = baseline::save(&args.from, &file, &args.name)?;
    println!("saved {suite} into {}", file.display());
    Ok(())
}

/// Ok(false) when something regressed.
pub(super) fn compare(args: &CompareArgs) -> anyhow::Result<bool> {
    for (name, v) in [
        ("--time-threshold", args.time_threshold),
        ("--accuracy-threshold", args.accuracy_threshold),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            anyhow::bail!("{name} = {v} must be a non-negative number");
        }
    }
    let places = args.places.places();
    let old = places.load(&args.old)?;
    let new = match &args.new {
        Some(new) => places.load(new)?,
        None => places.latest(&old)?,
    };
    let thresholds = Thresholds {
        time: args.time_threshold,
        accuracy_z: args.accuracy_threshold,
    };
    let comparison = baseline::compare(&old, &new, thresholds);
    let md = comparison.markdown();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.places.reports.join("compare"));
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("compare.md"), &md)?;
    crate::report::comparison_chart(&out.join("compare.svg"), &comparison)?;
    println!("{md}");
    eprintln!(
        "{} regression(s); written to {}",
        comparison.regressions(),
        out.join("compare.md").display()
    );
    Ok(comparison.regressions() == 0)
}

pub(super) fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let b = args.places.places().load(&args.source)?;
    let value = match args.format {
        Format::GithubActionBenchmark => baseline::github_action_benchmark(&b),
        Format::Bencher => baseline::bencher_metric_format(&b),
    };
    let text = serde_json::to_string_pretty(&value)?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}
