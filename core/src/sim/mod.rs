//! Batched simulation of the discrete preconditioned Langevin chain (THEORY.md §2):
//!
//! ```text
//! θ_{k+1} = θ_k − η G ∇f(θ_k) + √η F ξ_k,     F Fᵀ = G Σ G,  ξ_k ~ N(0, I)
//! ```
//!
//! m chains run as one n×m block, so a dense step is three matrix-matrix products (H θ, G ∇f,
//! F ξ) and a diagonal step is one fused pass over memory. The block is cut into sub-blocks of
//! [`CHAINS_PER_BLOCK`] chains run in parallel (rayon); since that cut does not depend on the
//! thread count and every chain has its own stream ([`stream::chain_rng`]), results are
//! bit-identical on any number of threads.
//!
//! Each chain starts at θ* + x_0. After `burn_in` steps, the states θ_k for
//! k = burn_in+1 ..= steps form the averaging window, whose batch means give the estimates:
//!
//! - excess loss `f(θ_k) − f*` (its expectation is THEORY §4's discrete stationary value);
//! - corrected excess loss `f(θ_k) − f* − (η/4) ∇f(θ_k)ᵀ G ∇f(θ_k)`, whose expectation is the
//!   continuous stationary value ¼ Σ s_i for every stable η on a quadratic (THEORY §5);
//! - the paper's rank estimate r̂ and the corrected r̂_c are these two times 4/σ².

mod estimate;
mod noise;
mod normal;
mod objective;
pub mod stream;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::Serialize;

use estimate::BatchMeans;
pub use estimate::Estimate;
pub use noise::NoiseFactor;
pub use normal::fill_standard_normal;
pub use objective::{Objective, ObjectiveError, Quadratic};

use crate::linalg::{DefinitenessError, SymMatrix, lane_sum3};

/// Chains per parallel task. Fixed, so that the split, and hence every rounding, is the same on
/// any number of threads; 64 columns keep a dense step's products efficient.
pub const CHAINS_PER_BLOCK: usize = 64;

/// Settings of one simulation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SimConfig {
    /// Step size η.
    pub eta: f64,
    /// Number of independent chains m.
    pub chains: usize,
    /// Total number of steps.
    pub steps: u64,
    /// Steps discarded before the averaging window.
    pub burn_in: u64,
    /// Number of batches the window is cut into for the standard errors (≥ 2).
    pub batches: usize,
    /// The loss trace keeps every `thin`-th step.
    pub thin: u64,
    /// Run seed.
    pub seed: u64,
    /// Case index, the second input of the stream derivation.
    pub case: u64,
    /// An excess loss above this (or non-finite) stops the run as diverged.
    pub max_excess_loss: f64,
}

impl SimConfig {
    /// `steps` steps of size `eta` for `chains` chains: half the steps as burn-in, 20 batches,
    /// about 500 trace points, seed 0, case 0, divergence above an excess loss of 1e30.
    pub fn new(eta: f64, chains: usize, steps: u64) -> Self {
        SimConfig {
            eta,
            chains,
            steps,
            burn_in: steps / 2,
            batches: 20,
            thin: (steps / 500).max(1),
            seed: 0,
            case: 0,
            max_excess_loss: 1e30,
        }
    }

    /// The number of states averaged, `steps − burn_in`.
    pub fn window(&self) -> u64 {
        self.steps.saturating_sub(self.burn_in)
    }

    fn validate(&self) -> Result<(), SimError> {
        let problem = if !(self.eta.is_finite() && self.eta > 0.0) {
            format!("eta = {} must be a positive finite number", self.eta)
        } else if self.chains == 0 {
            "chains must be at least 1".to_owned()
        } else if self.batches < 2 {
            format!(
                "batches = {} must be at least 2 to estimate a standard error",
                self.batches
            )
        } else if self.window() < self.batches as u64 {
            format!(
                "the window steps − burn_in = {} − {} = {} must hold at least batches = {} states",
                self.steps,
                self.burn_in,
                self.window(),
                self.batches
            )
        } else if self.thin == 0 {
            "thin must be at least 1".to_owned()
        } else {
            return Ok(());
        };
        Err(SimError::Config(problem))
    }
}

