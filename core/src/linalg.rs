//! Symmetric matrices with structure (scaled identity, diagonal, dense) and the few dense kernels
//! the theory and the simulator need, as concrete `f64` functions around faer.
//!
//! Keeping structure explicit is what lets a diagonal preconditioner cost O(n·m) per step instead
//! of a matrix product, and lets the closed form skip products that are only scalings.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// A symmetric n×n matrix, stored as compactly as its structure allows.
///
/// Used for the preconditioner G and the noise covariance Σ (THEORY §1).
#[derive(Debug, Clone, PartialEq)]
pub enum SymMatrix {
    /// `scale · I` of dimension `dim`.
    Scaled {
        /// n.
        dim: usize,
        /// The common diagonal value.
        scale: f64,
    },
    /// A diagonal matrix, given by its diagonal.
    Diagonal(Vec<f64>),
    /// A dense symmetric matrix (both triangles stored).
    Dense(Mat<f64>),
}

/// Why a matrix was refused as positive (semi-)definite.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DefinitenessError {
    /// A diagonal entry (or the scale) is not positive, or negative for a PSD check.
    #[error("diagonal entry {index} is {value:e}, which is not {requirement}")]
    DiagonalEntry {
        /// Index of the offending entry.
        index: usize,
        /// Its value.
        value: f64,
        /// "positive" or "non-negative".
        requirement: &'static str,
    },
    /// The Cholesky factorisation of a dense matrix broke down.
    #[error("the Cholesky factorisation failed, so the matrix is not positive definite")]
    NotPositiveDefinite,
    /// A dense matrix has an eigenvalue below −tolerance.
    #[error(
        "its smallest eigenvalue is {min_eigenvalue:e} (tolerance −{tolerance:e}), so it is not positive semi-definite"
    )]
    NotSemiDefinite {
        /// The smallest eigenvalue found.
        min_eigenvalue: f64,
        /// The absolute tolerance it was compared with.
        tolerance: f64,
    },
    /// The eigendecomposition did not converge (only for pathological input such as NaN).
    #[error("the symmetric eigendecomposition did not converge")]
    NoConvergence,
}

impl SymMatrix {
    /// The identity of dimension `dim`.
    pub fn identity(dim: usize) -> Self {
        SymMatrix::Scaled { dim, scale: 1.0 }
    }

    /// n.
    pub fn dim(&self) -> usize {
        match self {
            SymMatrix::Scaled { dim, .. } => *dim,
            SymMatrix::Diagonal(d) => d.len(),
            SymMatrix::Dense(m) => m.nrows(),
        }
    }

    /// True for the scaled-identity and diagonal variants.
    pub fn is_diagonal(&self) -> bool {
        !matches!(self, SymMatrix::Dense(_))
    }

    /// The diagonal, for the diagonal variants; `None` for a dense matrix.
    pub fn diagonal(&self) -> Option<Vec<f64>> {
        match self {
            SymMatrix::Scaled { dim, scale } => Some(vec![*scale; *dim]),
            SymMatrix::Diagonal(d) => Some(d.clone()),
            SymMatrix::Dense(_) => None,
        }
    }

    /// The matrix as a dense n×n `Mat`.
    pub fn to_dense(&self) -> Mat<f64> {
        match self {
            SymMatrix::Dense(m) => m.clone(),
            _ => {
                let d = self.diagonal().unwrap_or_default();
                Mat::from_fn(d.len(), d.len(), |i, j| if i == j { d[i] } else { 0.0 })
            }
        }
    }

    /// Trace.
    pub fn trace(&self) -> f64 {
        match self {
            SymMatrix::Scaled { dim, scale } => *dim as f64 * scale,
            SymMatrix::Diagonal(d) => d.iter().sum(),
            SymMatrix::Dense(m) => (0..m.nrows()).map(|i| m[(i, i)]).sum(),
        }
    }

    /// `out = self · block` for an n×m block.
    pub fn apply(&self, block: MatRef<'_, f64>, mut out: MatMut<'_, f64>) {
        match self {
            SymMatrix::Dense(m) => matmul(out, Accum::Replace, m, block, 1.0, Par::Seq),
            _ => {
                let d = self.diagonal().unwrap_or_default();
                for j in 0..block.ncols() {
                    for (i, di) in d.iter().enumerate() {
                        out[(i, j)] = di * block[(i, j)];
                    }
                }
            }
        }
    }

    /// A factor L with `self = L Lᵀ` (lower triangular for dense input), or an error when the
    /// matrix is not positive definite.
    pub fn cholesky_factor(&self) -> Result<SymFactor, DefinitenessError> {
        match self {
            SymMatrix::Dense(m) => m
                .llt(Side::Lower)
                .map(|llt| SymFactor::Lower(llt.L().to_owned()))
                .map_err(|_| DefinitenessError::NotPositiveDefinite),
            _ => {
                let d = self.diagonal().unwrap_or_default();
                check_diagonal(&d, "positive", |v| v > 0.0)?;
                Ok(SymFactor::Diagonal(d.iter().map(|v| v.sqrt()).collect()))
            }
        }
    }

