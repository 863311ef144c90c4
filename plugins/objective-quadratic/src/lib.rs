//! `objective-quadratic`: f(θ) = ½ θᵀ H θ with H of chosen dimension, rank, spectrum family and
//! eigenbasis; θ* = 0, f* = 0. Exact Hessian, Hessian-vector products and true rank, and a
//! gradient-noise model: least squares with label noise of variance s², whose single-sample
//! gradient covariance at θ* is C = s² H.

use ldbench_plugin_linalg::faer::linalg::matmul::matmul;
use ldbench_plugin_linalg::faer::{Accum, Mat, MatMut, MatRef, Par};
use ldbench_plugin_linalg::{column_major, random_orthogonal, rng};
use ldbench_sdk::{Objective, Result, abi};

/// Parameters (TOML); every field has a default.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// n, the dimension.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// r = rank(H) ≤ n [default: n].
    pub rank: Option<usize>,
    /// How the r nonzero eigenvalues are spread between λ_max/κ and λ_max.
    #[serde(default)]
    pub spectrum: Spectrum,
    /// κ = λ_max / λ_min over the nonzero eigenvalues (≥ 1).
    #[serde(default = "default_condition")]
    pub condition: f64,
    /// λ_max.
    #[serde(default = "one")]
    pub lambda_max: f64,
    /// The eigenbasis.
    #[serde(default)]
    pub basis: Basis,
    /// For `basis = "partial"`: 0 is the axes, 1 a fully random rotation.
    #[serde(default = "half")]
    pub alignment: f64,
    /// s: the gradient-noise model is least squares with label noise of variance s², C = s² H.
    #[serde(default = "tenth")]
    pub label_noise: f64,
}

/// Spectrum families, λ_1 ≥ … ≥ λ_r.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spectrum {
    /// All equal to λ_max (κ is ignored).
    Flat,
    /// Evenly spaced from λ_max/κ to λ_max.
    Linear,
    /// Geometrically spaced from λ_max/κ to λ_max.
    #[default]
    LogUniform,
    /// λ_i = λ_max · i^(−p), p = ln κ / ln r, so that λ_r = λ_max/κ.
    PowerLaw,
}

/// Eigenbases.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The coordinate axes: H diagonal.
    #[default]
    Axes,
    /// A Haar-random rotation from the seed.
    Random,
    /// Between the two: the orthogonal factor of (1 − a) I + a Q, a = `alignment`.
    Partial,
}

