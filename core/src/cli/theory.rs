//! `ldbench theory`: the closed form for matrices a user brings, as one JSON object.

use serde::Serialize;

use super::inputs::MatrixArgs;
use crate::theory::{ClosedForm, DEFAULT_MATCHED_RTOL, Direction};

/// Closed-form expected loss of preconditioned LD for your own H, G and Σ (printed as JSON).
///
/// Continuous (THEORY §3) and discrete-time (§4) stationary excess loss, the loss curve at chosen
/// steps, the rank of H, the matched relation GΣ = σ²I and its prediction σ²·rank/4 (§5), the
/// escape slope, and the per-direction breakdown. Exits with code 2 on bad input, including an
/// unstable step size.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ldbench theory --hessian H.npy --noise isotropic:2e-5 --eta 1e-4 --steps 0,1000,10000"
)]
pub struct Args {
    #[command(flatten)]
    matrices: MatrixArgs,

    /// Step size η of the discrete chain θ ← θ − ηG∇f + √η GΣ^(1/2) ξ.
    #[arg(long)]
    eta: f64,

    /// Steps k at which to evaluate the loss curve (continuous at t = kη, and discrete).
    #[arg(long, value_delimiter = ',', value_name = "K,...")]
    steps: Vec<u64>,

    /// Leave the per-direction breakdown (n entries) out of the output.
    #[arg(long)]
    no_directions: bool,
}

/// The JSON printed by `ldbench theory`.
#[derive(Debug, Serialize)]
pub(super) struct TheoryReport {
    /// n.
    dim: usize,
    /// rank(H) at the threshold below.
    rank: usize,
    /// |λ| ≤ rank_rtol · max|λ| counts as zero.
    rank_rtol: f64,
    /// Largest eigenvalue of GH.
    lambda_max: f64,
    /// Smallest nonzero eigenvalue of GH (null when H = 0).
    lambda_min_nonzero: Option<f64>,
    /// η.
    eta: f64,
    stability: Stability,
    stationary_excess_loss: Stationary,
    matched: MatchedReport,
    /// ½ tr(HGΣG): d/dt E[f] at t = 0 from θ*.
    escape_slope: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    curve: Vec<CurvePoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    directions: Option<Vec<DirectionReport>>,
}

#[derive(Debug, Serialize)]
struct Stability {
    /// η·λ_max; the chain is stable below 2.
    eta_lambda_max: f64,
    /// 2/λ_max: every smaller η is stable.
    max_stable_eta: f64,
}

#[derive(Debug, Serialize)]
struct Stationary {
    /// ¼ Σ s_i (continuous time).
    continuous: f64,
    /// ¼ Σ s_i / (1 − ηλ_i/2) (the discrete chain).
    discrete: f64,
    /// discrete / continuous − 1: the discretisation bias.
    discretisation_bias: f64,
}

#[derive(Debug, Serialize)]
struct MatchedReport {
    /// Whether GΣ = σ²I holds within relative_tolerance.
    holds: bool,
    /// σ² = tr(GΣ)/n.
    sigma2: f64,
    /// ‖LᵀΣL − σ²I‖_F / (σ²√n), with G = LLᵀ.
    relative_residual: f64,
    relative_tolerance: f64,
    /// σ²·rank/4, when the relation holds.
    predicted_excess_loss: Option<f64>,
}

#[derive(Debug, Serialize)]
struct CurvePoint {
    step: u64,
    /// t = kη.
    time: f64,
    /// E[f(θ_t)] − f* of the SDE.
    continuous: f64,
    /// E[f(θ_k)] − f* of the chain.
    discrete: f64,
}

#[derive(Debug, Serialize)]
struct DirectionReport {
    /// Eigenvalue λ_i of GH.
    lambda: f64,
    /// s_i, the noise this direction sees.
    noise: f64,
    /// Above the rank threshold.
    nonzero: bool,
    /// Stationary contribution, continuous: ¼ s_i.
    continuous: f64,
    /// Stationary contribution, discrete: ¼ s_i / (1 − ηλ_i/2).
    discrete: f64,
}

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
    let inputs = args.matrices.load()?;
    let cf = ClosedForm::new(
        inputs.hessian.as_ref(),
        &inputs.precond,
        &inputs.noise_cov,
        inputs.rank_rtol,
    )?;
    let mut report = report(&cf, args.eta, inputs.x0.as_deref(), &args.steps)?;
    if !args.no_directions {
        report.directions = Some(
            cf.directions()
                .iter()
                .map(|d| direction(d, args.eta))
                .collect(),
        );
    }
    super::print_json(&report)
}

/// Everything but the per-direction breakdown; errors when η is unstable or θ* a saddle.
pub(super) fn report(
    cf: &ClosedForm,
    eta: f64,
    x0: Option<&[f64]>,
    steps: &[u64],
) -> anyhow::Result<TheoryReport> {
    let discrete = cf.stationary_discrete(eta)?;
    let continuous = cf.stationary_continuous()?;
    let z0 = x0.map(|x0| cf.initial_offset(x0)).transpose()?;
    let curve = steps
        .iter()
        .map(|&step| {
            Ok(CurvePoint {
                step,
                time: step as f64 * eta,
                continuous: cf.continuous_at(step as f64 * eta, z0.as_deref()),
                discrete: cf.discrete_at(step, eta, z0.as_deref())?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let matched = cf.matched();
    let sigma2 = cf.matched_sigma2(DEFAULT_MATCHED_RTOL);
    Ok(TheoryReport {
        dim: cf.dim(),
        rank: cf.rank(),
        rank_rtol: cf.rank_rtol(),
        lambda_max: cf.lambda_max(),
        lambda_min_nonzero: cf.lambda_min_nonzero(),
        eta,
        stability: Stability {
            eta_lambda_max: eta * cf.lambda_max(),
            max_stable_eta: 2.0 / cf.lambda_max(),
        },
        stationary_excess_loss: Stationary {
            continuous,
            discrete,
            discretisation_bias: if continuous > 0.0 {
                discrete / continuous - 1.0
            } else {
                0.0
            },
        },
        matched: MatchedReport {
            holds: sigma2.is_some(),
            sigma2: matched.sigma2,
            relative_residual: matched.relative_residual,
            relative_tolerance: DEFAULT_MATCHED_RTOL,
            predicted_excess_loss: sigma2.map(|s| s * cf.rank() as f64 / 4.0),
        },
        escape_slope: cf.escape_slope(),
        curve,
        directions: None,
    })
}

fn direction(d: &Direction, eta: f64) -> DirectionReport {
    DirectionReport {
        lambda: d.lambda,
        noise: d.noise,
        nonzero: d.nonzero,
        continuous: d.continuous(),
        discrete: d.discrete(eta),
    }
}
