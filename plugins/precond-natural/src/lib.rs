//! `precond-natural`: G = α (C + δI)⁻¹ with C the gradient-noise covariance at θ*. With δ = 0 the
//! chain's noise Σ = ηC satisfies G Σ = αη I: the matched, rank-revealing relation (THEORY.md §5).

use ldbench_plugin_linalg::{ShiftParams, shifted_inverse};
use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// G = α (C + δI)⁻¹.
pub struct Natural(Matrix);

impl Preconditioner for Natural {
    /// `alpha = 1.0`, `delta = 0.0` (the ridge added to C before inverting).
    type Params = ShiftParams;

    fn new(params: ShiftParams, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        let g = shifted_inverse(problem.dim, |i, j| problem.noise_entry(i, j), params, "C")?;
        Ok(Natural(g))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(Natural);
