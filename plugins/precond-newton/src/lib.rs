//! `precond-newton`: G = α (H + δI)⁻¹, the damped Newton preconditioner.

use ldbench_plugin_linalg::shifted_inverse;
use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// Parameters (TOML): `alpha = 1.0`, `delta = 0.0` (a singular H needs δ > 0).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// α > 0.
    #[serde(default = "one")]
    pub alpha: f64,
    /// δ ≥ 0, the damping.
    #[serde(default)]
    pub delta: f64,
}

fn one() -> f64 {
    1.0
}

/// G = α (H + δI)⁻¹.
pub struct Newton(Matrix);

impl Preconditioner for Newton {
    type Params = Params;

    fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        let h = problem
            .hessian
            .ok_or("the objective provides no Hessian, which this preconditioner needs")?;
        let n = problem.dim;
        Ok(Newton(shifted_inverse(
            n,
            |i, j| h[j * n + i],
            params.alpha,
            params.delta,
            "H",
        )?))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(Newton);
