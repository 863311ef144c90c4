//! Closed-form expected loss of preconditioned Langevin dynamics near a stationary point
//! (THEORY.md §3–5), from one Cholesky factorisation of G and one symmetric eigendecomposition.
//!
//! # Notation
//!
//! | THEORY.md | code |
//! |---|---|
//! | H, G, Σ | `hessian`, `precond`, `noise_cov` |
//! | G = L Lᵀ | `factor` (L = G^{1/2} for diagonal G, the Cholesky factor otherwise) |
//! | M = Lᵀ H L = W Λ Wᵀ | `lambda` (Λ, ascending), `eigvecs` (W) |
//! | s_i = w_iᵀ (Lᵀ Σ L) w_i | `noise` |
//! | z0_i = w_iᵀ L⁻¹ x_0 | [`ClosedForm::initial_offset`] |
//! | η, k, t | `eta`, `step`, `time` |
//!
//! THEORY.md writes the whitening with the symmetric root G^{1/2}; any factor with G = L Lᵀ gives the
//! same λ_i and s_i (substitute x = L y in the SDE: dy = −Lᵀ H L y dt + Lᵀ Σ^{1/2} dW), and a
//! Cholesky factor costs a fraction of an eigendecomposition.
//!
//! # Results
//!
//! Per eigendirection with λ_i ≠ 0 (flat directions add nothing to the loss):
//!
//! - continuous: `½ λ_i z0_i² e^{−2λ_i t} + ¼ s_i (1 − e^{−2λ_i t})`, stationary `¼ s_i`;
//! - discrete, q_i = 1 − ηλ_i: `½ λ_i z0_i² q_i^{2k} + ¼ s_i (1 − q_i^{2k}) / (1 − ηλ_i/2)`,
//!   stationary `¼ s_i / (1 − ηλ_i/2)`, defined only when 0 < ηλ_i < 2 for every i;
//! - escape slope at t = 0 from x_0 = 0: `½ tr(H G Σ G) = ½ Σ_i λ_i s_i`;
//! - matched relation: G Σ = σ² I ⇔ Lᵀ Σ L = σ² I, and then s_i = σ² for all i.
//!
//! No Lyapunov equation is solved: it is singular whenever H is.

use faer::{Mat, MatRef, Side};

use crate::linalg::{DefinitenessError, SymFactor, SymMatrix};

/// Default relative threshold below which an eigenvalue of GH counts as zero: |λ_i| ≤ rtol·max|λ|.
///
/// 1e-9 sits well above the rounding error of a float64 eigendecomposition (about n·1e-16) and
/// well below the conditioning of any Hessian one would call full rank. Data that went through
/// float32 needs a larger value (about 1e-5); the `ldbench theory` command picks that by itself.
pub const DEFAULT_RANK_RTOL: f64 = 1e-9;

/// Default relative tolerance for the matched relation: ‖LᵀΣL − σ²I‖_F ≤ rtol · σ² √n.
pub const DEFAULT_MATCHED_RTOL: f64 = 1e-6;

