//! Baselines: a run's timings and accuracy metrics kept under a name — one file per release,
//! `baselines/<name>.json`, small and diff-friendly (one line per benchmark or case) — compared
//! with another baseline or the latest run, and exported for continuous-benchmarking services.
//!
//! A comparison matches benchmarks and cases by their keys. A timing regresses when it is slower
//! by more than the noise threshold and its 95% interval of change excludes no change; an
//! accuracy metric (a signed error with its standard error) regresses when its magnitude grows
//! by more than `accuracy_z` standard errors of the difference. The format is documented in
//! `reports/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::runner::{Outcome, Record, ResultsFile, Status, read_records};
use crate::sim::Estimate;
use crate::timing::{Interval, TimingsFile};

/// Version of the baseline format.
pub const BASELINE_SCHEMA: u32 = 1;

const FORMAT: &str = "ldbench-baseline";

/// A named set of suites' timings and accuracy metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Always "ldbench-baseline".
    pub format: String,
    /// [`BASELINE_SCHEMA`].
    pub schema: u32,
    /// The name (a release tag, say).
    pub name: String,
    /// Per suite name.
    pub suites: BTreeMap<String, SuiteBaseline>,
}

/// One suite's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteBaseline {
    /// The ldbench that ran it.
    pub ldbench_version: String,
    /// The commit, when the suite was in a git checkout.
    pub git_revision: Option<String>,
    /// Operating system, architecture and threads of the machine.
    pub machine: String,
    /// One entry per timed (pair, part).
    pub timings: Vec<TimingEntry>,
    /// One entry per case.
    pub accuracy: Vec<AccuracyEntry>,
}

/// A timing: the benchmark's key, a readable label, and criterion's estimate in ns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingEntry {
    /// `<pair key> | <part>`.
    pub key: String,
    /// "objective | preconditioner | part | n=…".
    pub label: String,
    /// ns per call, 95% interval.
    pub ns: Interval,
    /// ns per coordinate per step, for block parts.
    pub ns_per_coordinate: Option<f64>,
}

/// A case's accuracy metrics: signed errors with their standard errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyEntry {
    /// The case key.
    pub key: String,
    /// "case i: objective | preconditioner | noise".
    pub label: String,
    /// Whether the case ran.
    pub status: Status,
    /// `loss_error`: simulated / theory − 1 over the window; `rank_error`, `rank_error_corrected`:
    /// (r̂ − rank) / rank and (r̂_c − rank) / rank, where the case has rank estimates.
    pub metrics: BTreeMap<String, Estimate>,
}

/// The metrics of a simulated case.
fn metrics(o: &Outcome) -> BTreeMap<String, Estimate> {
    let mut m = BTreeMap::new();
    let theory = o.theory_window;
    m.insert(
        "loss_error".to_owned(),
        Estimate {
            mean: o.relative_error,
            std_error: o.estimates.excess_loss.std_error / theory.abs(),
        },
    );
    let rank = o.true_rank.unwrap_or(o.rank) as f64;
    if rank > 0.0 {
        for (name, estimate) in [
            ("rank_error", o.rank_paper),
            ("rank_error_corrected", o.rank_corrected),
        ] {
            if let Some(e) = estimate {
                m.insert(
                    name.to_owned(),
                    Estimate {
                        mean: e.mean / rank - 1.0,
                        std_error: e.std_error / rank,
                    },
                );
            }
        }
    }
    m
}

