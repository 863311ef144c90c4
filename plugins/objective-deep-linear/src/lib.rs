//! `objective-deep-linear`: the deep linear network of Bar et al. (THEORY.md §7–8), started at a
//! global minimum. With square d×d layers W_1 … W_L, A = W_L ⋯ W_1, Σ_x = I and T = Σ_yx
//! (symmetric positive definite):
//!
//! ```text
//! f(θ) = tr(A Aᵀ) − 2 tr(A Tᵀ) = ‖A − T‖² − ‖T‖²,   θ = (vec W_1, …, vec W_L),  n = L d²
//! ```
//!
//! θ* is the balanced point W_1 = Q T^{1/L}, W_l = Q T^{1/L} Qᵀ, W_L = T^{1/L} Qᵀ with Q a
//! random orthogonal matrix from the seed, f* = −‖T‖², and rank(H) = d² (THEORY §7, fact 7).
//! Gradients are analytic and batched; at θ* the Hessian is 2JᵀJ (the residual vanishes), with
//! J v = Σ_l (W_L⋯W_{l+1}) V_l (W_{l−1}⋯W_1), so Hessian-vector products cost O(L d³).

use ldbench_plugin_linalg::faer::{Mat, MatMut, MatRef};
use ldbench_plugin_linalg::{
    gaussian, multiply_into, product, random_orthogonal, rng, symmetric_function,
};
use ldbench_sdk::{Objective, Result, abi};

/// Largest n for which the dense Hessian is offered (n² doubles: 512 MiB).
const MAX_DENSE_HESSIAN: usize = 8192;

/// Parameters (TOML); every field has a default.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// L, the number of layers (≥ 1).
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// d, the width of every layer [default: 8, or the size of `sigma_yx`].
    pub width: Option<usize>,
    /// T = Σ_yx as rows of numbers (symmetric positive definite). Absent: R Rᵀ/√d with R
    /// i.i.d. N(0, 1) from the seed. The host turns `sigma_yx = "@file.npy"` into the array.
    pub sigma_yx: Option<Vec<Vec<f64>>>,
    /// s: the gradient-noise model is single-sample SGD with label noise of variance s²
    /// (y = T x + ε, x ~ N(0, I)), whose gradient covariance at θ* is C = 2 s² H.
    #[serde(default = "tenth")]
    pub label_noise: f64,
}

fn tenth() -> f64 {
    0.1
}

fn default_depth() -> usize {
    5
}

/// The network at its minimum.
pub struct DeepLinear {
    width: usize,
    depth: usize,
    target: Mat<f64>,
    /// θ*, layer by layer.
    weights: Vec<Mat<f64>>,
    /// At θ*: P_l = W_{l−1}⋯W_1 and Q_l = W_L⋯W_{l+1}.
    below: Vec<Mat<f64>>,
    above: Vec<Mat<f64>>,
    label_variance: f64,
}

/// P_l = W_{l−1}⋯W_1 (P_1 = I) and Q_l = W_L⋯W_{l+1} (Q_L = I) for every layer l.
fn partial_products(w: &[MatRef<'_, f64>]) -> (Vec<Mat<f64>>, Vec<Mat<f64>>) {
    let d = w[0].nrows();
    let depth = w.len();
    let mut below = vec![Mat::<f64>::identity(d, d)];
    for l in 1..depth {
        below.push(product(w[l - 1], below[l - 1].as_ref()));
    }
    let mut above = vec![Mat::<f64>::identity(d, d); depth];
    for l in (0..depth - 1).rev() {
        above[l] = product(above[l + 1].as_ref(), w[l + 1]);
    }
    (below, above)
}

impl DeepLinear {
    fn n(&self) -> usize {
        self.depth * self.width * self.width
    }

    /// Layer views of one chain's parameter vector.
    fn layers<'a>(&self, theta: &'a [f64]) -> Vec<MatRef<'a, f64>> {
        let dd = self.width * self.width;
        theta
            .chunks_exact(dd)
            .map(|w| MatRef::from_column_major_slice(w, self.width, self.width))
            .collect()
    }
}

impl Objective for DeepLinear {
    type Params = Params;
    const CAPABILITIES: u64 = abi::CAP_HESSIAN
        | abi::CAP_HESSIAN_VECTOR
        | abi::CAP_TRUE_RANK
        | abi::CAP_GRADIENT_NOISE
        | abi::CAP_HESSIAN_SPECTRUM;