/// Why a simulation produced no estimates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The settings cannot work.
    #[error("invalid simulation settings: {0}")]
    Config(String),
    /// Inputs of different dimensions.
    #[error("dimension mismatch: the objective has n = {objective} but {what} has {found}")]
    Dimension {
        /// n of the objective.
        objective: usize,
        /// Which input disagrees.
        what: &'static str,
        /// Its dimension.
        found: usize,
    },
    /// Σ is not PSD, so G Σ G has no real factor.
    #[error("the noise covariance cannot be factored: {0}")]
    Noise(DefinitenessError),
    /// A chain's excess loss passed the divergence threshold.
    #[error(
        "chain {chain} diverged at step {step}: excess loss {excess_loss:.3e} > {limit:.1e} \
         (is eta·lambda_max ≥ 2, or theta* a saddle?)"
    )]
    Diverged {
        /// The step at which it was detected.
        step: u64,
        /// The chain.
        chain: usize,
        /// Its excess loss then.
        excess_loss: f64,
        /// The threshold ([`SimConfig::max_excess_loss`]).
        limit: f64,
    },
    /// A chain's loss became NaN or infinite.
    #[error("chain {chain} produced a non-finite loss ({value}) at step {step}")]
    NonFinite {
        /// The step.
        step: u64,
        /// The chain.
        chain: usize,
        /// The value returned.
        value: f64,
    },
    /// The adaptive preconditioner failed or returned an unusable G.
    #[error("the adaptive preconditioner failed at step {step}: {message}")]
    Adaptive {
        /// The step.
        step: u64,
        /// What went wrong.
        message: String,
    },
    /// The objective returned an error.
    #[error("the objective failed at step {step}: {source}")]
    Objective {
        /// The step.
        step: u64,
        /// What it said.
        source: ObjectiveError,
    },
}

impl SimError {
    /// The step at which a run-time failure happened (0 for settings errors), to report the
    /// earliest failure among parallel blocks.
    fn step(&self) -> u64 {
        match self {
            SimError::Diverged { step, .. }
            | SimError::NonFinite { step, .. }
            | SimError::Adaptive { step, .. }
            | SimError::Objective { step, .. } => *step,
            _ => 0,
        }
    }
}

/// A diagonal preconditioner that adapts to the stochastic gradients it sees, as Adam's second
/// moment does ([`Sampler::run_adaptive`]). The plugin host implements it for preconditioner
/// plugins with an online mode.
pub trait Adaptive {
    /// Feeds one step's stochastic gradients (n×m, a column per chain) and returns the new
    /// diagonal of G.
    fn observe(&mut self, grads: &[f64]) -> Result<Vec<f64>, String>;
}

/// Window estimates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Estimates {
    /// E[f − f*] over the window: the discrete chain's stationary excess loss.
    pub excess_loss: Estimate,
    /// E[f − f* − (η/4) ∇fᵀG∇f]: the continuous stationary excess loss, without step-size bias.
    pub corrected_excess_loss: Estimate,
}

impl Estimates {
    /// The paper's rank estimate r̂ = (4/σ²) · mean excess loss.
    pub fn rank(&self, sigma2: f64) -> Estimate {
        self.excess_loss.scaled(4.0 / sigma2)
    }

    /// The corrected rank estimate r̂_c = (4/σ²) · mean corrected excess loss.
    pub fn rank_corrected(&self, sigma2: f64) -> Estimate {
        self.corrected_excess_loss.scaled(4.0 / sigma2)
    }
}

/// One point of the thinned loss trace: the mean excess loss over chains at a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TracePoint {
    /// The step k.
    pub step: u64,
    /// Mean over chains of f(θ_k) − f*.
    pub mean: f64,
    /// Standard error of that mean (spread over the independent chains / √m; 0 for one chain).
    pub std_error: f64,
    /// f(θ_k) − f* of the first chain alone: one run, as a single optimizer would see it.
    pub first_chain: f64,
}

/// What a finished simulation returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// Window estimates.
    pub estimates: Estimates,
    /// Each chain's own window means: one independent run each (Monte-Carlo spread, RMSE).
    pub chain_means: ChainMeans,
    /// The thinned loss trace from step 0.
    pub trace: Vec<TracePoint>,
}

/// Window means per chain, in chain order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainMeans {
    /// Of f − f*.
    pub excess_loss: Vec<f64>,
    /// Of f − f* − (η/4) ∇fᵀG∇f.
    pub corrected_excess_loss: Vec<f64>,
}

/// A prepared case: objective, preconditioner and noise factor, ready to run any [`SimConfig`].
pub struct Sampler<'a> {
    objective: &'a dyn Objective,
    precond: &'a SymMatrix,
    noise: NoiseFactor,
    /// G = diag(precond_diag) when G is diagonal; ones when G is dense (applied by a product).
    precond_diag: Vec<f64>,
    /// F = diag(noise_diag) when F is diagonal; ones when F is dense.
    noise_diag: Vec<f64>,
}