impl SuiteBaseline {
    /// The baseline of a report folder: its records, timings and metadata. Returns the suite
    /// name (from the metadata, else the folder name) with it.
    pub fn from_report(dir: &Path) -> anyhow::Result<(String, SuiteBaseline)> {
        let results = dir.join(ResultsFile::NAME);
        if !results.exists() {
            bail!(
                "{}: no results; run the suite first (cargo xtask bench suites/<name>.toml)",
                dir.display()
            );
        }
        let records = read_records(&results, false)?;
        let metadata: serde_json::Value = std::fs::read_to_string(dir.join("metadata.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let text = |field: &str| metadata[field].as_str().map(str::to_owned);
        let name = text("suite")
            .as_deref()
            .and_then(|s| Path::new(s).file_stem()?.to_str().map(str::to_owned))
            .or_else(|| dir.file_name()?.to_str().map(str::to_owned))
            .unwrap_or_else(|| "suite".to_owned());
        let machine = &metadata["machine"];
        let timings = TimingsFile::read(dir)?.map_or_else(Vec::new, |t| timing_entries(&t));
        Ok((
            name,
            SuiteBaseline {
                ldbench_version: text("ldbench_version").unwrap_or_default(),
                git_revision: text("git_revision"),
                machine: format!(
                    "{} {} {} threads",
                    machine["os"].as_str().unwrap_or("?"),
                    machine["arch"].as_str().unwrap_or("?"),
                    machine["threads"].as_u64().unwrap_or(0)
                ),
                timings,
                accuracy: records.iter().map(accuracy_entry).collect(),
            },
        ))
    }
}

fn timing_entries(file: &TimingsFile) -> Vec<TimingEntry> {
    let mut entries: Vec<TimingEntry> = file
        .timings
        .iter()
        .filter_map(|t| {
            Some(TimingEntry {
                key: t.key.clone(),
                label: format!(
                    "{} | {} | {} | n={}",
                    t.objective,
                    t.preconditioner,
                    t.part.name(),
                    t.dim
                ),
                ns: t.ns?,
                ns_per_coordinate: t.ns_per_coordinate.map(|e| e.point),
            })
        })
        .collect();
    // Labels name benchmarks in exports, so they must be unique: two pairs may share labels.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for e in &mut entries {
        let count = seen.entry(e.label.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            e.label = format!("{} #{count}", e.label);
        }
    }
    entries
}

fn accuracy_entry(r: &Record) -> AccuracyEntry {
    AccuracyEntry {
        key: r.case.key.clone(),
        label: format!(
            "case {}: {} | {} | {} noise",
            r.case.index,
            r.case.objective.label,
            r.case.preconditioner.label,
            r.case.noise.structure.name()
        ),
        status: r.status,
        metrics: r.outcome.as_ref().map(metrics).unwrap_or_default(),
    }
}

impl Baseline {
    /// An empty baseline called `name`.
    pub fn new(name: &str) -> Baseline {
        Baseline {
            format: FORMAT.to_owned(),
            schema: BASELINE_SCHEMA,
            name: name.to_owned(),
            suites: BTreeMap::new(),
        }
    }

    /// Reads a baseline file.
    pub fn read(path: &Path) -> anyhow::Result<Baseline> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let b: Baseline = serde_json::from_str(&text)
            .with_context(|| format!("{}: not an ldbench baseline", path.display()))?;
        if b.format != FORMAT || b.schema != BASELINE_SCHEMA {
            bail!(
                "{}: {} schema {}, but this ldbench reads {FORMAT} schema {BASELINE_SCHEMA}",
                path.display(),
                b.format,
                b.schema
            );
        }
        Ok(b)
    }

    /// Writes the baseline with one line per benchmark and per case, so that a diff between
    /// releases shows exactly what changed.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = format!(
            "{{\n  \"format\": {},\n  \"schema\": {},\n  \"name\": {},\n  \"suites\": {{",
            json(&self.format),
            self.schema,
            json(&self.name)
        );
        for (i, (name, s)) in self.suites.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n    {}: {{\n      \"ldbench_version\": {},\n      \"git_revision\": {},\n      \"machine\": {},\n      \"timings\": [",
                if i > 0 { "," } else { "" },
                json(name),
                json(&s.ldbench_version),
                json(&s.git_revision),
                json(&s.machine)
            );
            lines(&mut out, &s.timings);
            out.push_str("],\n      \"accuracy\": [");
            lines(&mut out, &s.accuracy);
            out.push_str("]\n    }");
        }
        out.push_str("\n  }\n}\n");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }
}

/// One line of JSON.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn lines<T: Serialize>(out: &mut String, items: &[T]) {
    for (i, item) in items.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n        {}",
            if i > 0 { "," } else { "" },
            json(item)
        );
    }
    if !items.is_empty() {
        out.push_str("\n      ");
    }
}

/// Where baselines and reports are found by name.
#[derive(Debug, Clone)]
pub struct Places {
    /// Baseline files, `<dir>/<name>.json`.
    pub baselines: PathBuf,
    /// Report folders, `<dir>/<suite>/`.
    pub reports: PathBuf,
}

