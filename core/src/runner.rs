//! The suite runner: prepares each case (objective and preconditioner plugins, the noise
//! structure, the step size, the closed form), simulates it, and appends one JSON record per case
//! to `results.jsonl` — atomically, so an interrupted run resumes without losing or redoing work.
//!
//! A case that fails (a plugin error or panic, an unusable Hessian, divergence) is recorded with
//! its reason; the suite goes on.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::linalg::{SymMatrix, random_orthogonal, with_spectrum};
use crate::plugin::{PluginDir, PluginError, PluginObjective, PluginPrecond};
use crate::rank::{RankEstimate, exact_rank, kpm_rank, numerical_rank};
use crate::sim::{Estimate, Estimates, Objective, Sampler, SimConfig, Simulation, stream};
use crate::suite::{Case, Estimator, Structure};
use crate::theory::{ClosedForm, DEFAULT_MATCHED_RTOL, DEFAULT_RANK_RTOL};
use ldbench_sdk::abi::CAP_HESSIAN_SPECTRUM;

/// Version of the record format in `results.jsonl` (documented in `reports/README.md`).
pub const RESULTS_SCHEMA: u32 = 1;

/// The stream input that draws random noise bases: shared by every case of a seed, so that all
/// preconditioners of one (objective, noise) combination see the same rotation.
const NOISE_BASIS_STREAM: u64 = u64::MAX;

/// H at θ*: dense, or its eigenvalues when the dense matrix would not fit (the closed form then
/// needs G and Σ to be multiples of I).
pub enum HessianForm {
    /// n×n.
    Dense(Mat<f64>),
    /// The n eigenvalues, from the objective plugin, and the seconds that call took.
    Spectrum {
        /// The eigenvalues.
        eigenvalues: Vec<f64>,
        /// The cost of asking for them.
        seconds: f64,
    },
}

impl HessianForm {
    /// The dense matrix, if this is one.
    pub fn dense(&self) -> Option<&Mat<f64>> {
        match self {
            HessianForm::Dense(h) => Some(h),
            HessianForm::Spectrum { .. } => None,
        }
    }

    /// The closed form for (H, G, Σ).
    pub fn closed_form(
        &self,
        precond: &SymMatrix,
        noise_cov: &SymMatrix,
    ) -> Result<ClosedForm, crate::theory::TheoryError> {
        match self {
            HessianForm::Dense(h) => {
                ClosedForm::new(h.as_ref(), precond, noise_cov, DEFAULT_RANK_RTOL)
            }
            HessianForm::Spectrum { eigenvalues, .. } => {
                ClosedForm::from_spectrum(eigenvalues, precond, noise_cov, DEFAULT_RANK_RTOL)
            }
        }
    }
}

/// A case made ready to simulate.
pub struct Prepared {
    /// The objective plugin instance.
    pub objective: PluginObjective,
    /// H at θ*, dense or (for problems too large) as its eigenvalues.
    pub hessian: HessianForm,
    /// The preconditioner plugin instance G came from.
    pub precond_plugin: PluginPrecond,
    /// G.
    pub precond: SymMatrix,
    /// Σ = ηC (or σ²G⁻¹ for matched noise).
    pub noise_cov: SymMatrix,
    /// η.
    pub eta: f64,
    /// The closed form for (H, G, Σ).
    pub theory: ClosedForm,
}