impl<'a> Sampler<'a> {
    /// Checks dimensions and factors G Σ G once.
    pub fn new(
        objective: &'a dyn Objective,
        precond: &'a SymMatrix,
        noise_cov: &SymMatrix,
    ) -> Result<Self, SimError> {
        let n = objective.dim();
        for (what, found) in [
            ("the preconditioner", precond.dim()),
            ("the noise covariance", noise_cov.dim()),
            ("theta_star", objective.theta_star().len()),
        ] {
            if found != n {
                return Err(SimError::Dimension {
                    objective: n,
                    what,
                    found,
                });
            }
        }
        let noise = NoiseFactor::new(precond, noise_cov).map_err(SimError::Noise)?;
        let noise_diag = match &noise {
            NoiseFactor::Diagonal(d) => d.clone(),
            NoiseFactor::Dense(_) => vec![1.0; n],
        };
        let precond_diag = precond.diagonal().unwrap_or_else(|| vec![1.0; n]);
        Ok(Sampler {
            objective,
            precond,
            noise,
            precond_diag,
            noise_diag,
        })
    }

    /// θ* + `x0` (θ* when `None`), after checking the settings.
    fn start(&self, config: &SimConfig, x0: Option<&[f64]>) -> Result<Vec<f64>, SimError> {
        config.validate()?;
        let n = self.objective.dim();
        if let Some(x0) = x0.filter(|x0| x0.len() != n) {
            return Err(SimError::Dimension {
                objective: n,
                what: "x0",
                found: x0.len(),
            });
        }
        Ok(match x0 {
            Some(x0) => self
                .objective
                .theta_star()
                .iter()
                .zip(x0)
                .map(|(t, x)| t + x)
                .collect(),
            None => self.objective.theta_star().to_vec(),
        })
    }

    /// Runs `config.chains` chains from θ* + `x0` (θ* when `None`).
    pub fn run(&self, config: &SimConfig, x0: Option<&[f64]>) -> Result<Simulation, SimError> {
        let start = self.start(config, x0)?;
        let blocks: Vec<Result<Block, SimError>> = (0..config.chains.div_ceil(CHAINS_PER_BLOCK))
            .into_par_iter()
            .map(|b| {
                let first = b * CHAINS_PER_BLOCK;
                let count = CHAINS_PER_BLOCK.min(config.chains - first);
                self.run_block(config, &start, first, count, None)
            })
            .collect();
        let mut done = Vec::with_capacity(blocks.len());
        let mut earliest: Option<SimError> = None;
        for block in blocks {
            match block {
                Ok(block) => done.push(block),
                // Blocks are in chain order, so the first error at the smallest step wins.
                Err(e)
                    if earliest
                        .as_ref()
                        .is_none_or(|first| e.step() < first.step()) =>
                {
                    earliest = Some(e)
                }
                Err(_) => {}
            }
        }
        if let Some(e) = earliest {
            return Err(e);
        }
        Ok(combine(&done, config))
    }

    /// Runs the chains with a diagonal G that adapts during the run: at each step the chains'
    /// stochastic gradients g̃ = ∇f + S ξ / √η (S Sᵀ = Σ, so √η G S ξ is the injected noise)
    /// go to `adaptive`, whose new G then moves every chain, θ ← θ − η G g̃.
    ///
    /// This sampler must have been built with G = I, so that its noise factor is S; `initial`
    /// is G's diagonal before the first observation. The chains share G, so they run as one
    /// block on one thread.
    pub fn run_adaptive(
        &self,
        config: &SimConfig,
        x0: Option<&[f64]>,
        initial: Vec<f64>,
        adaptive: &mut dyn Adaptive,
    ) -> Result<Simulation, SimError> {
        let identity = self
            .precond
            .diagonal()
            .is_some_and(|d| d.iter().all(|g| *g == 1.0));
        if !identity || initial.len() != self.objective.dim() {
            return Err(SimError::Config(
                "an adaptive run needs a sampler built with G = I and an initial diagonal of length n".into(),
            ));
        }
        let start = self.start(config, x0)?;
        let mut adapting = Adapting {
            rule: adaptive,
            diagonal: initial,
        };
        let block = self.run_block(config, &start, 0, config.chains, Some(&mut adapting))?;
        Ok(combine(&[block], config))
    }