impl Places {
    /// A baseline from a name (`baselines/<name>.json`), a baseline file, or a report folder
    /// (which becomes a baseline named after the folder).
    pub fn load(&self, source: &str) -> anyhow::Result<Baseline> {
        let path = Path::new(source);
        if path.is_dir() {
            let (suite, b) = SuiteBaseline::from_report(path)?;
            let mut baseline = Baseline::new(&path.display().to_string());
            baseline.suites.insert(suite, b);
            return Ok(baseline);
        }
        if path.is_file() {
            return Baseline::read(path);
        }
        let file = self.baselines.join(format!("{source}.json"));
        if file.is_file() {
            return Baseline::read(&file);
        }
        let known: Vec<String> = std::fs::read_dir(&self.baselines)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_owned))?
            })
            .collect();
        bail!(
            "no baseline '{source}': not a report folder, not a file, and no {} (baselines there: {}); save one with cargo xtask bench <suite> --save-baseline {source}",
            file.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    }

    /// The latest run of every suite of `like` that has one, `reports/<suite>/` (the others are
    /// then listed as not compared).
    pub fn latest(&self, like: &Baseline) -> anyhow::Result<Baseline> {
        let mut latest = Baseline::new("latest run");
        for suite in like.suites.keys() {
            let dir = self.reports.join(suite);
            if !dir.join(ResultsFile::NAME).exists() {
                continue;
            }
            let (_, b) = SuiteBaseline::from_report(&dir)?;
            latest.suites.insert(suite.clone(), b);
        }
        if latest.suites.is_empty() {
            bail!(
                "no latest run of {} in {}: run one first (cargo xtask bench suites/<suite>.toml)",
                like.suites.keys().cloned().collect::<Vec<_>>().join(", "),
                self.reports.display()
            );
        }
        Ok(latest)
    }
}

/// Saves the report folder `dir` into the baseline `file` under its suite name, keeping the
/// file's other suites. Returns the suite name.
pub fn save(dir: &Path, file: &Path, name: &str) -> anyhow::Result<String> {
    let (suite, b) = SuiteBaseline::from_report(dir)?;
    let mut baseline = if file.exists() {
        Baseline::read(file)?
    } else {
        Baseline::new(name)
    };
    baseline.suites.insert(suite.clone(), b);
    baseline.write(file)?;
    Ok(suite)
}

/// When a change counts.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A timing must change by more than this fraction (and significantly) to count.
    pub time: f64,
    /// An accuracy metric must worsen by more than this many standard errors to count.
    pub accuracy_z: f64,
}

impl Default for Thresholds {
    /// 25%: criterion's intervals within one run are tight (often ±0.5%), but between two
    /// processes the same code moved by −23% to +14% in three unchanged runs of
    /// suites/adam_vs_sgd.toml on this 2-core VM (µs-scale benchmarks: allocation and memory
    /// layout differ per process), so a smaller default flags noise. 4 standard errors: one false
    /// alarm in ~30 000 metrics when nothing changed.
    fn default() -> Self {
        Thresholds {
            time: 0.25,
            accuracy_z: 4.0,
        }
    }
}

/// What a change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly worse.
    Regressed,
    /// Significantly better.
    Improved,
    /// Within the thresholds.
    Unchanged,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Regressed => "**regressed**",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
        }
    }
}

/// One timing compared.
#[derive(Debug, Clone, Serialize)]
pub struct TimingChange {
    /// Suite and label.
    pub suite: String,
    /// Benchmark label.
    pub label: String,
    /// ns before and after.
    pub old: Interval,
    /// ns after.
    pub new: Interval,
    /// new / old − 1, with its 95% interval.
    pub change: f64,
    /// Lower end of the change's 95% interval.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// The verdict.
    pub verdict: Verdict,
}

/// One accuracy metric compared.
#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    /// Suite.
    pub suite: String,
    /// Case label.
    pub label: String,
    /// Metric name.
    pub metric: String,
    /// Before.
    pub old: Estimate,
    /// After.
    pub new: Estimate,
    /// (|new| − |old|) in standard errors of the difference.
    pub z: f64,
    /// The verdict.
    pub verdict: Verdict,
}

/// A comparison of two baselines.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The older side's name.
    pub old: String,
    /// The newer side's name.
    pub new: String,
    /// The thresholds used.
    #[serde(skip)]
    pub thresholds: Thresholds,
    /// Timings present on both sides.
    pub timings: Vec<TimingChange>,
    /// Metrics present on both sides.
    pub accuracy: Vec<MetricChange>,
    /// Cases that ran before and fail now (regressions), and the reverse.
    pub now_failing: Vec<String>,
    /// Cases that failed before and run now.
    pub now_running: Vec<String>,
    /// Benchmarks and cases on one side only (the suite changed): listed, not judged.
    pub unmatched: Vec<String>,
}

