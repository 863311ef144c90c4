//! `objective-teacher-student`: a two-layer network with a smooth activation, fitted to the
//! labels of a teacher of the same shape, at the global minimum where student = teacher.
//!
//! ```text
//! f(θ) = (1/2N) Σ_s ‖W₂ tanh(W₁ x_s) − y_s‖²,   y_s = W₂* tanh(W₁* x_s),   θ = (vec W₁, vec W₂)
//! ```
//!
//! with W₁ h×d, W₂ k×h, N samples x_s ~ N(0, I) and the teacher drawn from the seed. At θ* =
//! teacher the residual vanishes, f* = 0, and the Hessian is the Gauss–Newton matrix
//! H = (1/N) Jᵀ J, J the (N·k)×n Jacobian of the outputs: its rank is at most N·k, below the
//! parameter count n = h(d + k) when N·k < n (the defaults), and is reported as computed.
//!
//! Gradient-noise model: SGD on one sample with label noise of variance s², whose per-sample
//! gradient at θ* is −J_sᵀ ε_s; its covariance is C = s² H (THEORY.md §6's Hessian-aligned noise,
//! here exact rather than assumed).

use ldbench_plugin_linalg::faer::{Mat, Side};
use ldbench_plugin_linalg::{column_major, gaussian, rng};
use ldbench_sdk::{Objective, Result, abi};

/// Parameters (TOML); every field has a default.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// d, the input dimension.
    #[serde(default = "default_inputs")]
    pub inputs: usize,
    /// h, the hidden width.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// k, the output dimension.
    #[serde(default = "default_outputs")]
    pub outputs: usize,
    /// N, the number of training samples.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// s, the standard deviation of the label noise behind the gradient-noise model.
    #[serde(default = "default_label_noise")]
    pub label_noise: f64,
}

fn default_inputs() -> usize {
    6
}
fn default_hidden() -> usize {
    4
}
fn default_outputs() -> usize {
    2
}
fn default_samples() -> usize {
    10
}
fn default_label_noise() -> f64 {
    0.1
}

/// The student at the teacher.
pub struct TeacherStudent {
    d: usize,
    h: usize,
    k: usize,
    /// Inputs, d×N.
    x: Mat<f64>,
    /// Labels, k×N.
    y: Mat<f64>,
    theta_star: Vec<f64>,
    /// The (N·k)×n Jacobian of the outputs at θ*.
    jacobian: Mat<f64>,
    rank: usize,
    label_variance: f64,
}

impl TeacherStudent {
    fn n(&self) -> usize {
        self.h * (self.d + self.k)
    }

    /// (W₁, W₂) from one chain's parameter vector.
    fn weights(&self, theta: &[f64]) -> (Mat<f64>, Mat<f64>) {
        let (d, h, k) = (self.d, self.h, self.k);
        let w1 = Mat::from_fn(h, d, |j, i| theta[j + h * i]);
        let w2 = Mat::from_fn(k, h, |c, j| theta[h * d + c + k * j]);
        (w1, w2)
    }
}

impl Objective for TeacherStudent {
    type Params = Params;
    const CAPABILITIES: u64 =
        abi::CAP_HESSIAN | abi::CAP_HESSIAN_VECTOR | abi::CAP_TRUE_RANK | abi::CAP_GRADIENT_NOISE;

