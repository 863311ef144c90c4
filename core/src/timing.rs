//! The timing phase of a suite run: criterion, used as a library, measures each (objective,
//! preconditioner) pair of the suite at its dimension — the batched gradient, the
//! preconditioner's apply, one full step of the chain block and the closed form — and the
//! estimates go to `timings.json` beside the results.
//!
//! Criterion has no API that returns its estimates; they are read back from its own files
//! (`<report>/criterion/<group>/<part>/<n>/new/estimates.json`), which stay in the report folder so
//! that criterion's own history and change reports remain available.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde::{Deserialize, Serialize};

use crate::plugin::PluginDir;
use crate::runner::{Prepared, prepare};
use crate::sim::{CHAINS_PER_BLOCK, Objective, Sampler, SimConfig};
use crate::suite::{Case, TimingSpec};

/// Version of `timings.json` (documented in `reports/README.md`).
pub const TIMINGS_SCHEMA: u32 = 1;

/// The file, in the report folder.
pub const TIMINGS_FILE: &str = "timings.json";

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The objective's value and gradient on the n×m block of chains.
    Gradient,
    /// The preconditioner plugin's G·X on the n×m block.
    Apply,
    /// One step of the m-chain block: gradient, G, noise and update, as the simulator runs it.
    Step,
    /// The closed form: one Cholesky, one eigendecomposition and the stationary value.
    ClosedForm,
}

impl Timing {
    /// The plugin a part's speed mostly belongs to: the preconditioner for apply, the objective
    /// for the rest (its gradient dominates the step; the closed form depends on n alone).
    pub fn plugin(&self) -> &str {
        match self.part {
            Part::Apply => &self.preconditioner_plugin,
            Part::Gradient | Part::Step | Part::ClosedForm => &self.objective_plugin,
        }
    }
}

impl Part {
    /// Every part, in report order.
    pub const ALL: [Part; 4] = [Part::Gradient, Part::Apply, Part::Step, Part::ClosedForm];

    /// The name used in suite files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Part::Gradient => "gradient",
            Part::Apply => "apply",
            Part::Step => "step",
            Part::ClosedForm => "closed-form",
        }
    }

    /// Whether the part works on the n×m block (so it has a cost per coordinate per step).
    pub fn per_block(self) -> bool {
        self != Part::ClosedForm
    }
}

/// A criterion estimate in nanoseconds: the point, its 95% confidence interval and its
/// standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Point estimate.
    pub point: f64,
    /// Lower end of the 95% confidence interval.
    pub lower: f64,
    /// Upper end of the 95% confidence interval.
    pub upper: f64,
    /// Standard error (bootstrap).
    pub std_error: f64,
}

impl Interval {
    /// Every value divided by `d`.
    pub fn per(self, d: f64) -> Interval {
        Interval {
            point: self.point / d,
            lower: self.lower / d,
            upper: self.upper / d,
            std_error: self.std_error / d,
        }
    }
}

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// `<pair key> | <part>`: the identity baselines match on.
    pub key: String,
    /// The objective's label.
    pub objective: String,
    /// The preconditioner's label.
    pub preconditioner: String,
    /// The objective plugin.
    pub objective_plugin: String,
    /// The preconditioner plugin.
    pub preconditioner_plugin: String,
    /// The noise structure of the case the pair was timed with.
    pub noise: String,
    /// What was timed.
    pub part: Part,
    /// n.
    pub dim: usize,
    /// m, the chains of the block (1 for the closed form).
    pub chains: usize,
    /// Time per call, ns (per step for `step`).
    pub ns: Option<Interval>,
    /// Time per coordinate per step, ns/(n·m): the throughput of block parts.
    pub ns_per_coordinate: Option<Interval>,
    /// Why it could not be timed.
    pub error: Option<String>,
}

/// `timings.json`: the settings and every benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimingsFile {
    /// [`TIMINGS_SCHEMA`].
    pub schema: u32,
    /// The settings used.
    pub settings: TimingSpec,
    /// One entry per (pair, part).
    pub timings: Vec<Timing>,
}