/// Compares `new` against `old`, suite by suite, matching by key.
pub fn compare(old: &Baseline, new: &Baseline, thresholds: Thresholds) -> Comparison {
    let mut c = Comparison {
        old: old.name.clone(),
        new: new.name.clone(),
        thresholds,
        timings: Vec::new(),
        accuracy: Vec::new(),
        now_failing: Vec::new(),
        now_running: Vec::new(),
        unmatched: Vec::new(),
    };
    for (suite, before) in &old.suites {
        let Some(after) = new.suites.get(suite) else {
            c.unmatched
                .push(format!("suite {suite}: not in {}", new.name));
            continue;
        };
        let timings: BTreeMap<&str, &TimingEntry> =
            after.timings.iter().map(|t| (t.key.as_str(), t)).collect();
        for t in &before.timings {
            match timings.get(t.key.as_str()) {
                Some(n) => c.timings.push(timing_change(suite, t, n, thresholds)),
                None => c.unmatched.push(format!("{suite}: {} (timing)", t.label)),
            }
        }
        let cases: BTreeMap<&str, &AccuracyEntry> =
            after.accuracy.iter().map(|a| (a.key.as_str(), a)).collect();
        for a in &before.accuracy {
            let Some(n) = cases.get(a.key.as_str()) else {
                c.unmatched.push(format!("{suite}: {}", a.label));
                continue;
            };
            match (a.status, n.status) {
                (Status::Ok, Status::Failed) => c.now_failing.push(format!("{suite}: {}", n.label)),
                (Status::Failed, Status::Ok) => c.now_running.push(format!("{suite}: {}", n.label)),
                _ => {}
            }
            for (metric, old_value) in &a.metrics {
                if let Some(new_value) = n.metrics.get(metric) {
                    c.accuracy.push(metric_change(
                        suite, &n.label, metric, *old_value, *new_value, thresholds,
                    ));
                }
            }
        }
        let before_keys: std::collections::BTreeSet<&str> = before
            .timings
            .iter()
            .map(|t| t.key.as_str())
            .chain(before.accuracy.iter().map(|a| a.key.as_str()))
            .collect();
        c.unmatched.extend(
            after
                .timings
                .iter()
                .map(|t| (t.key.as_str(), &t.label))
                .chain(after.accuracy.iter().map(|a| (a.key.as_str(), &a.label)))
                .filter(|(key, _)| !before_keys.contains(key))
                .map(|(_, label)| format!("{suite}: {label} (new)")),
        );
    }
    c
}

