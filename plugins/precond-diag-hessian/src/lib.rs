//! `precond-diag-hessian`: G = α (diag H + δ)⁻¹, the Jacobi preconditioner.

use ldbench_plugin_linalg::{ShiftParams, shifted_inverse};
use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// G = α (diag H + δ)⁻¹.
pub struct DiagHessian(Matrix);

impl Preconditioner for DiagHessian {
    /// `alpha = 1.0`, `delta = 0.0` (added to every diagonal entry of H; needed where H_ii = 0).
    type Params = ShiftParams;

    fn new(params: ShiftParams, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        let h = problem.require_hessian()?;
        let n = problem.dim;
        // The inverse of a diagonal matrix: only diag H is read.
        let g = shifted_inverse(
            n,
            |i, j| if i == j { h[i * n + i] } else { 0.0 },
            params,
            "diag H",
        )?;
        Ok(DiagHessian(g))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(DiagHessian);
