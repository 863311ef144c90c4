//! `ldbench simulate`: runs the discrete chain on the quadratic with your H, G and Σ, and compares
//! the estimates with the closed form (JSON on stdout, a short summary on stderr).

use serde::Serialize;

use super::inputs::MatrixArgs;
use super::theory::{TheoryReport, report};
use crate::linalg::SymMatrix;
use crate::sim::{Estimate, Quadratic, Sampler, SimConfig};
use crate::theory::{ClosedForm, DEFAULT_MATCHED_RTOL};

/// Simulate m chains of the discrete LD on f = ½ xᵀHx and compare with the closed form.
///
/// The excess loss averaged over the window estimates the discrete stationary value (THEORY §4);
/// the corrected one, f − f* − (η/4)∇fᵀG∇f, estimates the continuous value (§5). Under matched
/// noise both are also turned into rank estimates.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ldbench simulate --hessian H.npy --noise matched:1e-3 --eta 0.01 --steps 20000 --chains 64"
)]
pub struct Args {
    #[command(flatten)]
    matrices: MatrixArgs,

    /// Step size η.
    #[arg(long)]
    eta: f64,

    /// Total number of steps.
    #[arg(long)]
    steps: u64,

    /// Steps discarded before averaging [default: steps/2].
    #[arg(long)]
    burn_in: Option<u64>,

    /// Number of independent chains, simulated as one block.
    #[arg(long, default_value_t = 64)]
    chains: usize,

    /// Batches per chain for the batch-means standard errors.
    #[arg(long, default_value_t = 20)]
    batches: usize,

    /// Keep every THIN-th step in the loss trace [default: about 500 points].
    #[arg(long)]
    thin: Option<u64>,

    /// Seed of the chains' random streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, Serialize)]
struct SimulateReport {
    theory: TheoryReport,
    config: SimConfig,
    /// Window mean of f − f*, against the discrete stationary value.
    excess_loss: Comparison,
    /// Window mean of f − f* − (η/4)∇fᵀG∇f, against the continuous stationary value.
    corrected_excess_loss: Comparison,
    /// Under matched noise: r̂ and r̂_c against the rank of H.
    rank: Option<RankComparison>,
    trace: Vec<TraceComparison>,
}

#[derive(Debug, Serialize)]
struct Comparison {
    estimate: Estimate,
    ci95: (f64, f64),
    theory: f64,
    /// (estimate − theory) / standard error.
    z_score: f64,
    /// estimate / theory − 1.
    relative_error: f64,
}

#[derive(Debug, Serialize)]
struct RankComparison {
    true_rank: usize,
    /// The paper's r̂ = 4/σ² · mean(f − f*).
    paper: Estimate,
    /// r̂_c = 4/σ² · mean(f − f* − (η/4)∇fᵀG∇f).
    corrected: Estimate,
}

#[derive(Debug, Serialize)]
struct TraceComparison {
    step: u64,
    mean: f64,
    std_error: f64,
    theory_discrete: f64,
    theory_continuous: f64,
}

fn compare(estimate: Estimate, theory: f64) -> Comparison {
    Comparison {
        estimate,
        ci95: estimate.ci95(),
        theory,
        z_score: estimate.z_score(theory),
        relative_error: estimate.mean / theory - 1.0,
    }
}

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
    let inputs = args.matrices.load()?;
    let cf = ClosedForm::new(
        inputs.hessian.as_ref(),
        &inputs.precond,
        &inputs.noise_cov,
        inputs.rank_rtol,
    )?;
    let theory = report(&cf, args.eta, inputs.x0.as_deref(), &[])?;
    let hessian = if inputs.hessian_is_diagonal {
        SymMatrix::Diagonal((0..cf.dim()).map(|i| inputs.hessian[(i, i)]).collect())
    } else {
        SymMatrix::Dense(inputs.hessian.clone())
    };
    let objective = Quadratic::new(hessian);
    let config = SimConfig {
        burn_in: args.burn_in.unwrap_or(args.steps / 2),
        batches: args.batches,
        thin: args.thin.unwrap_or((args.steps / 500).max(1)),
        seed: args.seed,
        ..SimConfig::new(args.eta, args.chains, args.steps)
    };
    let sampler = Sampler::new(&objective, &inputs.precond, &inputs.noise_cov)?;
    let started = std::time::Instant::now();
    let sim = sampler.run(&config, inputs.x0.as_deref())?;
    let seconds = started.elapsed().as_secs_f64();

    let z0 = inputs
        .x0
        .as_deref()
        .map(|x0| cf.initial_offset(x0))
        .transpose()?;
    let trace = sim
        .trace
        .iter()
        .map(|p| {
            Ok(TraceComparison {
                step: p.step,
                mean: p.mean,
                std_error: p.std_error,
                theory_discrete: cf.discrete_at(p.step, args.eta, z0.as_deref())?,
                theory_continuous: cf.continuous_at(p.step as f64 * args.eta, z0.as_deref()),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let excess_loss = compare(sim.estimates.excess_loss, cf.stationary_discrete(args.eta)?);
    let corrected_excess_loss = compare(
        sim.estimates.corrected_excess_loss,
        cf.stationary_continuous()?,
    );
    let rank = cf
        .matched_sigma2(DEFAULT_MATCHED_RTOL)
        .map(|sigma2| RankComparison {
            true_rank: cf.rank(),
            paper: sim.estimates.rank(sigma2),
            corrected: sim.estimates.rank_corrected(sigma2),
        });

    eprintln!(
        "simulated {} chains × {} steps (n = {}) in {seconds:.2} s\n\
         excess loss     {:.6e} ± {:.1e}  theory (discrete)   {:.6e}  z = {:+.2}\n\
         corrected loss  {:.6e} ± {:.1e}  theory (continuous) {:.6e}  z = {:+.2}",
        config.chains,
        config.steps,
        cf.dim(),
        excess_loss.estimate.mean,
        excess_loss.estimate.std_error,
        excess_loss.theory,
        excess_loss.z_score,
        corrected_excess_loss.estimate.mean,
        corrected_excess_loss.estimate.std_error,
        corrected_excess_loss.theory,
        corrected_excess_loss.z_score,
    );
    if let Some(r) = &rank {
        eprintln!(
            "rank {}: paper r̂ = {:.2} ± {:.2}, corrected r̂_c = {:.2} ± {:.2}",
            r.true_rank, r.paper.mean, r.paper.std_error, r.corrected.mean, r.corrected.std_error
        );
    }
    super::print_json(&SimulateReport {
        theory,
        config,
        excess_loss,
        corrected_excess_loss,
        rank,
        trace,
    })
}