fn timing_change(suite: &str, old: &TimingEntry, new: &TimingEntry, t: Thresholds) -> TimingChange {
    let (o, n) = (old.ns, new.ns);
    let ratio = n.point / o.point;
    // The change's interval on the log scale, from the two standard errors.
    let se = ((o.std_error / o.point).powi(2) + (n.std_error / n.point).powi(2)).sqrt();
    let (lower, upper) = (
        (ratio.ln() - 1.96 * se).exp() - 1.0,
        (ratio.ln() + 1.96 * se).exp() - 1.0,
    );
    let change = ratio - 1.0;
    let verdict = if change > t.time && lower > 0.0 {
        Verdict::Regressed
    } else if change < -t.time && upper < 0.0 {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    TimingChange {
        suite: suite.to_owned(),
        label: new.label.clone(),
        old: o,
        new: n,
        change,
        lower,
        upper,
        verdict,
    }
}

fn metric_change(
    suite: &str,
    label: &str,
    metric: &str,
    old: Estimate,
    new: Estimate,
    t: Thresholds,
) -> MetricChange {
    let worse = new.mean.abs() - old.mean.abs();
    let se = old.std_error.hypot(new.std_error);
    let z = if se > 0.0 {
        worse / se
    } else if worse == 0.0 {
        0.0
    } else {
        worse.signum() * f64::INFINITY
    };
    let verdict = if z > t.accuracy_z {
        Verdict::Regressed
    } else if z < -t.accuracy_z {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    MetricChange {
        suite: suite.to_owned(),
        label: label.to_owned(),
        metric: metric.to_owned(),
        old,
        new,
        z,
        verdict,
    }
}

impl Comparison {
    /// Regressions of any kind: slower timings, worse metrics, cases that now fail.
    pub fn regressions(&self) -> usize {
        self.timings
            .iter()
            .filter(|t| t.verdict == Verdict::Regressed)
            .count()
            + self
                .accuracy
                .iter()
                .filter(|m| m.verdict == Verdict::Regressed)
                .count()
            + self.now_failing.len()
    }

    /// The report in Markdown: a summary line, then every timing and every metric that is not
    /// unchanged (timings always, since they are few).
    pub fn markdown(&self) -> String {
        let t = self.thresholds;
        let count = |v: Verdict| {
            (
                self.timings.iter().filter(|x| x.verdict == v).count(),
                self.accuracy.iter().filter(|x| x.verdict == v).count(),
            )
        };
        let (tr, ar) = count(Verdict::Regressed);
        let (ti, ai) = count(Verdict::Improved);
        let mut md = format!(
            "# {} → {}\n\n{} regression(s): {tr} slower timing(s), {ar} worse accuracy metric(s), {} case(s) now failing. Improved: {ti} timing(s), {ai} metric(s), {} case(s) now running.\n\nThresholds: a timing counts when it changes by more than {:.0}% and its 95% interval excludes no change; an accuracy metric (a signed error) when its magnitude changes by more than {} standard errors.\n",
            self.old,
            self.new,
            self.regressions(),
            self.now_failing.len(),
            self.now_running.len(),
            t.time * 100.0,
            t.accuracy_z
        );
        if !self.timings.is_empty() {
            md.push_str("\n## Timings\n\n| suite | benchmark | before | after | change [95% interval] | verdict |\n|---|---|---|---|---|---|\n");
            for c in &self.timings {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:+.1}% [{:+.1}%, {:+.1}%] | {} |",
                    c.suite,
                    cell(&c.label),
                    crate::report::duration(c.old.point),
                    crate::report::duration(c.new.point),
                    100.0 * c.change,
                    100.0 * c.lower,
                    100.0 * c.upper,
                    c.verdict.mark()
                );
            }
        }
        let changed: Vec<&MetricChange> = self
            .accuracy
            .iter()
            .filter(|m| m.verdict != Verdict::Unchanged)
            .collect();
        let _ = write!(
            md,
            "\n## Accuracy\n\n{} metric(s) compared over {} case(s); {} changed beyond {} standard errors.\n",
            self.accuracy.len(),
            self.accuracy
                .iter()
                .map(|m| (&m.suite, &m.label))
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            changed.len(),
            t.accuracy_z
        );
        if !changed.is_empty() {
            md.push_str("\n| suite | case | metric | before ± SE | after ± SE | z | verdict |\n|---|---|---|---|---|---|---|\n");
            for m in changed {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:+.4} ± {:.4} | {:+.4} ± {:.4} | {:+.1} | {} |",
                    m.suite,
                    cell(&m.label),
                    m.metric,
                    m.old.mean,
                    m.old.std_error,
                    m.new.mean,
                    m.new.std_error,
                    m.z,
                    m.verdict.mark()
                );
            }
        }
        for (title, list) in [
            ("Cases that now fail", &self.now_failing),
            ("Cases that now run", &self.now_running),
            ("On one side only (not compared)", &self.unmatched),
        ] {
            if !list.is_empty() {
                let _ = write!(md, "\n## {title}\n\n");
                for item in list {
                    let _ = writeln!(md, "- {item}");
                }
            }
        }
        md
    }
}

/// Text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// github-action-benchmark's `customSmallerIsBetter` JSON: every timing in ns, and every
/// accuracy metric as its magnitude.
pub fn github_action_benchmark(b: &Baseline) -> serde_json::Value {
    let mut out = Vec::new();
    for (suite, s) in &b.suites {
        for t in &s.timings {
            out.push(serde_json::json!({
                "name": format!("{suite}: {}", t.label),
                "unit": "ns",
                "value": t.ns.point,
                "range": format!("± {:.3}", (t.ns.upper - t.ns.lower) / 2.0),
                "extra": format!("95% interval [{:.3}, {:.3}] ns", t.ns.lower, t.ns.upper),
            }));
        }
        for a in &s.accuracy {
            for (metric, e) in &a.metrics {
                out.push(serde_json::json!({
                    "name": format!("{suite}: {} [{metric}]", a.label),
                    "unit": "|relative error|",
                    "value": e.mean.abs(),
                    "range": format!("± {:.3e}", e.std_error),
                }));
            }
        }
    }
    serde_json::Value::Array(out)
}

