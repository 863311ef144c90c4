//! The only crate an ldbench plugin depends on: the C ABI ([`abi`]), the safe traits a plugin
//! author implements ([`Objective`], [`Preconditioner`]), and the macros that export them
//! ([`export_objective!`], [`export_preconditioner!`]).
//!
//! The ABI's layout, rules and version policy are documented in one place: [`abi`] (the file
//! `plugins/sdk/ABI.md`).
//! Contributors start from `cargo xtask new-plugin` (CONTRIBUTING.md).
//!
//! # Example
//!
//! ```
//! use ldbench_sdk::{Matrix, Preconditioner, Problem, Result};
//!
//! /// G = α I.
//! pub struct Sgd(Matrix);
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Params {
//!     #[serde(default = "one")]
//!     alpha: f64,
//! }
//! fn one() -> f64 { 1.0 }
//!
//! impl Preconditioner for Sgd {
//!     type Params = Params;
//!     fn new(params: Params, problem: &Problem<'_>, _seed: u64) -> Result<Self> {
//!         if !(params.alpha > 0.0) {
//!             return Err(format!("alpha = {} must be positive", params.alpha).into());
//!         }
//!         Ok(Sgd(Matrix::ScaledIdentity { dim: problem.dim, scale: params.alpha }))
//!     }
//!     fn matrix(&self) -> &Matrix { &self.0 }
//! }
//!
//! ldbench_sdk::export_preconditioner!(Sgd);
//! ```
//!
//! # Design decisions
//!
//! - Plain C ABI, versioned by its first field; nothing Rust-specific crosses it.
//! - Every call is wrapped in `catch_unwind`: a panic becomes an error status with its message.
//! - Parameters arrive as TOML and are parsed into the plugin's own `Params` type, so an unknown
//!   or misspelled field is an error naming it (use `#[serde(deny_unknown_fields)]`).
//! - Plugins do no I/O and keep no global state; randomness comes only from the `seed`.

pub mod abi;
#[doc(hidden)]
pub mod export;

pub use serde;

/// Errors a plugin returns: anything that implements `std::error::Error`, or a message
/// (`"text".into()`, `format!(..).into()`).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// `Result` with the plugin [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An objective f: Rⁿ → R with a stationary point θ*.
///
/// Blocks are column-major n×m slices: column j (`j*n .. (j+1)*n`) is chain j.
pub trait Objective: Sized + Sync + 'static {
    /// The parameters, parsed from TOML.
    type Params: serde::de::DeserializeOwned;

    /// The `abi::CAP_*` bits this objective implements (Hessian, Hessian-vector products, true
    /// rank, gradient noise).
    const CAPABILITIES: u64 = 0;

    /// Builds an instance; `seed` is the only source of randomness.
    fn new(params: Self::Params, seed: u64) -> Result<Self>;

    /// n.
    fn dim(&self) -> usize;

    /// θ* (n values).
    fn theta_star(&self) -> Vec<f64>;

    /// f* = f(θ*).
    fn f_star(&self) -> f64;

    /// rank(H) at θ*, with `abi::CAP_TRUE_RANK`.
    fn true_rank(&self) -> Option<usize> {
        None
    }

    /// `value[j] = f(θ_j)`, `grad[.., j] = ∇f(θ_j)` for the m = `value.len()` columns of `theta`.
    fn value_and_gradient(&self, theta: &[f64], value: &mut [f64], grad: &mut [f64]) -> Result<()>;

    /// H at θ*, n×n column-major, with `abi::CAP_HESSIAN`.
    fn hessian(&self, _out: &mut [f64]) -> Result<()> {
        Err("this objective has no dense Hessian".into())
    }

    /// H v at θ* for the columns of `v`, with `abi::CAP_HESSIAN_VECTOR`.
    fn hessian_vector(&self, _v: &[f64], _out: &mut [f64]) -> Result<()> {
        Err("this objective has no Hessian-vector product".into())
    }

    /// The gradient-noise covariance at θ*, n×n column-major, with `abi::CAP_GRADIENT_NOISE`.
    fn gradient_noise(&self, _out: &mut [f64]) -> Result<()> {
        Err("this objective has no gradient-noise model".into())
    }

    /// The n eigenvalues of H at θ*, with `abi::CAP_HESSIAN_SPECTRUM`: lets the host build the
    /// closed form (for G and Σ multiples of I) where a dense Hessian would not fit.
    fn hessian_eigenvalues(&self, _out: &mut [f64]) -> Result<()> {
        Err("this objective does not know its Hessian's eigenvalues".into())
    }
}