/// Why the closed form could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// The matrices do not have the same dimension.
    #[error(
        "dimension mismatch: the Hessian is {hessian}×{hessian} but {what} has dimension {found}"
    )]
    Dimension {
        /// n of H.
        hessian: usize,
        /// Which input disagrees.
        what: &'static str,
        /// Its dimension.
        found: usize,
    },
    /// G is not symmetric positive definite.
    #[error("the preconditioner G is not positive definite: {0}")]
    Precond(DefinitenessError),
    /// The eigendecomposition did not converge.
    #[error("the eigendecomposition of G^(1/2) H G^(1/2) did not converge (non-finite input?)")]
    NoConvergence,
    /// The closed form from eigenvalues alone needs G and Σ to be multiples of I.
    #[error(
        "{what} is not a multiple of I, which the closed form from the Hessian's eigenvalues alone \
         needs (without a dense Hessian: use G = αI and isotropic or matched noise)"
    )]
    NotScaled {
        /// Which input.
        what: &'static str,
    },
    /// Built from eigenvalues alone, the closed form cannot project an initial offset.
    #[error(
        "this closed form was built from the Hessian's eigenvalues alone, so it cannot project an \
         initial offset x0; give the dense Hessian"
    )]
    NoEigenvectors,
    /// The step size is not a positive finite number.
    #[error("the step size eta = {eta} must be a positive finite number")]
    InvalidStep {
        /// The step size given.
        eta: f64,
    },
    /// ηλ_max ≥ 2: the discrete chain diverges.
    #[error(
        "unstable step size: eta·lambda_max = {eta} × {lambda_max:.6e} = {product:.4} ≥ 2, so the \
         chain diverges; use eta < {max_stable_eta:.6e} (lambda_max is the largest eigenvalue of GH)"
    )]
    Unstable {
        /// The step size given.
        eta: f64,
        /// Largest eigenvalue of GH.
        lambda_max: f64,
        /// η·λ_max.
        product: f64,
        /// 2/λ_max: every smaller η is stable.
        max_stable_eta: f64,
    },
    /// A negative eigenvalue: θ* is a saddle; the chains escape and the loss has no stationary value.
    #[error(
        "theta* is a saddle: GH has {count} negative eigenvalue(s), the most negative {lambda_min:.6e}; \
         the chains escape and the expected loss falls without bound, with no stationary value"
    )]
    Saddle {
        /// Number of negative eigenvalues beyond the threshold.
        count: usize,
        /// The most negative one.
        lambda_min: f64,
    },
}

/// One eigendirection of GH and what it contributes to the stationary expected loss.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Direction {
    /// λ_i, an eigenvalue of GH.
    pub lambda: f64,
    /// s_i, the noise variance this direction sees.
    pub noise: f64,
    /// Whether |λ_i| is above the rank threshold (flat directions contribute nothing).
    pub nonzero: bool,
}

impl Direction {
    /// Stationary contribution in continuous time, ¼ s_i (0 when flat).
    pub fn continuous(&self) -> f64 {
        if self.nonzero { 0.25 * self.noise } else { 0.0 }
    }

    /// Stationary contribution of the discrete chain, ¼ s_i / (1 − ηλ_i/2) (0 when flat).
    pub fn discrete(&self, eta: f64) -> f64 {
        if self.nonzero {
            0.25 * self.noise / (1.0 - 0.5 * eta * self.lambda)
        } else {
            0.0
        }
    }
}

/// The matched relation G Σ = σ² I, as found in the inputs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Matched {
    /// σ² = tr(GΣ)/n.
    pub sigma2: f64,
    /// ‖LᵀΣL − σ²I‖_F / (σ²√n): 0 when the relation holds exactly.
    pub relative_residual: f64,
}

/// The closed form for one (H, G, Σ): spectrum of GH and per-direction noise, ready to evaluate.
#[derive(Debug, Clone)]
pub struct ClosedForm {
    /// L and W, to project an initial offset; absent when built from eigenvalues alone.
    basis: Option<(SymFactor, Mat<f64>)>,
    directions: Vec<Direction>,
    rank_rtol: f64,
    matched: Matched,
}

