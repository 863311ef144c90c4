//! The objective seen by the simulator: a batched value-and-gradient call on an n×m block of
//! chains, and the in-process quadratic objectives used by tests and benchmarks.

use faer::{MatMut, MatRef};

use crate::linalg::{SymMatrix, lane_sum3};

/// An objective's failure to evaluate (a plugin error, an input it cannot handle).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ObjectiveError(pub String);

/// A differentiable objective f: Rⁿ → R with a known stationary point θ* and value f* = f(θ*).
///
/// Blocks are column-major n×m slices: column j (entries `j*n .. (j+1)*n`) is chain j. The plugin
/// host implements this trait too, so plugins and in-process objectives share the simulator.
pub trait Objective: Sync {
    /// n, the number of parameters.
    fn dim(&self) -> usize;

    /// θ*, where the chains start (plus an optional offset).
    fn theta_star(&self) -> &[f64];

    /// f* = f(θ*), subtracted from every loss value.
    fn f_star(&self) -> f64;

    /// Writes `value[j] = f(θ_j)` and `grad[.., j] = ∇f(θ_j)` for the m = `value.len()` columns
    /// of `theta`. `theta` and `grad` have length n·m.
    fn value_and_gradient(
        &self,
        theta: &[f64],
        value: &mut [f64],
        grad: &mut [f64],
    ) -> Result<(), ObjectiveError>;
}

/// f(θ) = f* + ½ (θ − θ*)ᵀ H (θ − θ*), with H diagonal or dense.
#[derive(Debug, Clone)]
pub struct Quadratic {
    hessian: SymMatrix,
    theta_star: Vec<f64>,
    f_star: f64,
    /// H θ*, so that the gradient is H θ − H θ* without a scratch block.
    h_theta_star: Vec<f64>,
}

impl Quadratic {
    /// The quadratic with Hessian `hessian`, minimum θ* = 0 and f* = 0.
    pub fn new(hessian: SymMatrix) -> Self {
        let n = hessian.dim();
        // A scaled identity runs through the diagonal path.
        let hessian = match hessian.diagonal() {
            Some(d) => SymMatrix::Diagonal(d),
            None => hessian,
        };
        Quadratic {
            hessian,
            theta_star: vec![0.0; n],
            f_star: 0.0,
            h_theta_star: vec![0.0; n],
        }
    }

    /// Moves the stationary point to `theta_star`, with value `f_star` there.
    pub fn with_minimum(self, theta_star: Vec<f64>, f_star: f64) -> Self {
        assert_eq!(
            theta_star.len(),
            self.dim(),
            "θ* must have the Hessian's dimension"
        );
        let mut h_theta_star = vec![0.0; self.dim()];
        self.hessian.apply(
            MatRef::from_column_major_slice(&theta_star, self.dim(), 1),
            MatMut::from_column_major_slice_mut(&mut h_theta_star, self.dim(), 1),
        );
        Quadratic {
            theta_star,
            f_star,
            h_theta_star,
            ..self
        }
    }

    /// H.
    pub fn hessian(&self) -> &SymMatrix {
        &self.hessian
    }
}

impl Objective for Quadratic {
    fn dim(&self) -> usize {
        self.hessian.dim()
    }

    fn theta_star(&self) -> &[f64] {
        &self.theta_star
    }

    fn f_star(&self) -> f64 {
        self.f_star
    }

    fn value_and_gradient(
        &self,
        theta: &[f64],
        value: &mut [f64],
        grad: &mut [f64],
    ) -> Result<(), ObjectiveError> {
        let n = self.dim();
        let m = value.len();
        let half_curvature = |theta: &[f64], grad: &[f64]| {
            0.5 * lane_sum3(theta, &self.theta_star, grad, |t, s, g| (t - s) * g)
        };
        if let SymMatrix::Diagonal(h) = &self.hessian {
            for ((theta, grad), value) in theta
                .chunks_exact(n)
                .zip(grad.chunks_exact_mut(n))
                .zip(value)
            {
                for (((g, t), s), h) in grad.iter_mut().zip(theta).zip(&self.theta_star).zip(h) {
                    *g = h * (t - s);
                }
                *value = self.f_star + half_curvature(theta, grad);
            }
        } else {
            // g = H θ − H θ*, without a scratch block.
            self.hessian.apply(
                MatRef::from_column_major_slice(theta, n, m),
                MatMut::from_column_major_slice_mut(grad, n, m),
            );
            for ((theta, grad), value) in theta
                .chunks_exact(n)
                .zip(grad.chunks_exact_mut(n))
                .zip(value)
            {
                for (g, hs) in grad.iter_mut().zip(&self.h_theta_star) {
                    *g -= hs;
                }
                *value = self.f_star + half_curvature(theta, grad);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn diagonal_and_dense_quadratics_agree() {
        let h = [2.0, 0.0, 0.5];
        let theta_star = vec![1.0, -1.0, 0.5];
        let dense = Quadratic::new(SymMatrix::Dense(SymMatrix::Diagonal(h.to_vec()).to_dense()))
            .with_minimum(theta_star.clone(), 3.0);
        let diagonal =
            Quadratic::new(SymMatrix::Diagonal(h.to_vec())).with_minimum(theta_star, 3.0);
        let theta = Mat::from_fn(3, 2, |i, j| (i as f64) - 2.0 * j as f64);
        let theta: Vec<f64> = (0..2)
            .flat_map(|j| theta.col_as_slice(j).to_vec())
            .collect();
        let (mut v1, mut v2, mut g1, mut g2) =
            (vec![0.0; 2], vec![0.0; 2], vec![0.0; 6], vec![0.0; 6]);
        dense.value_and_gradient(&theta, &mut v1, &mut g1).unwrap();
        diagonal
            .value_and_gradient(&theta, &mut v2, &mut g2)
            .unwrap();
        assert_eq!(v1, v2);
        assert_eq!(g1, g2);
        // Column 0 is θ = (0, 1, 2): x = (−1, 2, 1.5), f = 3 + ½(2·1 + 0 + 0.5·2.25).
        assert_eq!(v1[0], 3.0 + 0.5 * (2.0 + 0.5 * 2.25));
        assert_eq!(&g1[..3], &[-2.0, 0.0, 0.75]);
    }
}