    /// The inverse of a positive definite matrix (used for matched noise Σ = σ² G⁻¹).
    pub fn inverse(&self) -> Result<SymMatrix, DefinitenessError> {
        use faer::linalg::solvers::DenseSolveCore;
        match self {
            SymMatrix::Scaled { dim, scale } => {
                check_diagonal(&[*scale], "positive", |v| v > 0.0)?;
                Ok(SymMatrix::Scaled {
                    dim: *dim,
                    scale: 1.0 / scale,
                })
            }
            SymMatrix::Diagonal(d) => {
                check_diagonal(d, "positive", |v| v > 0.0)?;
                Ok(SymMatrix::Diagonal(d.iter().map(|v| 1.0 / v).collect()))
            }
            SymMatrix::Dense(m) => {
                let llt = m
                    .llt(Side::Lower)
                    .map_err(|_| DefinitenessError::NotPositiveDefinite)?;
                let mut inverse = llt.inverse();
                symmetrize(&mut inverse);
                Ok(SymMatrix::Dense(inverse))
            }
        }
    }

    /// Checks positive semi-definiteness; the tolerance for a dense matrix is `rtol · max|λ|`.
    pub fn check_semi_definite(&self, rtol: f64) -> Result<(), DefinitenessError> {
        match self {
            SymMatrix::Dense(m) => {
                let eig = m
                    .self_adjoint_eigenvalues(Side::Lower)
                    .map_err(|_| DefinitenessError::NoConvergence)?;
                let scale = eig.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
                let min = eig.first().copied().unwrap_or(0.0);
                let tolerance = rtol * scale;
                if min < -tolerance {
                    return Err(DefinitenessError::NotSemiDefinite {
                        min_eigenvalue: min,
                        tolerance,
                    });
                }
                Ok(())
            }
            _ => check_diagonal(&self.diagonal().unwrap_or_default(), "non-negative", |v| {
                v >= 0.0
            }),
        }
    }
}

fn check_diagonal(
    d: &[f64],
    requirement: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), DefinitenessError> {
    match d.iter().position(|&v| !ok(v)) {
        Some(index) => Err(DefinitenessError::DiagonalEntry {
            index,
            value: d[index],
            requirement,
        }),
        None => Ok(()),
    }
}

/// A factor L of a symmetric positive definite matrix, `A = L Lᵀ`.
#[derive(Debug, Clone)]
pub enum SymFactor {
    /// Diagonal L (the square root of a diagonal A).
    Diagonal(Vec<f64>),
    /// Lower-triangular Cholesky factor.
    Lower(Mat<f64>),
}

impl SymFactor {
    /// `Lᵀ A L` for a dense symmetric A, exactly symmetric.
    ///
    /// For a triangular L this is A·L with L's structure, then the lower triangle of Lᵀ·(AL)
    /// mirrored: about a third of the work of two dense products.
    pub fn congruence(&self, a: MatRef<'_, f64>) -> Mat<f64> {
        let n = a.nrows();
        match self {
            SymFactor::Diagonal(l) => {
                let mut out = Mat::from_fn(n, n, |i, j| l[i] * a[(i, j)] * l[j]);
                symmetrize(&mut out);
                out
            }
            SymFactor::Lower(l) => {
                use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
                let par = faer::get_global_parallelism();
                let mut al = Mat::zeros(n, n);
                tri_matmul(
                    al.as_mut(),
                    BlockStructure::Rectangular,
                    Accum::Replace,
                    a,
                    BlockStructure::Rectangular,
                    l,
                    BlockStructure::TriangularLower,
                    1.0,
                    par,
                );
                let mut out = Mat::zeros(n, n);
                tri_matmul(
                    out.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Replace,
                    l.transpose(),
                    BlockStructure::TriangularUpper,
                    &al,
                    BlockStructure::Rectangular,
                    1.0,
                    par,
                );
                for j in 0..n {
                    for i in (j + 1)..n {
                        out[(j, i)] = out[(i, j)];
                    }
                }
                out
            }
        }
    }

    /// `Lᵀ S L` for a structured S, diagonal when both L and S are.
    pub fn congruence_sym(&self, s: &SymMatrix) -> SymMatrix {
        match (self, s.diagonal()) {
            (SymFactor::Diagonal(l), Some(d)) => {
                SymMatrix::Diagonal(l.iter().zip(&d).map(|(l, d)| l * d * l).collect())
            }
            _ => SymMatrix::Dense(self.congruence(s.to_dense().as_ref())),
        }
    }

    /// Solves `L y = x` for y.
    pub fn solve_lower(&self, x: &[f64]) -> Vec<f64> {
        match self {
            SymFactor::Diagonal(l) => x.iter().zip(l).map(|(x, l)| x / l).collect(),
            SymFactor::Lower(l) => {
                let mut y = Mat::from_fn(x.len(), 1, |i, _| x[i]);
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    l.as_ref(),
                    y.as_mut(),
                    Par::Seq,
                );
                y.col_as_slice(0).to_vec()
            }
        }
    }
}