/// Instantiates the plugins of `case`, builds C, G, η and Σ, and the closed form. An error is
/// the reason the case cannot run.
pub fn prepare(case: &Case, plugins: &PluginDir) -> Result<Prepared, String> {
    let seed = case.run.seed.unwrap_or(0);
    let objective_plugin = plugins
        .load(&case.objective.plugin)
        .map_err(|e| e.to_string())?;
    let objective = PluginObjective::new(&objective_plugin, &case.objective.params_text(), seed)
        .map_err(|e| e.to_string())?;
    let n = objective.dim();
    // The dense Hessian where it fits and the plugin gives it; else its eigenvalues, when the
    // plugin knows them.
    let dense_fits = check_memory(case, n, DENSE_MATRICES);
    let dense = if dense_fits.is_ok() {
        objective.hessian()
    } else {
        Ok(None)
    };
    let hessian = match dense {
        Ok(Some(h)) => HessianForm::Dense(h),
        _ if objective.has(CAP_HESSIAN_SPECTRUM) => {
            check_memory(case, n, SPECTRUM_MATRICES)?;
            let started = Instant::now();
            let eigenvalues = required(objective.hessian_eigenvalues(), || {
                format!("{} offers no Hessian eigenvalues", case.objective.plugin)
            })?;
            HessianForm::Spectrum {
                eigenvalues,
                seconds: started.elapsed().as_secs_f64(),
            }
        }
        dense => {
            dense_fits?;
            HessianForm::Dense(required(dense, || {
                format!(
                    "{} offers no dense Hessian (nor its eigenvalues), which the closed form needs",
                    case.objective.plugin
                )
            })?)
        }
    };
    let noise = &case.noise;
    if !(noise.scale.is_finite() && noise.scale > 0.0) {
        return Err(format!("noise.scale = {} must be positive", noise.scale));
    }
    // C, the gradient-noise covariance the preconditioner is built from. Matched noise builds G
    // from isotropic noise of the same scale, then sets Σ = σ²G⁻¹ (THEORY.md §6).
    let c = gradient_noise(case, n, &hessian, &objective)?;
    let precond_plugin = plugins
        .load(&case.preconditioner.plugin)
        .map_err(|e| e.to_string())?;
    let precond_plugin = PluginPrecond::new(
        &precond_plugin,
        &case.preconditioner.params_text(),
        seed,
        hessian.dense(),
        &c.to_dense(),
    )
    .map_err(|e| e.to_string())?;
    let precond = precond_plugin.matrix().map_err(|e| e.to_string())?;
    // Σ is linear in η (Σ = ηC, or σ²G⁻¹ with σ² = η·scale): one closed form at η = 1 gives
    // λ_max(GH), hence η, and scales to the case's Σ.
    let unit_noise = match noise.structure {
        Structure::Matched => scaled(&precond.inverse().map_err(|e| e.to_string())?, noise.scale),
        _ => c,
    };
    let unit = hessian
        .closed_form(&precond, &unit_noise)
        .map_err(|e| e.to_string())?;
    let eta = match case.run.eta {
        Some(eta) => eta,
        None => case.run.eta_fraction * 2.0 / unit.lambda_max(),
    };
    let theory = unit.with_noise_scaled(eta);
    theory.check_stable(eta).map_err(|e| e.to_string())?;
    let noise_cov = scaled(&unit_noise, eta);
    Ok(Prepared {
        objective,
        hessian,
        precond_plugin,
        precond,
        noise_cov,
        eta,
        theory,
    })
}

/// An optional plugin output the case needs: its error, or `missing()` when the plugin lacks the
/// capability.
fn required<T>(
    output: Result<Option<T>, PluginError>,
    missing: impl FnOnce() -> String,
) -> Result<T, String> {
    output.map_err(|e| e.to_string())?.ok_or_else(missing)
}

/// Dense n×n matrices a case holds at most with a dense Hessian: H, C, G, Σ, the noise factor, the
/// eigenvectors and the products of the closed form.
const DENSE_MATRICES: f64 = 10.0;
/// With the Hessian's eigenvalues only (G and Σ multiples of I): C handed to the preconditioner
/// plugin, and its column-major copy.
const SPECTRUM_MATRICES: f64 = 2.0;

/// Bytes a case needs at most: `matrices` dense n×n matrices, eight n×m blocks of the simulator,
/// and the loss trace.
fn memory_estimate(n: usize, case: &Case, matrices: f64) -> f64 {
    let (n, m) = (n as f64, case.run.chains as f64);
    let thin = case
        .run
        .thin
        .unwrap_or((case.run.steps / 200).max(1))
        .max(1);
    let points = (case.run.steps / thin) as f64 + 1.0;
    8.0 * (matrices * n * n + 8.0 * n * m + m * points)
}

