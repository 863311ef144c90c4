//! `precond-sgd`: G = α I, plain (preconditioner-free) SGD.

use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};

/// Parameters (TOML): `alpha = 1.0`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// α > 0, the learning-rate scale.
    #[serde(default = "one")]
    pub alpha: f64,
}

fn one() -> f64 {
    1.0
}

/// G = α I.
pub struct Sgd(Matrix);

impl Preconditioner for Sgd {
    type Params = Params;

    fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        if !(params.alpha.is_finite() && params.alpha > 0.0) {
            return Err(format!("alpha = {} must be a positive number", params.alpha).into());
        }
        Ok(Sgd(Matrix::ScaledIdentity {
            dim: problem.dim,
            scale: params.alpha,
        }))
    }

    fn matrix(&self) -> &Matrix {
        &self.0
    }
}

ldbench_sdk::export_preconditioner!(Sgd);
