//! Hessian-rank estimators beside the Langevin ones (r̂ and r̂_c, from the chains' losses): the
//! exact numerical rank from an eigendecomposition, and Ubaru and Saad's Chebyshev/KPM estimator
//! of the numerical rank ("Fast methods for estimating the numerical rank of large matrices",
//! ICML 2016), which needs only Hessian-vector products.
//!
//! KPM, as published: map the spectrum [0, λ_max] of the (positive semi-definite) Hessian to
//! [−1, 1]; estimate the Chebyshev moments μ_k = tr T_k(Ã) with random ±1 probe vectors
//! (Hutchinson), k = 0..degree, by the three-term recurrence (one block of Hessian-vector products
//! per degree); damp them with Jackson's coefficients; the damped series gives the density of
//! states, whose first minimum after the spike of the null space at −1 is the threshold ε (the
//! gap); the rank is the trace of the step function 1[t ≥ ε], whose Chebyshev coefficients are
//! known in closed form, over the same moments. λ_max comes from a short Lanczos run.

use std::time::Instant;

use faer::MatRef;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::sim::Estimate;

/// Hessian-vector products on an n×m column-major block, returning H·V (same layout).
pub type HessianVector<'a> = dyn FnMut(&[f64]) -> Result<Vec<f64>, String> + 'a;

/// KPM settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpmSettings {
    /// Chebyshev degree (Ubaru and Saad: 50).
    pub degree: usize,
    /// Random probe vectors (Ubaru and Saad: 300).
    pub probes: usize,
    /// Lanczos steps for λ_max.
    pub lanczos_steps: usize,
}

impl Default for KpmSettings {
    fn default() -> Self {
        KpmSettings {
            degree: 50,
            probes: 300,
            lanczos_steps: 30,
        }
    }
}

/// What KPM found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpmRank {
    /// The rank estimate: the mean over probes, with its standard error.
    pub rank: Estimate,
    /// The threshold ε in eigenvalue units (eigenvalues above it count).
    pub threshold: f64,
    /// The upper end of the spectrum interval used (Lanczos' λ_max with a 1% margin).
    pub lambda_max: f64,
    /// Hessian-vector products spent (Lanczos and moments).
    pub hessian_vector_products: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Jackson damping coefficients g_0..g_M for a degree-M expansion.
fn jackson(degree: usize) -> Vec<f64> {
    let m = degree as f64;
    let alpha = std::f64::consts::PI / (m + 2.0);
    (0..=degree)
        .map(|k| {
            let k = k as f64;
            ((1.0 - k / (m + 2.0)) * alpha.sin() * (k * alpha).cos()
                + (1.0 / (m + 2.0)) * alpha.cos() * (k * alpha).sin())
                / alpha.sin()
        })
        .collect()
}

/// The largest eigenvalue of H by `steps` Lanczos steps from a random start (with full
/// reorthogonalisation: the steps are few). Returns (λ_max, products spent).
fn lanczos_max(
    n: usize,
    hv: &mut HessianVector<'_>,
    steps: usize,
    rng: &mut impl Rng,
) -> Result<(f64, u64), String> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut v: Vec<f64> = (0..n)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        .collect();
    let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>().sqrt();
    let first = norm(&v);
    v.iter_mut().for_each(|a| *a /= first);
    let (mut alphas, mut betas) = (Vec::new(), Vec::new());
    let mut products = 0;
    for _ in 0..steps.min(n) {
        let mut w = hv(&v)?;
        products += 1;
        let alpha: f64 = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        basis.push(v.clone());
        for q in &basis {
            let dot: f64 = w.iter().zip(q).map(|(a, b)| a * b).sum();
            w.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
        }
        alphas.push(alpha);
        let beta = norm(&w);
        if beta < 1e-12 * alpha.abs().max(1e-300) {
            break;
        }
        betas.push(beta);
        v = w.iter().map(|a| a / beta).collect();
    }
    // The Ritz values: eigenvalues of the tridiagonal matrix.
    let k = alphas.len();
    let t = faer::Mat::from_fn(k, k, |i, j| {
        if i == j {
            alphas[i]
        } else if i + 1 == j || j + 1 == i {
            betas[i.min(j)]
        } else {
            0.0
        }
    });
    let ritz = t
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|_| "the Lanczos eigenvalues did not converge".to_owned())?;
    Ok((ritz.last().copied().unwrap_or(0.0), products))
}