/// `MemAvailable` from /proc/meminfo, in bytes (None where there is no such file).
fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses a case that needs more memory than the machine has, before anything large is built.
fn check_memory(case: &Case, n: usize, matrices: f64) -> Result<(), String> {
    let (Some(available), need) = (available_memory(), memory_estimate(n, case, matrices)) else {
        return Ok(());
    };
    if need > available {
        let gib = |b: f64| b / f64::from(1u32 << 30);
        return Err(format!(
            "needs about {:.1} GiB (n = {n}, {} chains) but the machine has {:.1} GiB available; \
             lower the dimension or the chains",
            gib(need),
            case.run.chains,
            gib(available)
        ));
    }
    Ok(())
}

fn scaled(m: &SymMatrix, factor: f64) -> SymMatrix {
    match m {
        SymMatrix::Scaled { dim, scale } => SymMatrix::Scaled {
            dim: *dim,
            scale: scale * factor,
        },
        SymMatrix::Diagonal(d) => SymMatrix::Diagonal(d.iter().map(|v| v * factor).collect()),
        SymMatrix::Dense(m) => SymMatrix::Dense(m * faer::Scale(factor)),
    }
}

/// C for the case's noise structure, keeping its structure: isotropic and diagonal noise stay
/// diagonal, so that the simulator's noise costs O(n) per chain and step, not a product.
fn gradient_noise(
    case: &Case,
    n: usize,
    hessian: &HessianForm,
    objective: &PluginObjective,
) -> Result<SymMatrix, String> {
    let noise = &case.noise;
    let s = noise.scale;
    let mut rng = stream::chain_rng(case.run.seed.unwrap_or(0), NOISE_BASIS_STREAM, n as u64);
    let decaying = || -> Result<Vec<f64>, String> {
        if !(noise.anisotropy.is_finite() && noise.anisotropy >= 1.0) {
            return Err(format!(
                "noise.anisotropy = {} must be a number ≥ 1",
                noise.anisotropy
            ));
        }
        let last = (n.max(2) - 1) as f64;
        Ok((0..n)
            .map(|j| s * noise.anisotropy.powf(-(j as f64) / last))
            .collect())
    };
    Ok(match noise.structure {
        Structure::Isotropic | Structure::Matched => SymMatrix::Scaled { dim: n, scale: s },
        Structure::HessianAligned => {
            let hessian = hessian
                .dense()
                .ok_or("hessian-aligned noise needs the dense Hessian, which does not fit here")?;
            let top = hessian
                .self_adjoint_eigenvalues(faer::Side::Lower)
                .map_err(|_| "the Hessian's eigendecomposition did not converge".to_owned())?
                .last()
                .copied()
                .unwrap_or(0.0);
            if !(top > 0.0) {
                return Err(
                    "hessian-aligned noise needs a Hessian with a positive eigenvalue".into(),
                );
            }
            SymMatrix::Dense(hessian * faer::Scale(s / top))
        }
        Structure::Diagonal => SymMatrix::Diagonal(decaying()?),
        Structure::Rotated => {
            SymMatrix::Dense(with_spectrum(&random_orthogonal(n, &mut rng), &decaying()?))
        }
        Structure::LowRank => {
            let k = noise.rank.unwrap_or(n.div_ceil(2));
            if k == 0 || k > n {
                return Err(format!("noise.rank = {k} must lie in 1..={n}"));
            }
            let mut spectrum = vec![s; k];
            spectrum.resize(n, 0.0);
            SymMatrix::Dense(with_spectrum(&random_orthogonal(n, &mut rng), &spectrum))
        }
        Structure::Objective => {
            let c = required(objective.gradient_noise(), || {
                format!(
                    "{} has no gradient-noise model; choose another noise structure",
                    case.objective.plugin
                )
            })?;
            SymMatrix::Dense(c * faer::Scale(s))
        }
    })
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Simulated.
    Ok,
    /// Did not run to the end; `reason` says why.
    Failed,
}

/// One case's result: a line of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`RESULTS_SCHEMA`].
    pub schema: u32,
    /// The case, with its index and key.
    pub case: Case,
    /// Pass or fail.
    pub status: Status,
    /// Why it failed.
    pub reason: Option<String>,
    /// What it measured.
    pub outcome: Option<Outcome>,
}

impl Record {
    /// The record of a case that could not run, with the reason.
    pub fn failed(case: &Case, reason: String) -> Record {
        Record {
            schema: RESULTS_SCHEMA,
            case: case.clone(),
            status: Status::Failed,
            reason: Some(reason),
            outcome: None,
        }
    }
}