impl ClosedForm {
    /// Whitens by G, diagonalises M = LᵀHL and projects the whitened noise LᵀΣL on its eigenvectors.
    ///
    /// `hessian` must be symmetric (only its lower triangle is read by the eigensolver; it is
    /// symmetrised after whitening). `noise_cov` is assumed PSD; see
    /// [`SymMatrix::check_semi_definite`]. Eigenvalues with |λ| ≤ `rank_rtol`·max|λ| count as zero.
    pub fn new(
        hessian: MatRef<'_, f64>,
        precond: &SymMatrix,
        noise_cov: &SymMatrix,
        rank_rtol: f64,
    ) -> Result<Self, TheoryError> {
        let n = hessian.nrows();
        for (what, found) in [
            ("the Hessian's column count", hessian.ncols()),
            ("the preconditioner G", precond.dim()),
            ("the noise covariance", noise_cov.dim()),
        ] {
            if found != n {
                return Err(TheoryError::Dimension {
                    hessian: n,
                    what,
                    found,
                });
            }
        }
        let factor = precond.cholesky_factor().map_err(TheoryError::Precond)?;
        let whitened_h = factor.congruence(hessian);
        let whitened_noise = factor.congruence_sym(noise_cov);
        let evd = whitened_h
            .self_adjoint_eigen(Side::Lower)
            .map_err(|_| TheoryError::NoConvergence)?;
        let lambda = evd.S().column_vector();
        let eigvecs = evd.U().to_owned();

        // s_i = w_iᵀ N w_i: a weighted sum of squares when N is diagonal, else one product N W
        // and column-wise dot products.
        let noise: Vec<f64> = match &whitened_noise {
            SymMatrix::Dense(n_mat) => {
                let nw = n_mat * &eigvecs;
                (0..n)
                    .map(|i| (0..n).map(|j| eigvecs[(j, i)] * nw[(j, i)]).sum())
                    .collect()
            }
            diagonal => {
                let d = diagonal.diagonal().unwrap_or_default();
                (0..n)
                    .map(|i| (0..n).map(|j| d[j] * eigvecs[(j, i)].powi(2)).sum())
                    .collect()
            }
        };
        let scale = (0..n).fold(0.0_f64, |a, i| a.max(lambda[i].abs()));
        let directions = (0..n)
            .map(|i| Direction {
                lambda: lambda[i],
                noise: noise[i],
                nonzero: lambda[i].abs() > rank_rtol * scale,
            })
            .collect();
        Ok(ClosedForm {
            basis: Some((factor, eigvecs)),
            directions,
            rank_rtol,
            matched: matched_relation(&whitened_noise),
        })
    }

