//! Dense linear algebra shared by ldbench's standard plugins, on faer: shifted inverses for
//! preconditioners, random orthogonal bases and matrix functions for objectives.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use ldbench_sdk::{Matrix, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

pub use faer;

/// Parameters (TOML) of the preconditioners of the form α (A + δ)⁻¹: `alpha = 1.0`, `delta = 0.0`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftParams {
    /// α > 0, the learning-rate scale.
    #[serde(default = "one")]
    pub alpha: f64,
    /// δ ≥ 0, added to A's diagonal before inverting.
    #[serde(default)]
    pub delta: f64,
}

fn one() -> f64 {
    1.0
}

impl ShiftParams {
    /// Errors unless α > 0 and δ ≥ 0 are finite.
    pub fn check(&self) -> Result<()> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("alpha = {} must be a positive number", self.alpha).into());
        }
        if !(self.delta.is_finite() && self.delta >= 0.0) {
            return Err(format!("delta = {} must be a non-negative number", self.delta).into());
        }
        Ok(())
    }
}

/// α (A + δI)⁻¹ for the symmetric n×n matrix with entries `entry(i, j)`: diagonal when A is,
/// dense (through a Cholesky factorisation) otherwise. `what` names A in errors.
pub fn shifted_inverse(
    n: usize,
    entry: impl Fn(usize, usize) -> f64,
    params: ShiftParams,
    what: &str,
) -> Result<Matrix> {
    params.check()?;
    let ShiftParams { alpha, delta } = params;
    let shifted = Mat::from_fn(n, n, |i, j| entry(i, j) + if i == j { delta } else { 0.0 });
    let diagonal = (0..n).all(|j| (0..n).all(|i| i == j || shifted[(i, j)] == 0.0));
    if diagonal {
        let d: Vec<f64> = (0..n).map(|i| shifted[(i, i)]).collect();
        if let Some(i) = d.iter().position(|v| !(*v > 0.0)) {
            return Err(format!(
                "{what} + delta has diagonal entry {i} = {:e} ≤ 0; set delta > 0",
                d[i]
            )
            .into());
        }
        return Ok(Matrix::Diagonal(d.iter().map(|v| alpha / v).collect()));
    }
    let llt = shifted.llt(Side::Lower).map_err(|_| {
        format!("{what} + delta·I is not positive definite (singular {what}?); set delta > 0")
    })?;
    let inverse = llt.inverse();
    Ok(Matrix::Dense {
        dim: n,
        data: (0..n * n)
            .map(|k| alpha * 0.5 * (inverse[(k % n, k / n)] + inverse[(k / n, k % n)]))
            .collect(),
    })
}

/// A seeded generator for plugin randomness (the seed is the plugin's only source).
pub fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed)
}

/// A rows×cols matrix of i.i.d. N(0, 1) entries.
pub fn gaussian(rows: usize, cols: usize, rng: &mut Pcg64Mcg) -> Mat<f64> {
    Mat::from_fn(rows, cols, |_, _| StandardNormal.sample(rng))
}

/// A Haar-distributed random orthogonal n×n matrix: the Q of a QR factorisation of a Gaussian
/// matrix, with the signs of R's diagonal moved into Q.
pub fn random_orthogonal(n: usize, rng: &mut Pcg64Mcg) -> Mat<f64> {
    orthogonal_factor(&gaussian(n, n, rng))
}

/// f(A) = U f(Λ) Uᵀ for a symmetric A.
pub fn symmetric_function(a: &Mat<f64>, mut f: impl FnMut(f64) -> f64) -> Result<Mat<f64>> {
    let evd = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| "the eigendecomposition did not converge")?;
    let u = evd.U();
    let s = evd.S().column_vector();
    let n = a.nrows();
    let values: Vec<f64> = (0..n).map(|j| f(s[j])).collect();
    let scaled = Mat::from_fn(n, n, |i, j| u[(i, j)] * values[j]);
    let out = scaled * u.transpose();
    Ok(Mat::from_fn(n, n, |i, j| 0.5 * (out[(i, j)] + out[(j, i)])))
}

/// Column-major entries of a faer matrix.
pub fn column_major(m: &Mat<f64>) -> Vec<f64> {
    (0..m.ncols())
        .flat_map(|j| (0..m.nrows()).map(move |i| m[(i, j)]))
        .collect()
}

/// The orthogonal factor of a nonsingular square matrix (QR, with R's diagonal made positive).
pub fn orthogonal_factor(a: &Mat<f64>) -> Mat<f64> {
    let qr = a.qr();
    let q = qr.compute_Q();
    let r = qr.R();
    let n = a.nrows();
    Mat::from_fn(n, n, |i, j| {
        if r[(j, j)] < 0.0 {
            -q[(i, j)]
        } else {
            q[(i, j)]
        }
    })
}

/// dst = A·B on the calling thread. The host already runs blocks of chains in parallel; faer's
/// default would hand each small per-chain product to the thread pool and spend more time
/// synchronising than multiplying (measured: most of a width-32 deep-linear run went to system
/// time).
pub fn multiply_into(
    dst: faer::MatMut<'_, f64>,
    a: faer::MatRef<'_, f64>,
    b: faer::MatRef<'_, f64>,
) {
    faer::linalg::matmul::matmul(dst, faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
}

/// A·B on the calling thread (see [`multiply_into`]).
pub fn product(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    multiply_into(out.as_mut(), a, b);
    out
}