/// What a preconditioner is built from: what an optimizer would know at θ*.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// n.
    pub dim: usize,
    /// H at θ*, n×n column-major, when the objective has one.
    pub hessian: Option<&'a [f64]>,
    /// The gradient-noise covariance C at θ*, n×n column-major.
    pub gradient_noise: &'a [f64],
}

impl Problem<'_> {
    /// H, for a preconditioner that cannot do without it: an error saying so otherwise.
    pub fn require_hessian(&self) -> Result<&[f64]> {
        self.hessian.ok_or_else(|| {
            "the objective provides no Hessian, which this preconditioner needs".into()
        })
    }

    /// H_ij, when there is a Hessian.
    pub fn hessian_entry(&self, i: usize, j: usize) -> Option<f64> {
        self.hessian.map(|h| h[j * self.dim + i])
    }

    /// C_ij.
    pub fn noise_entry(&self, i: usize, j: usize) -> f64 {
        self.gradient_noise[j * self.dim + i]
    }
}

/// A preconditioner matrix G, stored as its structure allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// α I.
    ScaledIdentity {
        /// n.
        dim: usize,
        /// α.
        scale: f64,
    },
    /// diag(d).
    Diagonal(Vec<f64>),
    /// A dense symmetric matrix, n×n column-major.
    Dense {
        /// n.
        dim: usize,
        /// Entries, column-major.
        data: Vec<f64>,
    },
}

impl Matrix {
    /// n.
    pub fn dim(&self) -> usize {
        match self {
            Matrix::ScaledIdentity { dim, .. } | Matrix::Dense { dim, .. } => *dim,
            Matrix::Diagonal(d) => d.len(),
        }
    }

    /// G_ij.
    pub fn entry(&self, i: usize, j: usize) -> f64 {
        match self {
            Matrix::ScaledIdentity { scale, .. } => {
                if i == j {
                    *scale
                } else {
                    0.0
                }
            }
            Matrix::Diagonal(d) => {
                if i == j {
                    d[i]
                } else {
                    0.0
                }
            }
            Matrix::Dense { dim, data } => data[j * dim + i],
        }
    }

    /// `out = G · block` for an n×m block.
    pub fn apply(&self, block: &[f64], out: &mut [f64]) {
        let n = self.dim();
        for (column, out) in block.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            match self {
                Matrix::ScaledIdentity { scale, .. } => {
                    out.iter_mut().zip(column).for_each(|(o, x)| *o = scale * x)
                }
                Matrix::Diagonal(d) => out
                    .iter_mut()
                    .zip(column)
                    .zip(d)
                    .for_each(|((o, x), d)| *o = d * x),
                Matrix::Dense { data, .. } => {
                    out.fill(0.0);
                    for (k, x) in column.iter().enumerate() {
                        out.iter_mut()
                            .zip(&data[k * n..(k + 1) * n])
                            .for_each(|(o, g)| *o += g * x);
                    }
                }
            }
        }
    }
}

/// A symmetric positive definite preconditioner G.
pub trait Preconditioner: Sized + Sync + 'static {
    /// The parameters, parsed from TOML.
    type Params: serde::de::DeserializeOwned;

    /// The `abi::CAP_*` bits (`CAP_ONLINE` for an adaptive mode).
    const CAPABILITIES: u64 = 0;

    /// Builds G from what an optimizer knows at θ*; `seed` is the only source of randomness.
    fn new(params: Self::Params, problem: &Problem<'_>, seed: u64) -> Result<Self>;

    /// G, now.
    fn matrix(&self) -> &Matrix;

    /// Online mode: updates G from the m stochastic gradients in `grads` (n×m), with
    /// `abi::CAP_ONLINE`.
    fn observe(&mut self, _grads: &[f64]) -> Result<()> {
        Err("this preconditioner has no online mode".into())
    }
}
