//! `precond-newton`: G = α (H + δI)⁻¹, the damped Newton preconditioner.

use ldbench_plugin_linalg::{ShiftParams, shifted_inverse};
use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// G = α (H + δI)⁻¹.
pub struct Newton(Matrix);

impl Preconditioner for Newton {
    /// `alpha = 1.0`, `delta = 0.0` (the damping; a singular H needs δ > 0).
    type Params = ShiftParams;

    fn new(params: ShiftParams, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        let h = problem.require_hessian()?;
        let n = problem.dim;
        Ok(Newton(shifted_inverse(
            n,
            |i, j| h[j * n + i],
            params,
            "H",
        )?))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(Newton);
