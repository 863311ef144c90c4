//! ldbench: closed-form theory and batched simulation of preconditioned Langevin dynamics near
//! stationary points.
//!
//! Near a minimum θ* of f, the preconditioned Langevin dynamics
//! `dθ = −G ∇f(θ) dt + G Σ^{1/2} dW` is an Ornstein–Uhlenbeck process, so its expected loss has a
//! closed form; when G Σ = σ² I the stationary excess loss is σ²·rank(H)/4, which reveals the rank
//! of the Hessian H (Bar et al., AAAI 2024). This crate computes that closed form for any
//! (H, G, Σ, η) and simulates the discrete chain to check it.
//!
//! # Main types
//!
//! - [`theory::ClosedForm`]: spectrum of GH and per-direction noise; stationary values, curves,
//!   escape slope, matched relation, stability (THEORY.md §3–5).
//! - [`sim::Objective`]: a batched value-and-gradient call on an n×m block of chains; the
//!   in-process [`sim::Quadratic`] implements it, plugins will too.
//! - [`sim::simulate`]: runs m seeded chains as one block and returns [`sim::Estimates`] with
//!   confidence intervals, or a [`sim::SimError`] that says at which step it diverged.
//! - [`linalg::SymMatrix`]: a symmetric matrix that keeps its structure (scaled identity,
//!   diagonal, dense), used for G and Σ.
//!
//! # Example
//!
//! ```
//! use faer::Mat;
//! use ldbench::linalg::SymMatrix;
//! use ldbench::theory::{ClosedForm, DEFAULT_RANK_RTOL};
//!
//! // H of rank 2 in dimension 3, G = I, Σ = σ² I: the stationary excess loss is σ²·2/4.
//! let h = Mat::from_fn(3, 3, |i, j| if i == j && i < 2 { 1.0 + i as f64 } else { 0.0 });
//! let cf = ClosedForm::new(h.as_ref(), &SymMatrix::identity(3),
//!                          &SymMatrix::Scaled { dim: 3, scale: 0.1 }, DEFAULT_RANK_RTOL)?;
//! assert_eq!(cf.rank(), 2);
//! assert!((cf.stationary_continuous()? - 0.05).abs() < 1e-15);
//! # Ok::<(), ldbench::theory::TheoryError>(())
//! ```
//!
//! # Design decisions
//!
//! - One symmetric eigendecomposition per case, never a Lyapunov solve (singular when H is).
//! - Structure is explicit, so diagonal problems cost O(n·m) per step.
//! - Every chain has its own random stream derived from (seed, case, chain), and chains are cut
//!   into blocks whose size does not depend on the thread count: results are bit-identical on
//!   any number of threads.

pub mod baseline;
pub mod cli;
pub mod linalg;
pub mod matrix_file;
pub mod plugin;
pub mod rank;
pub mod report;
pub mod runner;
pub mod sim;
pub mod suite;
pub mod theory;
pub mod timing;
