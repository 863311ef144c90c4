//! `precond-natural`: G = α (C + δI)⁻¹ with C the gradient-noise covariance at θ*. With δ = 0 the
//! chain's noise Σ = ηC satisfies G Σ = αη I: the matched, rank-revealing relation (THEORY.md §5).

use ldbench_plugin_linalg::shifted_inverse;
use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// Parameters (TOML): `alpha = 1.0`, `delta = 0.0`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// α > 0.
    #[serde(default = "one")]
    pub alpha: f64,
    /// δ ≥ 0, the ridge added before inverting.
    #[serde(default)]
    pub delta: f64,
}

fn one() -> f64 {
    1.0
}

/// G = α (C + δI)⁻¹.
pub struct Natural(Matrix);

impl Preconditioner for Natural {
    type Params = Params;

    fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        let g = shifted_inverse(
            problem.dim,
            |i, j| problem.noise_entry(i, j),
            params.alpha,
            params.delta,
            "C",
        )?;
        Ok(Natural(g))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(Natural);