    /// The closed form from H's eigenvalues alone, for G = αI and Σ = cI: then GH has eigenvalues
    /// αμ_i and every direction sees the noise s_i = αc, so no n×n matrix is needed — the path for
    /// problems whose dense Hessian would not fit. Initial offsets cannot be projected (no
    /// eigenvectors): [`ClosedForm::initial_offset`] refuses them.
    pub fn from_spectrum(
        hessian_eigenvalues: &[f64],
        precond: &SymMatrix,
        noise_cov: &SymMatrix,
        rank_rtol: f64,
    ) -> Result<Self, TheoryError> {
        let n = hessian_eigenvalues.len();
        let scale_of = |m: &SymMatrix, what: &'static str| match m {
            SymMatrix::Scaled { dim, scale } if *dim == n => Ok(*scale),
            SymMatrix::Scaled { dim, .. } => Err(TheoryError::Dimension {
                hessian: n,
                what,
                found: *dim,
            }),
            _ => Err(TheoryError::NotScaled { what }),
        };
        let alpha = scale_of(precond, "the preconditioner G")?;
        let c = scale_of(noise_cov, "the noise covariance")?;
        if !(alpha > 0.0 && alpha.is_finite()) {
            return Err(TheoryError::Precond(DefinitenessError::DiagonalEntry {
                index: 0,
                value: alpha,
                requirement: "positive",
            }));
        }
        let mut lambda: Vec<f64> = hessian_eigenvalues.iter().map(|mu| alpha * mu).collect();
        lambda.sort_by(f64::total_cmp);
        let scale = lambda.iter().fold(0.0_f64, |a, l| a.max(l.abs()));
        Ok(ClosedForm {
            basis: None,
            directions: lambda
                .iter()
                .map(|&l| Direction {
                    lambda: l,
                    noise: alpha * c,
                    nonzero: l.abs() > rank_rtol * scale,
                })
                .collect(),
            rank_rtol,
            matched: Matched {
                sigma2: alpha * c,
                relative_residual: 0.0,
            },
        })
    }

    /// The closed form for the same H and G with Σ multiplied by `factor` > 0: every s_i and
    /// σ² scale with Σ, so no new decomposition is needed.
    pub fn with_noise_scaled(mut self, factor: f64) -> Self {
        for d in &mut self.directions {
            d.noise *= factor;
        }
        self.matched.sigma2 *= factor;
        self
    }

    /// n.
    pub fn dim(&self) -> usize {
        self.directions.len()
    }

    /// Every eigendirection of GH, λ ascending.
    pub fn directions(&self) -> &[Direction] {
        &self.directions
    }

    /// The relative eigenvalue threshold this closed form was built with.
    pub fn rank_rtol(&self) -> f64 {
        self.rank_rtol
    }

    /// Numerical rank of H (= rank of GH, G being nonsingular).
    pub fn rank(&self) -> usize {
        self.directions.iter().filter(|d| d.nonzero).count()
    }

    /// Largest eigenvalue of GH.
    pub fn lambda_max(&self) -> f64 {
        self.directions.last().map_or(0.0, |d| d.lambda)
    }

    /// Smallest eigenvalue of GH above the threshold in absolute value, if any.
    pub fn lambda_min_nonzero(&self) -> Option<f64> {
        self.nonzero().map(|d| d.lambda).min_by(f64::total_cmp)
    }

    /// The matched relation's σ² and how far the inputs are from it.
    pub fn matched(&self) -> Matched {
        self.matched
    }

    /// σ² when G Σ = σ² I holds within `rtol` (see [`Matched::relative_residual`]).
    pub fn matched_sigma2(&self, rtol: f64) -> Option<f64> {
        let m = self.matched;
        (m.sigma2 > 0.0 && m.relative_residual <= rtol).then_some(m.sigma2)
    }

    /// ½ tr(H G Σ G) = ½ Σ λ_i s_i: d/dt E[f] at t = 0 when x_0 = 0.
    pub fn escape_slope(&self) -> f64 {
        0.5 * self.nonzero().map(|d| d.lambda * d.noise).sum::<f64>()
    }

    /// Stationary E[f] − f* of the continuous dynamics, ¼ Σ_{λ_i>0} s_i.
    pub fn stationary_continuous(&self) -> Result<f64, TheoryError> {
        self.check_minimum()?;
        Ok(self.directions.iter().map(Direction::continuous).sum())
    }

    /// Stationary E[f] − f* of the discrete chain with step `eta`, ¼ Σ s_i / (1 − ηλ_i/2).
    pub fn stationary_discrete(&self, eta: f64) -> Result<f64, TheoryError> {
        self.check_stable(eta)?;
        Ok(self.directions.iter().map(|d| d.discrete(eta)).sum())
    }

    /// z0 = Wᵀ L⁻¹ x_0, the initial offset θ_0 − θ* in eigen-coordinates.
    pub fn initial_offset(&self, x0: &[f64]) -> Result<Vec<f64>, TheoryError> {
        let (factor, eigvecs) = self.basis.as_ref().ok_or(TheoryError::NoEigenvectors)?;
        let y = factor.solve_lower(x0);
        Ok((0..self.dim())
            .map(|i| (0..self.dim()).map(|j| eigvecs[(j, i)] * y[j]).sum())
            .collect())
    }

    /// E[f(θ_t)] − f* of the continuous dynamics at time `time`, from offset `z0` (None: x_0 = 0).
    ///
    /// Defined at saddles too, where it is unbounded: each escape direction (λ_i < 0) adds
    /// ¼ s_i (1 − e^{2|λ_i| t}), which falls without bound.
    pub fn continuous_at(&self, time: f64, z0: Option<&[f64]>) -> f64 {
        self.sum_over_nonzero(z0, |d| {
            let decay = (-2.0 * d.lambda * time).exp();
            (decay, 0.25 * d.noise * (1.0 - decay))
        })
    }

    /// E[f(θ_k)] − f* of the discrete chain after `step` steps of size `eta`, from offset `z0`.
    pub fn discrete_at(&self, step: u64, eta: f64, z0: Option<&[f64]>) -> Result<f64, TheoryError> {
        self.check_stable(eta)?;
        Ok(self.sum_over_nonzero(z0, |d| {
            let q = 1.0 - eta * d.lambda;
            let decay = (q * q).powf(step as f64);
            (
                decay,
                0.25 * d.noise * (1.0 - decay) / (1.0 - 0.5 * eta * d.lambda),
            )
        }))
    }

    /// Errors unless 0 < η and ηλ_i < 2 for every eigenvalue, and θ* is a minimum.
    pub fn check_stable(&self, eta: f64) -> Result<(), TheoryError> {
        if !(eta.is_finite() && eta > 0.0) {
            return Err(TheoryError::InvalidStep { eta });
        }
        self.check_minimum()?;
        let lambda_max = self.lambda_max();
        if eta * lambda_max >= 2.0 {
            return Err(TheoryError::Unstable {
                eta,
                lambda_max,
                product: eta * lambda_max,
                max_stable_eta: 2.0 / lambda_max,
            });
        }
        Ok(())
    }

    fn check_minimum(&self) -> Result<(), TheoryError> {
        let negative: Vec<f64> = self
            .nonzero()
            .filter(|d| d.lambda < 0.0)
            .map(|d| d.lambda)
            .collect();
        match negative.first() {
            Some(&lambda_min) => Err(TheoryError::Saddle {
                count: negative.len(),
                lambda_min,
            }),
            None => Ok(()),
        }
    }

    fn nonzero(&self) -> impl Iterator<Item = &Direction> {
        self.directions.iter().filter(|d| d.nonzero)
    }

    /// Σ over nonzero directions of ½ λ_i z0_i² · decay_i + noise_term_i, where
    /// `per_direction` returns (decay_i, noise_term_i).
    fn sum_over_nonzero(
        &self,
        z0: Option<&[f64]>,
        per_direction: impl Fn(&Direction) -> (f64, f64),
    ) -> f64 {
        self.directions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.nonzero)
            .map(|(i, d)| {
                let (decay, noise_term) = per_direction(d);
                let offset = z0.map_or(0.0, |z| 0.5 * d.lambda * z[i] * z[i] * decay);
                offset + noise_term
            })
            .sum()
    }
}