/// Measurements of a case that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// n.
    pub dim: usize,
    /// rank(H) numerically.
    pub rank: usize,
    /// rank(H) according to the objective.
    pub true_rank: Option<usize>,
    /// η.
    pub eta: f64,
    /// λ_max(GH).
    pub lambda_max: f64,
    /// σ² when GΣ = σ²I holds.
    pub matched_sigma2: Option<f64>,
    /// The σ² the rank estimates divide by, when GΣ = σ²I holds for some σ²: the injected one,
    /// η·scale, for isotropic and matched noise (as a user of the estimator would); else
    /// `matched_sigma2`. The estimates equal the rank only when the two agree.
    #[serde(default)]
    pub rank_sigma2: Option<f64>,
    /// Closed form: stationary excess loss (continuous, discrete) and escape slope.
    pub theory_continuous: f64,
    /// Closed form for the discrete chain.
    pub theory_discrete: f64,
    /// The discrete closed form averaged over the window's steps: the exact expectation of the
    /// window mean from θ*, equilibrated or not.
    pub theory_window: f64,
    /// ½ tr(HGΣG).
    pub escape_slope: f64,
    /// Window estimates.
    pub estimates: Estimates,
    /// (simulated − window theory) / SE.
    pub z_score: f64,
    /// simulated / window theory − 1.
    pub relative_error: f64,
    /// (corrected − continuous theory) / SE.
    pub z_score_corrected: f64,
    /// r̂ and r̂_c when the noise is matched.
    pub rank_paper: Option<Estimate>,
    /// r̂_c.
    pub rank_corrected: Option<Estimate>,
    /// The suite's `[rank]` estimators, with their costs (r̂ and r̂_c where `rank_sigma2` is set).
    #[serde(default)]
    pub rank_estimates: Vec<RankEstimate>,
    /// The thinned loss trace with the theory curves.
    pub trace: Vec<TracePoint>,
    /// Wall-clock seconds of the simulation.
    pub seconds: f64,
}

/// A point of the loss trace beside the theory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// The step.
    pub step: u64,
    /// Mean excess loss over chains.
    pub mean: f64,
    /// Its standard error.
    pub std_error: f64,
    /// E[f(θ_k)] − f*, discrete closed form.
    pub theory_discrete: f64,
    /// E[f(θ_t)] − f* at t = kη, continuous closed form.
    pub theory_continuous: f64,
    /// f(θ_k) − f* of the first chain: one run.
    #[serde(default)]
    pub first_chain: Option<f64>,
}

/// Prepares and simulates one case; never panics on plugin faults, never returns an error: a
/// failure is a record with its reason.
pub fn run_case(case: &Case, plugins: &PluginDir) -> Record {
    let failed = |reason: String| Record::failed(case, reason);
    let prepared = match prepare(case, plugins) {
        Ok(p) => p,
        Err(reason) => return failed(reason),
    };
    match simulate(case, &prepared) {
        Ok(outcome) => Record {
            schema: RESULTS_SCHEMA,
            case: case.clone(),
            status: Status::Ok,
            reason: None,
            outcome: Some(outcome),
        },
        Err(reason) => failed(reason),
    }
}

