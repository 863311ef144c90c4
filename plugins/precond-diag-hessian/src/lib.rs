//! `precond-diag-hessian`: G = α (diag H + δ)⁻¹, the Jacobi preconditioner.

use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// Parameters (TOML): `alpha = 1.0`, `delta = 0.0`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// α > 0.
    #[serde(default = "one")]
    pub alpha: f64,
    /// δ ≥ 0, added to every diagonal entry of H before inverting.
    #[serde(default)]
    pub delta: f64,
}

fn one() -> f64 {
    1.0
}

/// G = α (diag H + δ)⁻¹.
pub struct DiagHessian(Matrix);

impl Preconditioner for DiagHessian {
    type Params = Params;

    fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        if !(params.alpha.is_finite() && params.alpha > 0.0) {
            return Err(format!("alpha = {} must be a positive number", params.alpha).into());
        }
        if !(params.delta.is_finite() && params.delta >= 0.0) {
            return Err(format!("delta = {} must be a non-negative number", params.delta).into());
        }
        if problem.hessian.is_none() {
            return Err(
                "the objective provides no Hessian, which this preconditioner needs".into(),
            );
        }
        let mut diagonal = Vec::with_capacity(problem.dim);
        for i in 0..problem.dim {
            let h = problem.hessian_entry(i, i).unwrap_or(0.0) + params.delta;
            if !(h > 0.0) {
                return Err(format!(
                    "H_{i}{i} + delta = {h:e} is not positive, so G would not be positive definite; \
                     set delta larger than {:e}",
                    -(h - params.delta)
                )
                .into());
            }
            diagonal.push(params.alpha / h);
        }
        Ok(DiagHessian(Matrix::Diagonal(diagonal)))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(DiagHessian);