/// Bencher's Metric Format (BMF): per benchmark, `latency` in ns with its interval; per case,
/// one measure per accuracy metric (its magnitude, ± 1.96 SE).
pub fn bencher_metric_format(b: &Baseline) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (suite, s) in &b.suites {
        for t in &s.timings {
            out.insert(
                format!("{suite}: {}", t.label),
                serde_json::json!({ "latency": {
                    "value": t.ns.point,
                    "lower_value": t.ns.lower,
                    "upper_value": t.ns.upper,
                }}),
            );
        }
        for a in &s.accuracy {
            let measures: serde_json::Map<String, serde_json::Value> = a
                .metrics
                .iter()
                .map(|(metric, e)| {
                    let v = e.mean.abs();
                    (
                        metric.replace('_', "-"),
                        serde_json::json!({
                            "value": v,
                            "lower_value": (v - 1.96 * e.std_error).max(0.0),
                            "upper_value": v + 1.96 * e.std_error,
                        }),
                    )
                })
                .collect();
            if !measures.is_empty() {
                out.insert(
                    format!("{suite}: {}", a.label),
                    serde_json::Value::Object(measures),
                );
            }
        }
    }
    serde_json::Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(ns: f64, se: f64) -> TimingEntry {
        TimingEntry {
            key: "k".into(),
            label: "l".into(),
            ns: Interval {
                point: ns,
                lower: ns - 2.0 * se,
                upper: ns + 2.0 * se,
                std_error: se,
            },
            ns_per_coordinate: None,
        }
    }

    #[test]
    fn a_timing_regresses_only_beyond_the_threshold_and_its_interval() {
        let t = Thresholds::default();
        let verdict =
            |old: TimingEntry, new: TimingEntry| timing_change("s", &old, &new, t).verdict;
        assert_eq!(
            verdict(timing(100.0, 1.0), timing(100.0, 1.0)),
            Verdict::Unchanged
        );
        assert_eq!(
            verdict(timing(100.0, 1.0), timing(200.0, 2.0)),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(timing(200.0, 2.0), timing(100.0, 1.0)),
            Verdict::Improved
        );
        // Twice as slow but so noisy that the interval of the change includes no change.
        assert_eq!(
            verdict(timing(100.0, 60.0), timing(200.0, 120.0)),
            Verdict::Unchanged
        );
        // Significant but within the noise threshold.
        assert_eq!(
            verdict(timing(100.0, 0.1), timing(110.0, 0.1)),
            Verdict::Unchanged
        );
    }

    #[test]
    fn an_accuracy_metric_regresses_when_its_magnitude_grows_by_more_than_z_standard_errors() {
        let t = Thresholds::default();
        let e = |mean: f64, std_error: f64| Estimate { mean, std_error };
        let verdict = |old, new| metric_change("s", "c", "m", old, new, t).verdict;
        assert_eq!(verdict(e(0.01, 0.01), e(0.01, 0.01)), Verdict::Unchanged);
        // |error| from 0.01 to 0.08: 0.07 / (0.01·√2) ≈ 4.9 standard errors.
        assert_eq!(verdict(e(0.01, 0.01), e(0.08, 0.01)), Verdict::Regressed);
        assert_eq!(verdict(e(0.08, 0.01), e(0.01, 0.01)), Verdict::Improved);
        // The sign flips, the magnitude does not move: not a regression.
        assert_eq!(verdict(e(0.05, 0.001), e(-0.05, 0.001)), Verdict::Unchanged);
        // Exact metrics (standard error 0): any growth counts.
        assert_eq!(verdict(e(0.0, 0.0), e(1.0, 0.0)), Verdict::Regressed);
    }

    #[test]
    fn a_baseline_reads_back_as_written_with_one_line_per_entry() {
        let mut b = Baseline::new("v1");
        b.suites.insert(
            "s".into(),
            SuiteBaseline {
                ldbench_version: "0.1.0".into(),
                git_revision: None,
                machine: "m".into(),
                timings: vec![timing(1.0, 0.1), timing(2.0, 0.1)],
                accuracy: vec![AccuracyEntry {
                    key: "case".into(),
                    label: "case 0".into(),
                    status: Status::Ok,
                    metrics: BTreeMap::from([(
                        "loss_error".into(),
                        Estimate {
                            mean: 0.01,
                            std_error: 0.002,
                        },
                    )]),
                }],
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.json");
        b.write(&path).unwrap();
        assert_eq!(Baseline::read(&path).unwrap(), b);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("\"key\"")).count(), 3);
    }
}