fn simulate(case: &Case, p: &Prepared) -> Result<Outcome, String> {
    let run = &case.run;
    let config = SimConfig {
        burn_in: run.burn_in.unwrap_or(run.steps / 2),
        batches: run.batches,
        thin: run.thin.unwrap_or((run.steps / 200).max(1)),
        seed: run.seed.unwrap_or(0),
        case: case.index as u64,
        ..SimConfig::new(p.eta, run.chains, run.steps)
    };
    let started = Instant::now();
    let sampler =
        Sampler::new(&p.objective, &p.precond, &p.noise_cov).map_err(|e| e.to_string())?;
    let sim = sampler.run(&config, None).map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let cf = &p.theory;
    let discrete = cf.stationary_discrete(p.eta).map_err(|e| e.to_string())?;
    let continuous = cf.stationary_continuous().map_err(|e| e.to_string())?;
    let matched_sigma2 = cf.matched_sigma2(DEFAULT_MATCHED_RTOL);
    let rank_sigma2 = matched_sigma2.map(|matched| match case.noise.structure {
        Structure::Isotropic | Structure::Matched => p.eta * case.noise.scale,
        _ => matched,
    });
    let trace = sim
        .trace
        .iter()
        .map(|t| {
            Ok(TracePoint {
                step: t.step,
                mean: t.mean,
                std_error: t.std_error,
                theory_discrete: cf
                    .discrete_at(t.step, p.eta, None)
                    .map_err(|e| e.to_string())?,
                theory_continuous: cf.continuous_at(t.step as f64 * p.eta, None),
                first_chain: Some(t.first_chain),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let window = config.window() as f64;
    let theory_window = (config.burn_in + 1..=config.steps)
        .map(|k| cf.discrete_at(k, p.eta, None))
        .sum::<Result<f64, _>>()
        .map_err(|e| e.to_string())?
        / window;
    let e = sim.estimates;
    let rank_estimates = rank_estimates(case, p, &sim, rank_sigma2, &config, seconds)?;
    Ok(Outcome {
        dim: cf.dim(),
        rank: cf.rank(),
        true_rank: p.objective.true_rank(),
        eta: p.eta,
        lambda_max: cf.lambda_max(),
        matched_sigma2,
        rank_sigma2,
        theory_continuous: continuous,
        theory_discrete: discrete,
        theory_window,
        escape_slope: cf.escape_slope(),
        estimates: e,
        z_score: e.excess_loss.z_score(theory_window),
        relative_error: e.excess_loss.mean / theory_window - 1.0,
        z_score_corrected: e.corrected_excess_loss.z_score(continuous),
        rank_paper: rank_sigma2.map(|s| e.rank(s)),
        rank_corrected: rank_sigma2.map(|s| e.rank_corrected(s)),
        rank_estimates,
        trace,
        seconds,
    })
}

/// The case's `[rank]` estimators. The truth they are judged against is the objective's rank
/// (else the numerical one).
fn rank_estimates(
    case: &Case,
    p: &Prepared,
    sim: &Simulation,
    rank_sigma2: Option<f64>,
    config: &SimConfig,
    seconds: f64,
) -> Result<Vec<RankEstimate>, String> {
    let truth = p.objective.true_rank().unwrap_or(p.theory.rank()) as f64;
    let gradients = config.chains as u64 * (config.steps + 1);
    let mut out = Vec::new();
    for estimator in &case.rank.estimators {
        let name = estimator.name();
        match estimator {
            Estimator::Paper | Estimator::Corrected => {
                let means = if *estimator == Estimator::Paper {
                    &sim.chain_means.excess_loss
                } else {
                    &sim.chain_means.corrected_excess_loss
                };
                if let Some(sigma2) = rank_sigma2 {
                    let values: Vec<f64> = means.iter().map(|m| 4.0 * m / sigma2).collect();
                    out.push(RankEstimate::from_runs(
                        name, &values, truth, gradients, seconds,
                    ));
                }
            }
            Estimator::Kpm => {
                let n = p.theory.dim();
                let mut products = |v: &[f64]| {
                    required(p.objective.hessian_vector(v), || {
                        format!(
                            "{} offers no Hessian-vector products, which the KPM estimator needs",
                            case.objective.plugin
                        )
                    })
                };
                let kpm = kpm_rank(n, &mut products, case.rank.kpm, case.run.seed.unwrap_or(0))?;
                out.push(RankEstimate {
                    estimator: name.to_owned(),
                    rank: kpm.rank,
                    runs: 1,
                    run_spread: kpm.rank.std_error,
                    rmse: (kpm.rank.mean - truth).abs(),
                    gradient_evaluations: 0,
                    hessian_vector_products: kpm.hessian_vector_products,
                    seconds: kpm.seconds,
                    threshold: Some(kpm.threshold),
                });
            }
            Estimator::Exact => {
                let (rank, seconds) = match &p.hessian {
                    HessianForm::Dense(h) => exact_rank(h.as_ref(), DEFAULT_RANK_RTOL)?,
                    // The plugin's eigenvalues: the same count, at the cost of asking for them.
                    HessianForm::Spectrum {
                        eigenvalues,
                        seconds,
                    } => (numerical_rank(eigenvalues, DEFAULT_RANK_RTOL), *seconds),
                };
                out.push(RankEstimate {
                    estimator: name.to_owned(),
                    rank: Estimate {
                        mean: rank as f64,
                        std_error: 0.0,
                    },
                    runs: 1,
                    run_spread: 0.0,
                    rmse: (rank as f64 - truth).abs(),
                    gradient_evaluations: 0,
                    hessian_vector_products: 0,
                    seconds,
                    threshold: None,
                });
            }
        }
    }
    Ok(out)
}

/// The results file of a report folder: one JSON record per line, appended atomically.
pub struct ResultsFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// Held (an exclusive OS lock) while this run writes here; released on drop.
    _lock: std::fs::File,
}

/// What to do with results already in the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to run over them.
    Refuse,
    /// Keep them and skip their cases.
    Resume,
    /// Delete them and start again.
    Overwrite,
}

impl ResultsFile {
    /// The file's name inside a report folder.
    pub const NAME: &'static str = "results.jsonl";

    /// Opens `dir/results.jsonl` for appending and returns it with the records already there. A
    /// torn last line (a run killed mid-write) is cut off; any other unreadable line is an error.
    pub fn open(dir: &Path, existing: Existing) -> anyhow::Result<(ResultsFile, Vec<Record>)> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // One run per folder: a second one would interleave its records with the first's.
        let lock_path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "another ldbench run is writing to {} (it holds {}); wait for it to finish or choose another --out",
                dir.display(),
                lock_path.display()
            );
        }
        let path = dir.join(Self::NAME);
        if path.exists() && existing == Existing::Overwrite {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        let records = read_records(&path, true)?;
        if !records.is_empty() && existing == Existing::Refuse {
            anyhow::bail!(
                "{} already holds {} results; pass --resume to finish that run, or --overwrite to start again",
                path.display(),
                records.len()
            );
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok((
            ResultsFile {
                path,
                file: Mutex::new(file),
                _lock: lock,
            },
            records,
        ))
    }

    /// Appends one record as one write of one line, then syncs it to disk.
    pub fn append(&self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("the results file lock is poisoned"))?;
        file.write_all(&line)?;
        file.sync_data()?;
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the records of a results file (none if it does not exist), sorted by case index.
/// With `repair`, a torn last line is truncated away.
pub fn read_records(path: &Path, repair: bool) -> anyhow::Result<Vec<Record>> {
    use anyhow::Context;
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    let mut good_bytes = 0u64;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()?;
    let total = lines.len();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.schema == RESULTS_SCHEMA => {
                records.push(r);
                good_bytes += line.len() as u64 + 1;
            }
            Ok(r) => anyhow::bail!(
                "{}: line {} has results schema {}, this ldbench reads {RESULTS_SCHEMA}",
                path.display(),
                i + 1,
                r.schema
            ),
            Err(_) if i + 1 == total && repair => {
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                file.set_len(good_bytes)
                    .with_context(|| format!("cutting the torn last line of {}", path.display()))?;
            }
            Err(e) => anyhow::bail!(
                "{}: line {} is not a result record: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    records.sort_by_key(|r| r.case.index);
    Ok(records)
}

/// Runs `cases`, `jobs` at a time, appending each record as it
/// finishes; `progress` is told after each case.
pub fn run_suite(
    cases: &[&Case],
    plugins: &PluginDir,
    results: &ResultsFile,
    jobs: usize,
    progress: &(dyn Fn(&Record) + Sync),
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    if jobs > 1 {
        // Cases run side by side on this pool: a case's eigendecompositions on it would queue
        // behind the other cases' simulation blocks, and their measured cost (the exact rank's
        // seconds) would be mostly waiting. faer's setting is process-wide.
        faer::set_global_parallelism(faer::Par::Seq);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()?;
    pool.install(|| {
        cases.par_iter().try_for_each(|case| {
            let record = run_case_within_limit(case, plugins);
            results.append(&record)?;
            progress(&record);
            Ok::<(), anyhow::Error>(())
        })
    })
}

/// [`run_case`] on a thread of its own, abandoned after `run.time_limit` seconds (a plugin that
/// never returns cannot be stopped from inside the process, but it no longer holds up the suite).
/// A panic of the host itself also becomes a failed record rather than the end of the run.
pub fn run_case_within_limit(case: &Case, plugins: &PluginDir) -> Record {
    let failed = |reason: String| Record::failed(case, reason);
    let limit = case.run.time_limit;
    if !(limit.is_finite() && limit > 0.0) {
        return failed(format!(
            "run.time_limit = {limit} must be a positive number of seconds"
        ));
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let (owned_case, owned_plugins) = (case.clone(), plugins.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("case-{}", case.index))
        .spawn(move || {
            let _ = sender.send(run_case(&owned_case, &owned_plugins));
        });
    if let Err(e) = spawned {
        return failed(format!("cannot start the case's thread: {e}"));
    }
    match receiver.recv_timeout(std::time::Duration::from_secs_f64(limit)) {
        Ok(record) => record,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => failed(format!(
            "timed out after {limit} s (run.time_limit); the case was abandoned"
        )),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => failed(
            "the case stopped without a result (a panic in ldbench itself: please report it)"
                .into(),
        ),
    }
}

/// `summary.csv`: one row per case, in index order.
pub fn write_summary(dir: &Path, records: &[Record]) -> anyhow::Result<PathBuf> {
    let path = dir.join("summary.csv");
    let mut out = csv::Writer::from_path(&path)?;
    out.write_record([
        "index",
        "objective",
        "preconditioner",
        "noise",
        "status",
        "dim",
        "rank",
        "true_rank",
        "eta",
        "theory_continuous",
        "theory_discrete",
        "theory_window",
        "simulated",
        "std_error",
        "ci95_low",
        "ci95_high",
        "z_score",
        "relative_error",
        "rank_paper",
        "rank_paper_error",
        "rank_corrected",
        "rank_corrected_error",
        "reason",
    ])?;
    for r in records {
        let o = r.outcome.as_ref();
        let num = |v: Option<f64>| v.map(|v| format!("{v:.6e}")).unwrap_or_default();
        out.write_record([
            r.case.index.to_string(),
            r.case.objective.label.clone(),
            r.case.preconditioner.label.clone(),
            r.case.noise.structure.name().to_owned(),
            format!("{:?}", r.status).to_lowercase(),
            o.map(|o| o.dim.to_string()).unwrap_or_default(),
            o.map(|o| o.rank.to_string()).unwrap_or_default(),
            o.and_then(|o| o.true_rank)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            num(o.map(|o| o.eta)),
            num(o.map(|o| o.theory_continuous)),
            num(o.map(|o| o.theory_discrete)),
            num(o.map(|o| o.theory_window)),
            num(o.map(|o| o.estimates.excess_loss.mean)),
            num(o.map(|o| o.estimates.excess_loss.std_error)),
            num(o.map(|o| o.estimates.excess_loss.ci95().0)),
            num(o.map(|o| o.estimates.excess_loss.ci95().1)),
            o.map(|o| format!("{:.3}", o.z_score)).unwrap_or_default(),
            num(o.map(|o| o.relative_error)),
            num(o.and_then(|o| o.rank_paper.map(|e| e.mean))),
            num(o.and_then(|o| Some(o.rank_paper?.mean - o.true_rank? as f64))),
            num(o.and_then(|o| o.rank_corrected.map(|e| e.mean))),
            num(o.and_then(|o| Some(o.rank_corrected?.mean - o.true_rank? as f64))),
            r.reason.clone().unwrap_or_default(),
        ])?;
    }
    out.flush()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_into_the_same_folder_is_refused_while_the_first_holds_it() {
        let dir = std::env::temp_dir().join(format!("ldbench-lock-test-{}", std::process::id()));
        let (first, _) = ResultsFile::open(&dir, Existing::Overwrite).unwrap();
        let second = ResultsFile::open(&dir, Existing::Resume)
            .err()
            .unwrap()
            .to_string();
        assert!(
            second.contains("another ldbench run is writing to"),
            "{second}"
        );
        drop(first);
        assert!(
            ResultsFile::open(&dir, Existing::Resume).is_ok(),
            "released when the first run ends"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