/// Σ_i f(a_i, b_i, c_i) over three slices of equal length.
///
/// Summed in 8 interleaved partial sums: a single running sum is a chain of dependent additions
/// that cannot vectorise, and costs several cycles per element in the simulator's hot loops.
/// The order is fixed, so the result is reproducible.
#[inline]
pub fn lane_sum3(a: &[f64], b: &[f64], c: &[f64], f: impl Fn(f64, f64, f64) -> f64) -> f64 {
    const LANES: usize = 8;
    let (a8, b8, c8) = (
        a.chunks_exact(LANES),
        b.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    let tail: f64 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .zip(c8.remainder())
        .map(|((a, b), c)| f(*a, *b, *c))
        .sum();
    let mut acc = [0.0; LANES];
    for ((a, b), c) in a8.zip(b8).zip(c8) {
        for k in 0..LANES {
            acc[k] += f(a[k], b[k], c[k]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// A Haar-distributed random orthogonal n×n matrix drawn from `rng`: the Q of a QR
/// factorisation of a Gaussian matrix, with the signs of R's diagonal moved into Q.
pub fn random_orthogonal(n: usize, rng: &mut impl rand::Rng) -> Mat<f64> {
    use rand_distr::{Distribution, StandardNormal};
    let a = Mat::<f64>::from_fn(n, n, |_, _| StandardNormal.sample(rng));
    let qr = a.qr();
    let (q, r) = (qr.compute_Q(), qr.R());
    Mat::from_fn(n, n, |i, j| {
        if r[(j, j)] < 0.0 {
            -q[(i, j)]
        } else {
            q[(i, j)]
        }
    })
}

/// Q diag(spectrum) Qᵀ, exactly symmetric.
pub fn with_spectrum(q: &Mat<f64>, spectrum: &[f64]) -> Mat<f64> {
    let n = spectrum.len();
    let scaled = Mat::from_fn(n, n, |i, j| q[(i, j)] * spectrum[j]);
    let mut m = scaled * q.transpose();
    symmetrize(&mut m);
    m
}

/// Replaces `a` by `(a + aᵀ)/2`.
pub fn symmetrize(a: &mut Mat<f64>) {
    let n = a.nrows();
    for j in 0..n {
        for i in (j + 1)..n {
            let v = 0.5 * (a[(i, j)] + a[(j, i)]);
            a[(i, j)] = v;
            a[(j, i)] = v;
        }
    }
}

/// Largest |a_ij − a_ji| relative to the largest |a_ij| (0 for the zero matrix).
pub fn asymmetry(a: MatRef<'_, f64>) -> f64 {
    let n = a.nrows();
    let mut max_abs = 0.0_f64;
    let mut max_diff = 0.0_f64;
    for j in 0..n {
        for i in 0..n {
            max_abs = max_abs.max(a[(i, j)].abs());
            max_diff = max_diff.max((a[(i, j)] - a[(j, i)]).abs());
        }
    }
    if max_abs == 0.0 {
        0.0
    } else {
        max_diff / max_abs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_matches_dense_product_for_every_structure() {
        let block = Mat::from_fn(3, 2, |i, j| (i + 2 * j) as f64 - 1.5);
        let dense = Mat::from_fn(3, 3, |i, j| 1.0 / (1 + i + j) as f64);
        for m in [
            SymMatrix::Scaled { dim: 3, scale: 2.5 },
            SymMatrix::Diagonal(vec![1.0, -2.0, 0.5]),
            SymMatrix::Dense(dense),
        ] {
            let mut out = Mat::zeros(3, 2);
            m.apply(block.as_ref(), out.as_mut());
            let expected = m.to_dense() * &block;
            assert!((&out - &expected).norm_max() < 1e-15, "{m:?}");
        }
    }

    #[test]
    fn cholesky_factor_reproduces_the_matrix_and_rejects_indefinite_ones() {
        let a = Mat::from_fn(3, 3, |i, j| if i == j { 4.0 } else { 1.0 });
        let SymFactor::Lower(l) = SymMatrix::Dense(a.clone()).cholesky_factor().unwrap() else {
            panic!("dense input gives a triangular factor")
        };
        assert!((&l * l.transpose() - &a).norm_max() < 1e-14);
        let indefinite = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 2.0 });
        assert_eq!(
            SymMatrix::Dense(indefinite).cholesky_factor().unwrap_err(),
            DefinitenessError::NotPositiveDefinite
        );
        assert!(matches!(
            SymMatrix::Diagonal(vec![1.0, 0.0]).cholesky_factor(),
            Err(DefinitenessError::DiagonalEntry { index: 1, .. })
        ));
    }

    #[test]
    fn semi_definite_check_accepts_singular_and_rejects_negative() {
        let singular = Mat::from_fn(2, 2, |_, _| 1.0);
        assert!(
            SymMatrix::Dense(singular)
                .check_semi_definite(1e-12)
                .is_ok()
        );
        let negative = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 2.0 });
        assert!(
            SymMatrix::Dense(negative)
                .check_semi_definite(1e-12)
                .is_err()
        );
    }
}