    /// Simulates chains `first .. first + count` for every step, with a fixed G or, given
    /// `adaptive`, a diagonal G updated at every step.
    fn run_block(
        &self,
        config: &SimConfig,
        start: &[f64],
        first: usize,
        count: usize,
        mut adaptive: Option<&mut Adapting<'_>>,
    ) -> Result<Block, SimError> {
        let n = self.objective.dim();
        let f_star = self.objective.f_star();
        let len = n * count;
        let mut theta: Vec<f64> = start.iter().copied().cycle().take(len).collect();
        let mut grad = vec![0.0; len];
        let mut precond_grad = if self.precond.is_diagonal() {
            Vec::new()
        } else {
            vec![0.0; len]
        };
        // ξ: one column for diagonal F (drawn chain by chain); the whole block for dense F or an
        // adaptive G, which sees every chain's gradient before any chain moves.
        let dense_noise = matches!(self.noise, NoiseFactor::Dense(_));
        let blockwise = dense_noise || adaptive.is_some();
        let mut xi = vec![0.0; if blockwise { len } else { n }];
        let mut kick = if dense_noise {
            vec![0.0; len]
        } else {
            Vec::new()
        };
        let mut stochastic_grad = if adaptive.is_some() {
            vec![0.0; len]
        } else {
            Vec::new()
        };
        let mut value = vec![0.0; count];
        let mut rngs: Vec<_> = (first..first + count)
            .map(|c| stream::chain_rng(config.seed, config.case, c as u64))
            .collect();
        let mut precond_diag = adaptive
            .as_ref()
            .map_or_else(|| self.precond_diag.clone(), |a| a.diagonal.clone());
        let (mut drift_coef, mut kick_coef) =
            self.coefficients(config.eta, &precond_diag, adaptive.is_some());
        let mut loss = BatchMeans::new(count, config.window(), config.batches);
        let mut corrected = loss.clone();
        let mut trace = Vec::with_capacity(count * (config.steps / config.thin + 1) as usize);

        for step in 0..=config.steps {
            self.objective
                .value_and_gradient(&theta, &mut value, &mut grad)
                .map_err(|source| SimError::Objective { step, source })?;
            for (c, v) in value.iter().enumerate() {
                let excess = v - f_star;
                if !excess.is_finite() {
                    return Err(SimError::NonFinite {
                        step,
                        chain: first + c,
                        value: *v,
                    });
                }
                if excess > config.max_excess_loss {
                    let limit = config.max_excess_loss;
                    return Err(SimError::Diverged {
                        step,
                        chain: first + c,
                        excess_loss: excess,
                        limit,
                    });
                }
            }
            if step % config.thin == 0 {
                trace.extend(value.iter().map(|v| v - f_star));
            }
            // G ∇f = precond_diag ∘ u, with u = ∇f (diagonal G) or u = G ∇f (dense G).
            let u = if self.precond.is_diagonal() {
                &grad
            } else {
                self.precond.apply(
                    MatRef::from_column_major_slice(&grad, n, count),
                    MatMut::from_column_major_slice_mut(&mut precond_grad, n, count),
                );
                &precond_grad
            };
            let window_batch =
                (step > config.burn_in).then(|| loss.batch_of(step - config.burn_in - 1));
            let last = step == config.steps;
            for c in 0..count {
                let col = c * n..(c + 1) * n;
                if let Some(batch) = window_batch {
                    let g_precond_g =
                        weighted_dot(&grad[col.clone()], &precond_diag, &u[col.clone()]);
                    let excess = value[c] - f_star;
                    loss.add(c, batch, excess);
                    corrected.add(c, batch, excess - 0.25 * config.eta * g_precond_g);
                }
                if !last && !blockwise {
                    // Diagonal F: this chain's noise goes through a one-column buffer that stays
                    // in L1 cache, and the chain moves at once.
                    fill_standard_normal(&mut xi, &mut rngs[c]);
                    update(
                        &mut theta[col.clone()],
                        &u[col],
                        &xi,
                        &drift_coef,
                        &kick_coef,
                    );
                }
            }
            if last {
                break;
            }
            if !blockwise {
                continue;
            }
            for (column, rng) in xi.chunks_exact_mut(n).zip(&mut rngs) {
                fill_standard_normal(column, rng);
            }
            // The noise before G: v = ξ (diagonal factor, folded into the coefficients) or F ξ.
            let v = match &self.noise {
                NoiseFactor::Diagonal(_) => &xi,
                NoiseFactor::Dense(f) => {
                    matmul(
                        MatMut::from_column_major_slice_mut(&mut kick, n, count),
                        Accum::Replace,
                        f,
                        MatRef::from_column_major_slice(&xi, n, count),
                        1.0,
                        Par::Seq,
                    );
                    &kick
                }
            };
            if let Some(adapting) = adaptive.as_deref_mut() {
                // g̃ = ∇f + S ξ / √η, S ξ = noise_diag ∘ v.
                let scale = 1.0 / config.eta.sqrt();
                for ((g_tilde, g), v) in stochastic_grad
                    .chunks_exact_mut(n)
                    .zip(grad.chunks_exact(n))
                    .zip(v.chunks_exact(n))
                {
                    for (((t, g), v), s) in g_tilde.iter_mut().zip(g).zip(v).zip(&self.noise_diag) {
                        *t = g + scale * s * v;
                    }
                }
                let diagonal = adapting
                    .rule
                    .observe(&stochastic_grad)
                    .map_err(|message| SimError::Adaptive { step, message })?;
                if diagonal.len() != n || diagonal.iter().any(|g| !(g.is_finite() && *g > 0.0)) {
                    let message = "G's new diagonal is not n positive finite numbers".to_owned();
                    return Err(SimError::Adaptive { step, message });
                }
                (drift_coef, kick_coef) = self.coefficients(config.eta, &diagonal, true);
                precond_diag = diagonal;
            }
            for c in 0..count {
                let col = c * n..(c + 1) * n;
                update(
                    &mut theta[col.clone()],
                    &u[col.clone()],
                    &v[col],
                    &drift_coef,
                    &kick_coef,
                );
            }
        }
        Ok(Block {
            count,
            loss,
            corrected,
            trace,
        })
    }
}

