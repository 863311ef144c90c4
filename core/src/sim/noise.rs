//! The noise factor F with F Fᵀ = G Σ G, computed once per case: the chain injects √η · F ξ_k.

use faer::{Mat, Side};

use crate::linalg::{DefinitenessError, SymFactor, SymMatrix, symmetrize};

/// Relative tolerance for negative eigenvalues of Σ caused by rounding when it is singular.
const PSD_RTOL: f64 = 1e-10;

/// F with F Fᵀ = G Σ G.
#[derive(Debug, Clone)]
pub enum NoiseFactor {
    /// G and Σ both diagonal: F = G Σ^{1/2}, O(n) per chain and step.
    Diagonal(Vec<f64>),
    /// Dense F = G S, with S the Cholesky factor of Σ, or U D^{1/2} from its eigendecomposition
    /// when Σ is only semi-definite (low-rank noise).
    Dense(Mat<f64>),
}

impl NoiseFactor {
    /// Factors G Σ G as G·S with S Sᵀ = Σ, so that F Fᵀ is positive semi-definite by
    /// construction however ill-conditioned G is. Fails when Σ is not positive semi-definite.
    pub fn new(precond: &SymMatrix, noise_cov: &SymMatrix) -> Result<Self, DefinitenessError> {
        if let (Some(g), Some(s)) = (precond.diagonal(), noise_cov.diagonal()) {
            noise_cov.check_semi_definite(PSD_RTOL)?;
            return Ok(NoiseFactor::Diagonal(
                g.iter().zip(&s).map(|(g, s)| g * s.sqrt()).collect(),
            ));
        }
        let sigma = noise_cov.to_dense();
        let root = match SymMatrix::Dense(sigma.clone()).cholesky_factor() {
            Ok(SymFactor::Lower(l)) => l,
            _ => semi_definite_root(&sigma)?,
        };
        let n = root.nrows();
        Ok(NoiseFactor::Dense(match precond {
            SymMatrix::Dense(g) => g * &root,
            diagonal => {
                let d = diagonal.diagonal().unwrap_or_default();
                Mat::from_fn(n, n, |i, j| d[i] * root[(i, j)])
            }
        }))
    }
}

/// U D^{1/2} for a positive semi-definite Σ = U D Uᵀ (negative rounding clipped to 0).
fn semi_definite_root(sigma: &Mat<f64>) -> Result<Mat<f64>, DefinitenessError> {
    let mut sigma = sigma.clone();
    symmetrize(&mut sigma);
    let evd = sigma
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| DefinitenessError::NoConvergence)?;
    let d = evd.S().column_vector();
    let n = sigma.nrows();
    let scale = (0..n).fold(0.0_f64, |a, i| a.max(d[i].abs()));
    let min_eigenvalue = if n == 0 { 0.0 } else { d[0] };
    if min_eigenvalue < -PSD_RTOL * scale {
        return Err(DefinitenessError::NotSemiDefinite {
            min_eigenvalue,
            tolerance: PSD_RTOL * scale,
        });
    }
    let u = evd.U();
    Ok(Mat::from_fn(n, n, |i, j| u[(i, j)] * d[j].max(0.0).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(f: &NoiseFactor) -> Mat<f64> {
        match f {
            NoiseFactor::Diagonal(d) => {
                SymMatrix::Diagonal(d.iter().map(|v| v * v).collect()).to_dense()
            }
            NoiseFactor::Dense(f) => f * f.transpose(),
        }
    }

    #[test]
    fn factor_reproduces_g_sigma_g_for_full_and_low_rank_noise() {
        let g = SymMatrix::Dense(Mat::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.3 }));
        let full = SymMatrix::Dense(Mat::from_fn(3, 3, |i, j| if i == j { 1.0 } else { 0.2 }));
        let v = [1.0, -2.0, 0.5];
        let low_rank = SymMatrix::Dense(Mat::from_fn(3, 3, |i, j| v[i] * v[j]));
        for sigma in [full, low_rank, SymMatrix::Diagonal(vec![1.0, 0.0, 4.0])] {
            for precond in [g.clone(), SymMatrix::Diagonal(vec![1.0, 2.0, 3.0])] {
                let expected = precond.to_dense() * sigma.to_dense() * precond.to_dense();
                let f = NoiseFactor::new(&precond, &sigma).unwrap();
                assert!(
                    (gram(&f) - &expected).norm_max() < 1e-12,
                    "{precond:?} {sigma:?}"
                );
            }
        }
    }

    #[test]
    fn indefinite_noise_is_refused() {
        let bad = SymMatrix::Dense(Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 3.0 }));
        assert!(NoiseFactor::new(&SymMatrix::identity(2), &bad).is_err());
        assert!(
            NoiseFactor::new(
                &SymMatrix::identity(2),
                &SymMatrix::Diagonal(vec![1.0, -1.0])
            )
            .is_err()
        );
    }
}
