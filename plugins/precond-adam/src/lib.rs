//! `precond-adam`: G = α (diag(C) + ε)^{-1/2}, the limit of Adam's second-moment estimate near a
//! minimum (THEORY.md §6), and an online mode in which the diagonal is Adam's bias-corrected
//! moving average of squared stochastic gradients, updated during the run.

use ldbench_sdk::{Matrix, Preconditioner, Problem, Result, abi};

/// Parameters (TOML): `alpha = 1.0`, `epsilon = 1e-8`, `online = false`, `beta2 = 0.999`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// α > 0, the learning-rate scale.
    #[serde(default = "one")]
    pub alpha: f64,
    /// ε ≥ 0, added to the second moment inside the square root.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Start from the fixed point and adapt to the observed gradients (the online mode).
    #[serde(default)]
    pub online: bool,
    /// Adam's β2 ∈ [0, 1), the second moment's decay.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
}

fn one() -> f64 {
    1.0
}
fn default_epsilon() -> f64 {
    1e-8
}
fn default_beta2() -> f64 {
    0.999
}

/// G = α (v + ε)^{-1/2}, v = diag(C) or its running estimate.
pub struct Adam {
    g: Matrix,
    alpha: f64,
    epsilon: f64,
    beta2: f64,
    /// Online mode: the uncorrected moving average and the number of updates.
    moment: Vec<f64>,
    updates: i32,
}

impl Adam {
    fn set_from(&mut self, second_moment: impl Iterator<Item = f64>) {
        self.g = Matrix::Diagonal(
            second_moment
                .map(|v| self.alpha / (v + self.epsilon).sqrt())
                .collect(),
        );
    }
}

impl Preconditioner for Adam {
    type Params = Params;
    const CAPABILITIES: u64 = abi::CAP_ONLINE;

    fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
        if !(params.alpha.is_finite() && params.alpha > 0.0) {
            return Err(format!("alpha = {} must be a positive number", params.alpha).into());
        }
        if !(params.epsilon.is_finite() && params.epsilon >= 0.0) {
            return Err(
                format!("epsilon = {} must be a non-negative number", params.epsilon).into(),
            );
        }
        if !(0.0..1.0).contains(&params.beta2) {
            return Err(format!("beta2 = {} must lie in [0, 1)", params.beta2).into());
        }
        let diagonal: Vec<f64> = (0..problem.dim)
            .map(|i| problem.noise_entry(i, i))
            .collect();
        if let Some(i) = diagonal.iter().position(|c| !(c + params.epsilon > 0.0)) {
            return Err(format!(
                "diag(C)_{i} + epsilon = {:e} is not positive; set epsilon > 0",
                diagonal[i] + params.epsilon
            )
            .into());
        }
        let mut adam = Adam {
            g: Matrix::Diagonal(Vec::new()),
            alpha: params.alpha,
            epsilon: params.epsilon,
            beta2: params.beta2,
            moment: vec![0.0; problem.dim],
            updates: 0,
        };
        adam.set_from(diagonal.into_iter());
        if params.online && params.epsilon == 0.0 {
            return Err("the online mode needs epsilon > 0 (the first estimate may be 0)".into());
        }
        Ok(adam)
    }

    fn matrix(&self) -> &Matrix {
        &self.g
    }

    /// v ← β2 v + (1 − β2) mean_j g_j², G = α (v / (1 − β2^t) + ε)^{-1/2}: one moment shared
    /// by the block's chains, estimated from all of them.
    fn observe(&mut self, grads: &[f64]) -> Result<()> {
        let n = self.moment.len();
        let m = grads.len() / n;
        for (i, v) in self.moment.iter_mut().enumerate() {
            let mean_square = (0..m).map(|j| grads[j * n + i].powi(2)).sum::<f64>() / m as f64;
            *v = self.beta2 * *v + (1.0 - self.beta2) * mean_square;
        }
        self.updates = self.updates.saturating_add(1);
        let correction = 1.0 - self.beta2.powi(self.updates);
        let corrected: Vec<f64> = self.moment.iter().map(|v| v / correction).collect();
        self.set_from(corrected.into_iter());
        Ok(())
    }
}

ldbench_sdk::export_preconditioner!(Adam);