/// σ² = tr(N)/n and the relative distance of N = LᵀΣL from σ²I.
fn matched_relation(whitened_noise: &SymMatrix) -> Matched {
    let n = whitened_noise.dim();
    let sigma2 = whitened_noise.trace() / n.max(1) as f64;
    let deviation = match whitened_noise {
        SymMatrix::Dense(m) => {
            let mut deviation = m.clone();
            for i in 0..n {
                deviation[(i, i)] -= sigma2;
            }
            deviation.norm_l2()
        }
        diagonal => {
            let d = diagonal.diagonal().unwrap_or_default();
            d.iter().map(|v| (v - sigma2).powi(2)).sum::<f64>().sqrt()
        }
    };
    let denominator = sigma2.abs() * (n as f64).sqrt();
    let relative_residual = if denominator > 0.0 {
        deviation / denominator
    } else {
        f64::INFINITY
    };
    Matched {
        sigma2,
        relative_residual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(values: &[f64]) -> Mat<f64> {
        Mat::from_fn(values.len(), values.len(), |i, j| {
            if i == j { values[i] } else { 0.0 }
        })
    }

    #[test]
    fn isotropic_identity_gives_sigma2_rank_over_four() {
        // THEORY §7 fact 1 at a small size: σ² = 2e-5, r = 3 of n = 5.
        let h = diag(&[0.0, 1.0, 0.0, 2.0, 7.0]);
        let cf = ClosedForm::new(
            h.as_ref(),
            &SymMatrix::identity(5),
            &SymMatrix::Scaled {
                dim: 5,
                scale: 2e-5,
            },
            DEFAULT_RANK_RTOL,
        )
        .unwrap();
        assert_eq!(cf.rank(), 3);
        assert!((cf.stationary_continuous().unwrap() - 2e-5 * 3.0 / 4.0).abs() < 1e-18);
        assert_eq!(cf.matched_sigma2(DEFAULT_MATCHED_RTOL), Some(2e-5));
    }

    #[test]
    fn unstable_step_names_lambda_max_and_the_largest_stable_step() {
        let cf = ClosedForm::new(
            diag(&[1.0, 4.0]).as_ref(),
            &SymMatrix::identity(2),
            &SymMatrix::identity(2),
            DEFAULT_RANK_RTOL,
        )
        .unwrap();
        assert!(cf.stationary_discrete(0.49).is_ok());
        let err = cf.stationary_discrete(0.5).unwrap_err();
        assert_eq!(
            err,
            TheoryError::Unstable {
                eta: 0.5,
                lambda_max: 4.0,
                product: 2.0,
                max_stable_eta: 0.5
            }
        );
        assert!(err.to_string().contains("use eta < 5.000000e-1"), "{err}");
        assert_eq!(
            cf.stationary_discrete(-1.0),
            Err(TheoryError::InvalidStep { eta: -1.0 })
        );
    }

    #[test]
    fn saddle_has_no_stationary_value_but_a_growing_curve() {
        let cf = ClosedForm::new(
            diag(&[-1.0, 2.0]).as_ref(),
            &SymMatrix::identity(2),
            &SymMatrix::identity(2),
            DEFAULT_RANK_RTOL,
        )
        .unwrap();
        assert!(matches!(
            cf.stationary_continuous(),
            Err(TheoryError::Saddle { count: 1, .. })
        ));
        // Along λ < 0, E[u²] grows like e^{2|λ|t} and ½λE[u²] falls: the chains escape downhill.
        let (early, late) = (cf.continuous_at(1.0, None), cf.continuous_at(10.0, None));
        assert!(late < early && early < 0.0, "{early} {late}");
    }

    #[test]
    fn scaling_the_noise_scales_every_noise_quantity() {
        let h = Mat::from_fn(3, 3, |i, j| if i == j { 1.0 + i as f64 } else { 0.2 });
        let g = SymMatrix::Diagonal(vec![1.0, 2.0, 0.5]);
        let sigma = SymMatrix::Diagonal(vec![0.3, 0.1, 0.2]);
        let tenfold = SymMatrix::Diagonal(vec![3.0, 1.0, 2.0]);
        let scaled = ClosedForm::new(h.as_ref(), &g, &sigma, DEFAULT_RANK_RTOL)
            .unwrap()
            .with_noise_scaled(10.0);
        let direct = ClosedForm::new(h.as_ref(), &g, &tenfold, DEFAULT_RANK_RTOL).unwrap();
        for eta in [0.1, 0.3] {
            let (a, b) = (
                scaled.stationary_discrete(eta).unwrap(),
                direct.stationary_discrete(eta).unwrap(),
            );
            assert!((a - b).abs() < 1e-14 * b, "{a} {b}");
        }
        assert!((scaled.matched().sigma2 - direct.matched().sigma2).abs() < 1e-14);
        assert!((scaled.escape_slope() - direct.escape_slope()).abs() < 1e-13);
    }

    #[test]
    fn curves_start_at_the_offset_loss_and_end_at_the_stationary_value() {
        let h = Mat::from_fn(3, 3, |i, j| if i == j { 2.0 } else { 0.5 });
        let g = SymMatrix::Diagonal(vec![1.0, 0.5, 2.0]);
        let cf =
            ClosedForm::new(h.as_ref(), &g, &SymMatrix::identity(3), DEFAULT_RANK_RTOL).unwrap();
        let x0 = [1.0, -2.0, 0.5];
        let z0 = cf.initial_offset(&x0).unwrap();
        let offset_loss = 0.5
            * (0..3)
                .map(|i| (0..3).map(|j| x0[i] * h[(i, j)] * x0[j]).sum::<f64>())
                .sum::<f64>();
        assert!((cf.continuous_at(0.0, Some(&z0)) - offset_loss).abs() < 1e-12);
        assert!((cf.discrete_at(0, 0.1, Some(&z0)).unwrap() - offset_loss).abs() < 1e-12);
        let late = cf.discrete_at(100_000, 0.1, Some(&z0)).unwrap();
        assert!((late - cf.stationary_discrete(0.1).unwrap()).abs() < 1e-12);
        let late = cf.continuous_at(1e4, Some(&z0));
        assert!((late - cf.stationary_continuous().unwrap()).abs() < 1e-12);
    }
}