    fn new(p: Params, seed: u64) -> Result<Self> {
        if p.inputs == 0 || p.hidden == 0 || p.outputs == 0 || p.samples == 0 {
            return Err("inputs, hidden, outputs and samples must all be at least 1".into());
        }
        if !(p.label_noise.is_finite() && p.label_noise >= 0.0) {
            return Err(format!(
                "label_noise = {} must be a non-negative number",
                p.label_noise
            )
            .into());
        }
        let (d, h, k, samples) = (p.inputs, p.hidden, p.outputs, p.samples);
        let mut rng = rng(seed);
        let x = gaussian(d, samples, &mut rng);
        let w1 =
            gaussian(h, d, &mut rng) * ldbench_plugin_linalg::faer::Scale(1.0 / (d as f64).sqrt());
        let w2 =
            gaussian(k, h, &mut rng) * ldbench_plugin_linalg::faer::Scale(1.0 / (h as f64).sqrt());
        let a = (&w1 * &x).to_owned();
        let a = Mat::from_fn(h, samples, |j, s| a[(j, s)].tanh());
        let y = &w2 * &a;
        let mut theta_star = column_major(&w1);
        theta_star.extend(column_major(&w2));
        let n = h * (d + k);
        // J[(s·k + c), θ index]: ∂out_{c,s}/∂W₁[j,i] = W₂[c,j](1 − a_{j,s}²) x_{i,s};
        // ∂out_{c,s}/∂W₂[c,j] = a_{j,s}.
        let mut jacobian = Mat::<f64>::zeros(samples * k, n);
        for s in 0..samples {
            for c in 0..k {
                let row = s * k + c;
                for j in 0..h {
                    let slope = w2[(c, j)] * (1.0 - a[(j, s)] * a[(j, s)]);
                    for i in 0..d {
                        jacobian[(row, j + h * i)] = slope * x[(i, s)];
                    }
                    jacobian[(row, h * d + c + k * j)] = a[(j, s)];
                }
            }
        }
        let gram = jacobian.transpose() * &jacobian;
        let eig = gram
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|_| "the eigendecomposition did not converge")?;
        let top = eig.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let rank = eig.iter().filter(|v| v.abs() > 1e-9 * top).count();
        Ok(TeacherStudent {
            d,
            h,
            k,
            x,
            y,
            theta_star,
            jacobian,
            rank,
            label_variance: p.label_noise.powi(2),
        })
    }

    fn dim(&self) -> usize {
        self.n()
    }

    fn theta_star(&self) -> Vec<f64> {
        self.theta_star.clone()
    }

    fn f_star(&self) -> f64 {
        0.0
    }

    fn true_rank(&self) -> Option<usize> {
        Some(self.rank)
    }

    fn value_and_gradient(&self, theta: &[f64], value: &mut [f64], grad: &mut [f64]) -> Result<()> {
        let (d, h, k, n) = (self.d, self.h, self.k, self.n());
        let samples = self.x.ncols() as f64;
        for ((theta, grad), value) in theta
            .chunks_exact(n)
            .zip(grad.chunks_exact_mut(n))
            .zip(value.iter_mut())
        {
            let (w1, w2) = self.weights(theta);
            let z = &w1 * &self.x;
            let a = Mat::from_fn(h, self.x.ncols(), |j, s| z[(j, s)].tanh());
            let residual = &w2 * &a - &self.y;
            *value = 0.5 * residual.squared_norm_l2() / samples;
            // dW₂ = R Aᵀ / N; dZ = (W₂ᵀ R) ∘ (1 − A²); dW₁ = dZ Xᵀ / N.
            let dw2 = &residual * a.transpose();
            let da = w2.transpose() * &residual;
            let dz = Mat::from_fn(h, self.x.ncols(), |j, s| {
                da[(j, s)] * (1.0 - a[(j, s)] * a[(j, s)])
            });
            let dw1 = &dz * self.x.transpose();
            for i in 0..d {
                for j in 0..h {
                    grad[j + h * i] = dw1[(j, i)] / samples;
                }
            }
            for j in 0..h {
                for c in 0..k {
                    grad[h * d + c + k * j] = dw2[(c, j)] / samples;
                }
            }
        }
        Ok(())
    }

    fn hessian(&self, out: &mut [f64]) -> Result<()> {
        let gram = self.jacobian.transpose() * &self.jacobian;
        let scale = 1.0 / self.x.ncols() as f64;
        out.iter_mut()
            .zip(column_major(&gram))
            .for_each(|(o, g)| *o = scale * g);
        Ok(())
    }

    fn hessian_vector(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        let n = self.n();
        let scale = 1.0 / self.x.ncols() as f64;
        for (v, out) in v.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let v = Mat::from_fn(n, 1, |i, _| v[i]);
            let jtjv = self.jacobian.transpose() * (&self.jacobian * &v);
            out.iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = scale * jtjv[(i, 0)]);
        }
        Ok(())
    }

    fn gradient_noise(&self, out: &mut [f64]) -> Result<()> {
        self.hessian(out)?;
        out.iter_mut().for_each(|c| *c *= self.label_variance);
        Ok(())
    }
}

ldbench_sdk::export_objective!(TeacherStudent);