impl Sampler<'_> {
    /// The update's per-coordinate coefficients for G's diagonal (ones when G is dense): a = −η·g
    /// on the drift and b on the noise: √η·diag(F) for a fixed G, whose F already includes G, or
    /// √η·g∘diag(S) for an adaptive G, whose sampler's factor S is Σ's alone.
    fn coefficients(&self, eta: f64, g: &[f64], adaptive: bool) -> (Vec<f64>, Vec<f64>) {
        let drift = g.iter().map(|g| -eta * g).collect();
        let kick = self
            .noise_diag
            .iter()
            .zip(g)
            .map(|(f, g)| eta.sqrt() * f * if adaptive { *g } else { 1.0 })
            .collect();
        (drift, kick)
    }
}

/// An adaptive G during a run: the rule and its current diagonal.
struct Adapting<'b> {
    rule: &'b mut dyn Adaptive,
    diagonal: Vec<f64>,
}

/// Σ_i g_i p_i u_i: ∇fᵀG∇f, with G∇f = p ∘ u (see `run_block`).
fn weighted_dot(g: &[f64], p: &[f64], u: &[f64]) -> f64 {
    lane_sum3(g, p, u, |g, p, u| g * p * u)
}

/// One chain's move: θ_i += a_i u_i + b_i v_i, with a = −η·diag(G) (or −η), u = ∇f (or G∇f),
/// b = √η·diag(F) (or √η), v = ξ (or Fξ).
fn update(theta: &mut [f64], u: &[f64], v: &[f64], a: &[f64], b: &[f64]) {
    for ((((t, u), v), a), b) in theta.iter_mut().zip(u).zip(v).zip(a).zip(b) {
        *t += a * u + b * v;
    }
}

/// What one block of chains accumulated.
struct Block {
    count: usize,
    loss: BatchMeans,
    corrected: BatchMeans,
    /// Excess loss at every thinned step, `count` values per step.
    trace: Vec<f64>,
}

/// Merges blocks in chain order into the estimates and the trace.
fn combine(blocks: &[Block], config: &SimConfig) -> Simulation {
    let mut loss = BatchMeans::new(0, config.window(), config.batches);
    let mut corrected = loss.clone();
    for block in blocks {
        loss.append(&block.loss);
        corrected.append(&block.corrected);
    }
    let m = config.chains as f64;
    let trace = (0..=config.steps / config.thin)
        .map(|point| {
            let values = || {
                blocks.iter().flat_map(move |b| {
                    &b.trace[point as usize * b.count..(point as usize + 1) * b.count]
                })
            };
            let mean = values().sum::<f64>() / m;
            let spread = if config.chains > 1 {
                (values().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0) / m).sqrt()
            } else {
                0.0
            };
            TracePoint {
                step: point * config.thin,
                mean,
                std_error: spread,
                first_chain: blocks
                    .first()
                    .map_or(f64::NAN, |b| b.trace[point as usize * b.count]),
            }
        })
        .collect();
    Simulation {
        estimates: Estimates {
            excess_loss: loss.estimate(),
            corrected_excess_loss: corrected.estimate(),
        },
        chain_means: ChainMeans {
            excess_loss: loss.chain_means(),
            corrected_excess_loss: corrected.chain_means(),
        },
        trace,
    }
}
