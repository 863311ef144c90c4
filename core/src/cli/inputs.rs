//! The matrices of one case as a user brings them on the command line: loaded, checked (shape,
//! symmetry, definiteness) and turned into [`SymMatrix`] values, with errors that name the file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use faer::Mat;

use crate::linalg::{SymMatrix, asymmetry};
use crate::matrix_file::{MatrixFile, Precision};
use crate::theory::DEFAULT_RANK_RTOL;

/// Rank threshold used when any input went through float32 (its rounding is about 6e-8).
const FLOAT32_RANK_RTOL: f64 = 1e-5;

/// Tolerance for Σ's negative eigenvalues, relative to its largest.
const NOISE_PSD_RTOL: f64 = 1e-10;

/// The inputs shared by `ldbench theory` and `ldbench simulate`.
#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// Hessian H at θ*: an n×n symmetric matrix, or its diagonal as a vector (.npy float64 or
    /// float32, or CSV without header).
    #[arg(long, value_name = "FILE")]
    pub hessian: PathBuf,

    /// Preconditioner G (symmetric positive definite): `identity`, or a file with an n×n matrix or
    /// its diagonal as a vector.
    #[arg(long, value_name = "identity|FILE", default_value = "identity")]
    pub precond: String,

    /// Noise covariance Σ of the SDE dθ = −G∇f dt + GΣ^(1/2) dW: `isotropic:S` for S·I,
    /// `matched:S` for S·G⁻¹ (the rank-revealing relation GΣ = S·I), or a file with an n×n PSD
    /// matrix or its diagonal. For SGD with gradient-noise covariance C, Σ = η·C.
    #[arg(long, value_name = "isotropic:S|matched:S|FILE")]
    pub noise: String,

    /// Initial offset x0 = θ0 − θ* as a vector file; 0 when absent.
    #[arg(long, value_name = "FILE")]
    pub x0: Option<PathBuf>,

    /// Eigenvalues of GH with |λ| ≤ RTOL·max|λ| count as zero (they set the rank and add no loss).
    /// Default: 1e-9, or 1e-5 when any input file is float32.
    #[arg(long, value_name = "RTOL")]
    pub rank_rtol: Option<f64>,

    /// Largest relative asymmetry max|a_ij − a_ji| / max|a_ij| accepted in H, G and Σ (they are
    /// then symmetrised).
    #[arg(long, value_name = "RTOL", default_value_t = 1e-6)]
    pub symmetry_rtol: f64,
}

/// A loaded, checked case.
pub struct Inputs {
    pub hessian: Mat<f64>,
    /// Whether H has no off-diagonal entry (the simulator then uses the O(n·m) path).
    pub hessian_is_diagonal: bool,
    pub precond: SymMatrix,
    pub noise_cov: SymMatrix,
    pub x0: Option<Vec<f64>>,
    pub rank_rtol: f64,
}

impl MatrixArgs {
    /// Loads and checks every input.
    pub fn load(&self) -> anyhow::Result<Inputs> {
        let mut float32 = false;
        let mut read = |path: &PathBuf| -> anyhow::Result<MatrixFile> {
            let file = MatrixFile::read(path)?;
            float32 |= file.precision == Precision::F32;
            Ok(file)
        };

        let h_file = read(&self.hessian)?;
        let n = if h_file.as_vector().is_some() && h_file.rows != h_file.cols {
            h_file.data.len()
        } else {
            h_file.rows
        };
        let hessian = match self.symmetric(&h_file, n, "the Hessian")? {
            SymMatrix::Dense(h) => h,
            diagonal => diagonal.to_dense(),
        };
        let hessian_is_diagonal = (0..n).all(|j| (0..n).all(|i| i == j || hessian[(i, j)] == 0.0));

        let precond = match self.precond.as_str() {
            "identity" => SymMatrix::identity(n),
            path => {
                let file = read(&PathBuf::from(path))?;
                let g = self.symmetric(&file, n, "the preconditioner G")?;
                g.cholesky_factor().with_context(|| {
                    format!(
                        "{}: G must be symmetric positive definite",
                        file.path.display()
                    )
                })?;
                g
            }
        };

        let noise_cov = if let Some(s) = self.noise.strip_prefix("isotropic:") {
            SymMatrix::Scaled {
                dim: n,
                scale: noise_scale(s)?,
            }
        } else if let Some(s) = self.noise.strip_prefix("matched:") {
            match precond.inverse()? {
                SymMatrix::Scaled { dim, scale } => SymMatrix::Scaled {
                    dim,
                    scale: scale * noise_scale(s)?,
                },
                SymMatrix::Diagonal(d) => {
                    let s = noise_scale(s)?;
                    SymMatrix::Diagonal(d.iter().map(|v| v * s).collect())
                }
                SymMatrix::Dense(m) => SymMatrix::Dense(m * faer::Scale(noise_scale(s)?)),
            }
        } else {
            let file = read(&PathBuf::from(&self.noise))?;
            let sigma = self.symmetric(&file, n, "the noise covariance")?;
            sigma.check_semi_definite(NOISE_PSD_RTOL).with_context(|| {
                format!(
                    "{}: the noise covariance must be positive semi-definite",
                    file.path.display()
                )
            })?;
            sigma
        };

        let x0 = match &self.x0 {
            Some(path) => {
                let file = read(path)?;
                match file.as_vector() {
                    Some(v) if v.len() == n => Some(v.to_vec()),
                    _ => {
                        return Err(file
                            .error(format!(
                                "x0 must be a vector of length n = {n}, found a {}×{} array",
                                file.rows, file.cols
                            ))
                            .into());
                    }
                }
            }
            None => None,
        };

        let rank_rtol = match self.rank_rtol {
            Some(r) if r.is_finite() && (0.0..1.0).contains(&r) => r,
            Some(r) => bail!("--rank-rtol {r}: the threshold must be a number in [0, 1)"),
            None if float32 => FLOAT32_RANK_RTOL,
            None => DEFAULT_RANK_RTOL,
        };
        Ok(Inputs {
            hessian,
            hessian_is_diagonal,
            precond,
            noise_cov,
            x0,
            rank_rtol,
        })
    }

    /// An n×n symmetric matrix (checked, then symmetrised) or a length-n diagonal.
    fn symmetric(&self, file: &MatrixFile, n: usize, what: &str) -> anyhow::Result<SymMatrix> {
        if file.rows == n && file.cols == n && n > 1 || (n == 1 && file.data.len() == 1) {
            let m = Mat::from_fn(n, n, |i, j| file.get(i, j));
            let asym = asymmetry(m.as_ref());
            if asym > self.symmetry_rtol {
                return Err(file.error(format!(
                    "{what} is not symmetric: max|a_ij − a_ji| / max|a_ij| = {asym:.3e} exceeds \
                     --symmetry-rtol {:.1e}",
                    self.symmetry_rtol
                ))
                .into());
            }
            let mut m = m;
            crate::linalg::symmetrize(&mut m);
            return Ok(SymMatrix::Dense(m));
        }
        match file.as_vector() {
            Some(d) if d.len() == n => Ok(SymMatrix::Diagonal(d.to_vec())),
            _ => Err(file
                .error(format!(
                    "{what} must be an {n}×{n} matrix or a vector of length {n} (the Hessian's \
                     dimension), found a {}×{} array",
                    file.rows, file.cols
                ))
                .into()),
        }
    }
}

fn noise_scale(text: &str) -> anyhow::Result<f64> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => bail!("--noise: '{text}' is not a non-negative number (example: isotropic:2e-5)"),
    }
}