    fn new(p: Params, seed: u64) -> Result<Self> {
        if !(p.label_noise.is_finite() && p.label_noise >= 0.0) {
            return Err(format!(
                "label_noise = {} must be a non-negative number",
                p.label_noise
            )
            .into());
        }
        if p.depth == 0 {
            return Err("depth must be at least 1".into());
        }
        let mut rng = rng(seed);
        let target = match &p.sigma_yx {
            Some(rows) => {
                let d = rows.len();
                if d == 0 || rows.iter().any(|r| r.len() != d) {
                    return Err(
                        "sigma_yx must be a non-empty square matrix (rows of equal length)".into(),
                    );
                }
                if p.width.is_some_and(|w| w != d) {
                    return Err(format!(
                        "width = {} but sigma_yx is {d}×{d}",
                        p.width.unwrap_or(d)
                    )
                    .into());
                }
                Mat::from_fn(d, d, |i, j| rows[i][j])
            }
            None => {
                let d = p.width.unwrap_or(8);
                if d == 0 {
                    return Err("width must be at least 1".into());
                }
                let r = gaussian(d, d, &mut rng);
                let scale = 1.0 / (d as f64).sqrt();
                Mat::from_fn(d, d, |i, j| {
                    scale * (0..d).map(|k| r[(i, k)] * r[(j, k)]).sum::<f64>()
                })
            }
        };
        let d = target.nrows();
        let asymmetry = (0..d)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| (target[(i, j)] - target[(j, i)]).abs())
            .fold(0.0, f64::max);
        if !(asymmetry <= 1e-10 * target.norm_max()) {
            return Err(
                format!("sigma_yx must be symmetric (max |T_ij − T_ji| = {asymmetry:e})").into(),
            );
        }
        let depth = p.depth;
        let mut min_eigenvalue = f64::INFINITY;
        let root = symmetric_function(&target, |mu| {
            min_eigenvalue = min_eigenvalue.min(mu);
            mu.max(0.0).powf(1.0 / depth as f64)
        })?;
        if !(min_eigenvalue > 0.0) {
            return Err(format!(
                "sigma_yx must be positive definite (smallest eigenvalue {min_eigenvalue:e})"
            )
            .into());
        }
        let q = random_orthogonal(d, &mut rng);
        let weights: Vec<Mat<f64>> = (0..depth)
            .map(|l| match (l == 0, l == depth - 1) {
                (true, true) => target.clone(),
                (true, false) => &q * &root,
                (false, true) => &root * q.transpose(),
                (false, false) => &q * &root * q.transpose(),
            })
            .collect();
        let views: Vec<MatRef<'_, f64>> = weights.iter().map(|w| w.as_ref()).collect();
        let (below, above) = partial_products(&views);
        Ok(DeepLinear {
            width: d,
            depth,
            target,
            weights,
            below,
            above,
            label_variance: p.label_noise.powi(2),
        })
    }

    fn dim(&self) -> usize {
        self.n()
    }

    fn theta_star(&self) -> Vec<f64> {
        self.weights
            .iter()
            .flat_map(|w| {
                (0..self.width * self.width).map(move |k| w[(k % self.width, k / self.width)])
            })
            .collect()
    }

    fn f_star(&self) -> f64 {
        -self.target.squared_norm_l2()
    }

    fn true_rank(&self) -> Option<usize> {
        Some(self.width * self.width)
    }

    fn value_and_gradient(&self, theta: &[f64], value: &mut [f64], grad: &mut [f64]) -> Result<()> {
        let (d, n, depth) = (self.width, self.n(), self.depth);
        // Scratch for every chain of the block: P_l = W_{l−1}⋯W_1, Q_l = W_L⋯W_{l+1} (P_1 and
        // Q_L stay I), the residual and one temporary; the small products then allocate nothing.
        let mut below = vec![Mat::<f64>::identity(d, d); depth];
        let mut above = vec![Mat::<f64>::identity(d, d); depth];
        let mut residual = Mat::<f64>::zeros(d, d);
        let mut scratch = Mat::<f64>::zeros(d, d);
        for ((theta, grad), value) in theta
            .chunks_exact(n)
            .zip(grad.chunks_exact_mut(n))
            .zip(value)
        {
            let w = self.layers(theta);
            // Products with the identity (P_2 = W_1, Q_{L−1} = W_L) are copies.
            if depth > 1 {
                below[1].copy_from(w[0]);
                above[depth - 2].copy_from(w[depth - 1]);
            }
            for l in 2..depth {
                let (done, rest) = below.split_at_mut(l);
                multiply_into(rest[0].as_mut(), w[l - 1], done[l - 1].as_ref());
            }
            for l in (0..depth.saturating_sub(2)).rev() {
                let (rest, done) = above.split_at_mut(l + 1);
                multiply_into(rest[l].as_mut(), done[0].as_ref(), w[l + 1]);
            }
            // A, then f = ‖A‖² − 2⟨A, T⟩ and ∂f/∂A = 2(A − T) in place.
            multiply_into(residual.as_mut(), w[depth - 1], below[depth - 1].as_ref());
            let mut f = 0.0;
            for j in 0..d {
                for i in 0..d {
                    let (a, t) = (residual[(i, j)], self.target[(i, j)]);
                    f += a * a - 2.0 * a * t;
                    residual[(i, j)] = 2.0 * (a - t);
                }
            }
            *value = f;
            // ∂f/∂W_l = Q_lᵀ (∂f/∂A) P_lᵀ, written straight into the gradient.
            for (l, g) in grad.chunks_exact_mut(d * d).enumerate() {
                let mut g = MatMut::from_column_major_slice_mut(g, d, d);
                let left = if l + 1 == depth {
                    residual.as_ref()
                } else {
                    multiply_into(scratch.as_mut(), above[l].transpose(), residual.as_ref());
                    scratch.as_ref()
                };
                if l == 0 {
                    g.copy_from(left);
                } else {
                    multiply_into(g, left, below[l].transpose());
                }
            }
        }
        Ok(())
    }

    fn hessian(&self, out: &mut [f64]) -> Result<()> {
        let n = self.n();
        if n > MAX_DENSE_HESSIAN {
            return Err(format!("n = {n} is too large for a dense Hessian (limit {MAX_DENSE_HESSIAN}); use Hessian-vector products").into());
        }
        let identity: Vec<f64> = (0..n * n)
            .map(|k| if k % n == k / n { 1.0 } else { 0.0 })
            .collect();
        self.hessian_vector(&identity, out)?;
        // Symmetrise the rounding of the products.
        for j in 0..n {
            for i in (j + 1)..n {
                let v = 0.5 * (out[j * n + i] + out[i * n + j]);
                out[j * n + i] = v;
                out[i * n + j] = v;
            }
        }
        Ok(())
    }

    fn gradient_noise(&self, out: &mut [f64]) -> Result<()> {
        // The per-sample gradient at θ* is −2 Jₓᵀ ε with E[JₓᵀJₓ] = JᵀJ = H/2: C = 4 s² H/2.
        self.hessian(out)?;
        out.iter_mut().for_each(|c| *c *= 2.0 * self.label_variance);
        Ok(())
    }

    /// THEORY §7 fact 7: the d² nonzero eigenvalues λ_ij = 2 Σ_k μ_i^{2k/L} μ_j^{2(L−1−k)/L} over
    /// pairs of eigenvalues μ of T, whatever point of the minimum manifold; the rest are zero.
    fn hessian_eigenvalues(&self, out: &mut [f64]) -> Result<()> {
        let mu = self
            .target
            .self_adjoint_eigenvalues(ldbench_plugin_linalg::faer::Side::Lower)
            .map_err(|_| "the eigendecomposition of Σ_yx did not converge")?;
        let l = self.depth as f64;
        out.fill(0.0);
        for (slot, (mi, mj)) in out
            .iter_mut()
            .zip(mu.iter().flat_map(|mi| mu.iter().map(move |mj| (mi, mj))))
        {
            *slot = 2.0
                * (0..self.depth)
                    .map(|k| {
                        let k = k as f64;
                        mi.powf(2.0 * k / l) * mj.powf(2.0 * (l - 1.0 - k) / l)
                    })
                    .sum::<f64>();
        }
        Ok(())
    }

    fn hessian_vector(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let (d, n) = (self.width, self.n());
        for (v, out) in v.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let layers = self.layers(v);
            // J v = Σ_l Q_l V_l P_l; H v = 2 Jᵀ(J v), (Jᵀ M)_l = Q_lᵀ M P_lᵀ.
            let mut jv = Mat::<f64>::zeros(d, d);
            for (l, vl) in layers.iter().enumerate() {
                jv += product(
                    product(self.above[l].as_ref(), *vl).as_ref(),
                    self.below[l].as_ref(),
                );
            }
            for (l, o) in out.chunks_exact_mut(d * d).enumerate() {
                let left = product(self.above[l].transpose(), jv.as_ref());
                let hl = product(left.as_ref(), self.below[l].transpose());
                o.iter_mut()
                    .enumerate()
                    .for_each(|(k, o)| *o = 2.0 * hl[(k % d, k / d)]);
            }
        }
        Ok(())
    }
}

ldbench_sdk::export_objective!(DeepLinear);