/// Ubaru and Saad's KPM numerical rank of the n×n positive semi-definite H given by `hv`.
pub fn kpm_rank(
    n: usize,
    hv: &mut HessianVector<'_>,
    settings: KpmSettings,
    seed: u64,
) -> Result<KpmRank, String> {
    if settings.degree < 2 || settings.probes < 2 {
        return Err(format!(
            "KPM needs degree ≥ 2 and probes ≥ 2 (got degree = {}, probes = {})",
            settings.degree, settings.probes
        ));
    }
    let started = Instant::now();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let (top, lanczos) = lanczos_max(n, hv, settings.lanczos_steps, &mut rng)?;
    if !(top > 0.0 && top.is_finite()) {
        return Err(format!(
            "the Hessian's largest eigenvalue is {top}: no positive spectrum"
        ));
    }
    let b = 1.01 * top;
    // Ã = (2/b) H − I maps [0, b] to [−1, 1].
    let m = settings.probes;
    let mut prev: Vec<f64> = (0..n * m)
        .map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { -1.0 })
        .collect();
    let probes = prev.clone();
    let apply = |hv: &mut HessianVector<'_>, x: &[f64]| -> Result<Vec<f64>, String> {
        let mut y = hv(x)?;
        y.iter_mut().zip(x).for_each(|(y, x)| *y = 2.0 / b * *y - x);
        Ok(y)
    };
    let dots = |x: &[f64]| -> Vec<f64> {
        x.chunks_exact(n)
            .zip(probes.chunks_exact(n))
            .map(|(a, v)| a.iter().zip(v).map(|(a, v)| a * v).sum())
            .collect()
    };
    // moments[k][l] = v_lᵀ T_k(Ã) v_l.
    let mut moments = vec![dots(&prev)];
    let mut current = apply(hv, &prev)?;
    moments.push(dots(&current));
    for _ in 2..=settings.degree {
        let mut next = apply(hv, &current)?;
        next.iter_mut()
            .zip(&prev)
            .for_each(|(x, p)| *x = 2.0 * *x - p);
        moments.push(dots(&next));
        prev = std::mem::replace(&mut current, next);
    }
    let g = jackson(settings.degree);
    let mean_moment: Vec<f64> = moments
        .iter()
        .map(|mk| mk.iter().sum::<f64>() / m as f64)
        .collect();
    let epsilon = gap_threshold(&mean_moment, &g);
    // Chebyshev coefficients of 1[t ≥ ε] on [−1, 1].
    let theta = epsilon.clamp(-1.0, 1.0).acos();
    let coefficient = |k: usize| {
        if k == 0 {
            theta / std::f64::consts::PI
        } else {
            2.0 * (k as f64 * theta).sin() / (std::f64::consts::PI * k as f64)
        }
    };
    let per_probe: Vec<f64> = (0..m)
        .map(|l| {
            (0..=settings.degree)
                .map(|k| coefficient(k) * g[k] * moments[k][l])
                .sum()
        })
        .collect();
    let mean = per_probe.iter().sum::<f64>() / m as f64;
    let variance = per_probe.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (m as f64 - 1.0);
    Ok(KpmRank {
        rank: Estimate {
            mean,
            std_error: (variance / m as f64).sqrt(),
        },
        threshold: (epsilon + 1.0) * b / 2.0,
        lambda_max: b,
        hessian_vector_products: lanczos + (settings.degree * m) as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The threshold at the gap: the first local minimum, after the spike of the null space at
/// t = −1, of the damped density of states on a grid uniform in θ = arccos t (Chebyshev
/// resolution is uniform in θ, so the grid is too).
fn gap_threshold(moments: &[f64], g: &[f64]) -> f64 {
    const POINTS: usize = 2000;
    // θ from π (t = −1) towards 0 (t = 1); φ(t) dt ∝ Σ_k (2 − δ_k0) g_k μ_k cos(kθ) dθ.
    let density = |theta: f64| -> f64 {
        moments
            .iter()
            .zip(g)
            .enumerate()
            .map(|(k, (mu, gk))| {
                let weight = if k == 0 { 1.0 } else { 2.0 };
                weight * gk * mu * (k as f64 * theta).cos()
            })
            .sum()
    };
    let step = std::f64::consts::PI / POINTS as f64;
    let mut previous = density(std::f64::consts::PI);
    for i in 1..POINTS {
        let theta = std::f64::consts::PI - i as f64 * step;
        let value = density(theta);
        if value > previous {
            return (theta + step).cos();
        }
        previous = value;
    }
    -1.0
}

/// How many of `eigenvalues` lie above `rtol`·max|λ|: the numerical rank.
pub fn numerical_rank(eigenvalues: &[f64], rtol: f64) -> usize {
    let top = eigenvalues.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    eigenvalues.iter().filter(|v| **v > rtol * top).count()
}

/// The numerical rank of a symmetric H by its eigendecomposition ([`numerical_rank`] of its
/// eigenvalues). Returns (rank, seconds).
pub fn exact_rank(hessian: MatRef<'_, f64>, rtol: f64) -> Result<(usize, f64), String> {
    let started = Instant::now();
    let eigenvalues = hessian
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|_| "the Hessian's eigendecomposition did not converge".to_owned())?;
    Ok((
        numerical_rank(&eigenvalues, rtol),
        started.elapsed().as_secs_f64(),
    ))
}

/// One estimator's result on a case, with its cost: what the reports compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankEstimate {
    /// "paper", "corrected", "kpm" or "exact".
    pub estimator: String,
    /// The estimate: mean over runs (chains, or probes for KPM) with its standard error.
    pub rank: Estimate,
    /// Independent runs behind it: chains for the Langevin estimators, 1 for KPM and exact.
    pub runs: usize,
    /// The standard deviation of one run's estimate (chains: their spread; KPM: its standard
    /// error; exact: 0).
    pub run_spread: f64,
    /// Root-mean-square error of one run against the true rank (chains: over the chains; KPM:
    /// |estimate − rank|, whose square is unbiased for the MSE; exact: its error).
    pub rmse: f64,
    /// Gradient evaluations spent (one per chain and step).
    pub gradient_evaluations: u64,
    /// Hessian-vector products spent.
    pub hessian_vector_products: u64,
    /// Wall-clock seconds (for the Langevin estimators, the whole simulation).
    pub seconds: f64,
    /// KPM's threshold ε (eigenvalue units).
    pub threshold: Option<f64>,
}

impl RankEstimate {
    /// An estimator that averages independent runs (the Langevin ones): `values` holds one rank
    /// estimate per run.
    pub fn from_runs(
        estimator: &str,
        values: &[f64],
        truth: f64,
        gradient_evaluations: u64,
        seconds: f64,
    ) -> RankEstimate {
        let m = values.len() as f64;
        let mean = values.iter().sum::<f64>() / m;
        let spread = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt()
        } else {
            0.0
        };
        RankEstimate {
            estimator: estimator.to_owned(),
            rank: Estimate {
                mean,
                std_error: spread / m.sqrt(),
            },
            runs: values.len(),
            run_spread: spread,
            rmse: (values.iter().map(|v| (v - truth).powi(2)).sum::<f64>() / m).sqrt(),
            gradient_evaluations,
            hessian_vector_products: 0,
            seconds,
            threshold: None,
        }
    }
}