fn default_dim() -> usize {
    100
}
fn default_condition() -> f64 {
    100.0
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn tenth() -> f64 {
    0.1
}

/// The nonzero eigenvalues, largest first.
pub fn eigenvalues(spectrum: Spectrum, rank: usize, condition: f64, lambda_max: f64) -> Vec<f64> {
    let last = (rank.max(2) - 1) as f64;
    (0..rank)
        .map(|i| {
            let t = i as f64 / last;
            lambda_max
                * match spectrum {
                    Spectrum::Flat => 1.0,
                    Spectrum::Linear => 1.0 - t * (1.0 - 1.0 / condition),
                    Spectrum::LogUniform => condition.powf(-t),
                    Spectrum::PowerLaw if rank == 1 => 1.0,
                    Spectrum::PowerLaw => {
                        ((i + 1) as f64).powf(-condition.ln() / (rank as f64).ln())
                    }
                }
        })
        .collect()
}

/// The quadratic.
pub struct Quadratic {
    /// H, or its diagonal for the axes basis.
    hessian: Hessian,
    rank: usize,
    label_variance: f64,
}

enum Hessian {
    Diagonal(Vec<f64>),
    Dense(Mat<f64>),
}

impl Objective for Quadratic {
    type Params = Params;
    const CAPABILITIES: u64 =
        abi::CAP_HESSIAN | abi::CAP_HESSIAN_VECTOR | abi::CAP_TRUE_RANK | abi::CAP_GRADIENT_NOISE;

    fn new(p: Params, seed: u64) -> Result<Self> {
        let rank = p.rank.unwrap_or(p.dim);
        if p.dim == 0 || rank > p.dim {
            return Err(format!(
                "need 1 ≤ dim and rank ≤ dim, got dim = {}, rank = {rank}",
                p.dim
            )
            .into());
        }
        if !(p.condition.is_finite() && p.condition >= 1.0) {
            return Err(format!("condition = {} must be a number ≥ 1", p.condition).into());
        }
        if !(p.lambda_max.is_finite() && p.lambda_max > 0.0) {
            return Err(format!("lambda_max = {} must be positive", p.lambda_max).into());
        }
        if !(p.label_noise.is_finite() && p.label_noise >= 0.0) {
            return Err(format!(
                "label_noise = {} must be a non-negative number",
                p.label_noise
            )
            .into());
        }
        if !(0.0..=1.0).contains(&p.alignment) {
            return Err(format!("alignment = {} must lie in [0, 1]", p.alignment).into());
        }
        let mut spectrum = eigenvalues(p.spectrum, rank, p.condition, p.lambda_max);
        spectrum.resize(p.dim, 0.0);
        let n = p.dim;
        let rotation = match p.basis {
            Basis::Axes => None,
            Basis::Random => Some(random_orthogonal(n, &mut rng(seed))),
            Basis::Partial => {
                let q = random_orthogonal(n, &mut rng(seed));
                let a = p.alignment;
                let mix = Mat::from_fn(n, n, |i, j| {
                    a * q[(i, j)] + if i == j { 1.0 - a } else { 0.0 }
                });
                Some(ldbench_plugin_linalg::orthogonal_factor(&mix))
            }
        };
        let hessian = match rotation {
            None => Hessian::Diagonal(spectrum),
            Some(q) => {
                let scaled = Mat::from_fn(n, n, |i, j| q[(i, j)] * spectrum[j]);
                let h = scaled * q.transpose();
                Hessian::Dense(Mat::from_fn(n, n, |i, j| 0.5 * (h[(i, j)] + h[(j, i)])))
            }
        };
        Ok(Quadratic {
            hessian,
            rank,
            label_variance: p.label_noise.powi(2),
        })
    }

    fn dim(&self) -> usize {
        match &self.hessian {
            Hessian::Diagonal(d) => d.len(),
            Hessian::Dense(h) => h.nrows(),
        }
    }

    fn theta_star(&self) -> Vec<f64> {
        vec![0.0; self.dim()]
    }

    fn f_star(&self) -> f64 {
        0.0
    }

    fn true_rank(&self) -> Option<usize> {
        Some(self.rank)
    }

    fn value_and_gradient(&self, theta: &[f64], value: &mut [f64], grad: &mut [f64]) -> Result<()> {
        self.hessian_vector(theta, grad)?;
        let n = self.dim();
        for ((t, g), v) in theta.chunks_exact(n).zip(grad.chunks_exact(n)).zip(value) {
            *v = 0.5 * t.iter().zip(g).map(|(t, g)| t * g).sum::<f64>();
        }
        Ok(())
    }

    fn hessian(&self, out: &mut [f64]) -> Result<()> {
        let n = self.dim();
        match &self.hessian {
            Hessian::Diagonal(d) => {
                out.fill(0.0);
                d.iter().enumerate().for_each(|(i, d)| out[i * n + i] = *d);
            }
            Hessian::Dense(h) => out.copy_from_slice(&column_major(h)),
        }
        Ok(())
    }

    fn gradient_noise(&self, out: &mut [f64]) -> Result<()> {
        self.hessian(out)?;
        out.iter_mut().for_each(|c| *c *= self.label_variance);
        Ok(())
    }

    fn hessian_vector(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let n = self.dim();
        match &self.hessian {
            Hessian::Diagonal(d) => {
                for (v, out) in v.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
                    out.iter_mut()
                        .zip(v)
                        .zip(d)
                        .for_each(|((o, v), d)| *o = d * v);
                }
            }
            Hessian::Dense(h) => {
                let m = v.len() / n;
                matmul(
                    MatMut::from_column_major_slice_mut(out, n, m),
                    Accum::Replace,
                    h,
                    MatRef::from_column_major_slice(v, n, m),
                    1.0,
                    Par::Seq,
                );
            }
        }
        Ok(())
    }
}

ldbench_sdk::export_objective!(Quadratic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectra_span_the_condition_number() {
        for family in [Spectrum::Linear, Spectrum::LogUniform, Spectrum::PowerLaw] {
            let e = eigenvalues(family, 10, 50.0, 2.0);
            assert!((e[0] - 2.0).abs() < 1e-12, "{family:?}");
            assert!((e[9] - 2.0 / 50.0).abs() < 1e-12, "{family:?}: {e:?}");
            assert!(e.windows(2).all(|w| w[0] >= w[1]));
        }
        assert_eq!(eigenvalues(Spectrum::Flat, 3, 50.0, 2.0), vec![2.0; 3]);
    }
}