impl TimingsFile {
    /// Reads `dir/timings.json`, if there is one.
    pub fn read(dir: &Path) -> anyhow::Result<Option<TimingsFile>> {
        let path = dir.join(TIMINGS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        let file: TimingsFile = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a timings file: {e}", path.display()))?;
        if file.schema != TIMINGS_SCHEMA {
            anyhow::bail!(
                "{}: timings schema {} but this ldbench reads {TIMINGS_SCHEMA}",
                path.display(),
                file.schema
            );
        }
        Ok(Some(file))
    }

    /// Writes `dir/timings.json` (through a temporary file, so a reader never sees half of it).
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join(TIMINGS_FILE);
        let tmp = dir.join(format!("{TIMINGS_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// The (objective, preconditioner) pairs of `cases`, each represented by its first case.
pub fn pairs<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Vec<&'a Case> {
    let mut seen = BTreeSet::new();
    cases
        .into_iter()
        .filter(|c| seen.insert(c.pair_key()))
        .collect()
}

/// Times every part of every pair with criterion, keeping its data under `dir/criterion`.
/// `progress` is called once per pair, after it is timed. A pair that cannot be prepared, or a
/// part whose first call fails, is recorded with its error; nothing here panics on plugin faults.
pub fn measure(
    pairs: &[&Case],
    plugins: &PluginDir,
    spec: &TimingSpec,
    dir: &Path,
    progress: &dyn Fn(&Case),
) -> TimingsFile {
    let mut criterion = Criterion::default()
        .output_directory(&dir.join("criterion"))
        .warm_up_time(Duration::from_secs_f64(spec.warm_up))
        .measurement_time(Duration::from_secs_f64(spec.measurement))
        .sample_size(spec.samples)
        .nresamples(spec.resamples)
        .without_plots();
    let mut timings = Vec::new();
    for case in pairs {
        let chains = spec.chains.unwrap_or(case.run.chains).min(CHAINS_PER_BLOCK);
        match prepare(case, plugins) {
            Ok(p) => {
                for &part in &spec.parts {
                    timings.push(time_part(&mut criterion, dir, case, &p, part, chains));
                }
            }
            Err(reason) => {
                for &part in &spec.parts {
                    timings.push(Timing {
                        error: Some(reason.clone()),
                        ..timing(case, part, 0, chains)
                    });
                }
            }
        }
        progress(case);
    }
    TimingsFile {
        schema: TIMINGS_SCHEMA,
        settings: spec.clone(),
        timings,
    }
}

fn timing(case: &Case, part: Part, dim: usize, chains: usize) -> Timing {
    Timing {
        key: format!("{} | {}", case.pair_key(), part.name()),
        objective: case.objective.label.clone(),
        preconditioner: case.preconditioner.label.clone(),
        objective_plugin: case.objective.plugin.clone(),
        preconditioner_plugin: case.preconditioner.plugin.clone(),
        noise: case.noise.structure.name().to_owned(),
        part,
        dim,
        chains: if part.per_block() { chains } else { 1 },
        ns: None,
        ns_per_coordinate: None,
        error: None,
    }
}

/// Criterion's group for a pair: readable, unique (a hash of the key), and already safe as a
/// directory name, so that the path criterion writes to is known.
fn group_name(case: &Case) -> String {
    use sha2::Digest;
    let hash = format!("{:x}", sha2::Sha256::digest(case.pair_key().as_bytes()));
    let label = format!("{} {}", case.objective.label, case.preconditioner.label);
    let safe: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("{safe}-{}", &hash[..8])
}

fn time_part(
    criterion: &mut Criterion,
    dir: &Path,
    case: &Case,
    p: &Prepared,
    part: Part,
    chains: usize,
) -> Timing {
    let n = p.theory.dim();
    let mut result = timing(case, part, n, chains);
    let theta: Vec<f64> = p
        .objective
        .theta_star()
        .iter()
        .copied()
        .cycle()
        .take(n * chains)
        .collect();
    let mut value = vec![0.0; chains];
    let mut grad = vec![0.0; n * chains];
    let sampler = match Sampler::new(&p.objective, &p.precond, &p.noise_cov) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    // `steps` steps of the block, from θ*, with nothing kept but what the run needs.
    let steps = |steps: u64| {
        let config = SimConfig {
            burn_in: 0,
            batches: 2,
            thin: steps + 2,
            case: case.index as u64,
            ..SimConfig::new(p.eta, chains, steps + 1)
        };
        sampler
            .run(&config, None)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let closed_form = || {
        p.hessian
            .closed_form(&p.precond, &p.noise_cov)
            .and_then(|cf| cf.stationary_discrete(p.eta))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    // One call first: a failing part is recorded, not benchmarked.
    let first = match part {
        Part::Gradient => p
            .objective
            .value_and_gradient(&theta, &mut value, &mut grad)
            .map_err(|e| e.to_string()),
        Part::Apply => p
            .precond_plugin
            .apply(&theta)
            .map(drop)
            .map_err(|e| e.to_string()),
        Part::Step => steps(1),
        Part::ClosedForm => closed_form(),
    };
    if let Err(e) = first {
        result.error = Some(format!("{}: {e}", part.name()));
        return result;
    }
    let group_id = group_name(case);
    let estimates = dir
        .join("criterion")
        .join(&group_id)
        .join(part.name())
        .join(n.to_string())
        .join("new")
        .join("estimates.json");
    // Never read back an earlier run's numbers.
    let _ = std::fs::remove_file(&estimates);
    let mut group = criterion.benchmark_group(&group_id);
    if part.per_block() {
        group.throughput(Throughput::Elements((n * chains) as u64));
    } else {
        // Long calls: the same iteration count in every sample, not 1, 2, …, k.
        group.sampling_mode(SamplingMode::Flat);
    }
    let id = BenchmarkId::new(part.name(), n);
    match part {
        Part::Gradient => group.bench_function(id, |b| {
            b.iter(|| {
                p.objective
                    .value_and_gradient(&theta, &mut value, &mut grad)
                    .is_ok()
            })
        }),
        Part::Apply => group.bench_function(id, |b| {
            b.iter(|| p.precond_plugin.apply_into(&theta, &mut grad).is_ok())
        }),
        Part::Step => group.bench_function(id, |b| {
            // A run of `iters` steps: the per-step cost is the slope, the run's set-up the
            // intercept of criterion's regression.
            b.iter_custom(|iters| {
                let started = Instant::now();
                let _ = steps(iters);
                started.elapsed()
            })
        }),
        Part::ClosedForm => group.bench_function(id, |b| b.iter(closed_form)),
    };
    group.finish();
    match read_estimate(&estimates) {
        Ok(ns) => {
            result.ns = Some(ns);
            result.ns_per_coordinate = part.per_block().then(|| ns.per((n * chains) as f64));
        }
        Err(e) => result.error = Some(e),
    }
    result
}

/// Criterion's headline estimate from its `estimates.json`: the slope when it has one (linear
/// sampling), else the mean.
fn read_estimate(path: &Path) -> Result<Interval, String> {
    #[derive(Deserialize)]
    struct Bounds {
        lower_bound: f64,
        upper_bound: f64,
    }
    #[derive(Deserialize)]
    struct Estimate {
        confidence_interval: Bounds,
        point_estimate: f64,
        standard_error: f64,
    }
    #[derive(Deserialize)]
    struct Estimates {
        mean: Estimate,
        slope: Option<Estimate>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("criterion wrote no estimates at {}: {e}", path.display()))?;
    let all: Estimates = serde_json::from_str(&text)
        .map_err(|e| format!("{}: unreadable criterion estimates: {e}", path.display()))?;
    let e = all.slope.unwrap_or(all.mean);
    Ok(Interval {
        point: e.point_estimate,
        lower: e.confidence_interval.lower_bound,
        upper: e.confidence_interval.upper_bound,
        std_error: e.standard_error,
    })
}
