//! Conformance checks any plugin must pass (`ldbench plugin-test`, `cargo xtask plugin-test`):
//! the handshake, parameter errors, finite and deterministic outputs, and the mathematics —
//! gradients against finite differences, the Hessian against the gradient, G symmetric positive
//! definite and `apply` consistent with G.

use faer::{Mat, Side};
use serde::Serialize;

use super::{Kind, Plugin, PluginDir, PluginObjective, PluginPrecond};
use crate::linalg::{SymMatrix, asymmetry};
use crate::sim::{Objective, stream};
use rand_distr::{Distribution, StandardNormal};

/// Relative tolerance of central finite differences with step h·(1 + |θ|): the truncation error
/// is O(h²) and the rounding error O(ε/h); h = 1e-5 balances them near 1e-10, and 1e-5 leaves
/// room for curvature without hiding a wrong gradient (errors of order 1).
const FD_RTOL: f64 = 1e-5;
const FD_STEP: f64 = 1e-5;
/// Dimension of the test problem a preconditioner is built on.
const TEST_DIM: usize = 8;

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// Numbers or the error.
    pub detail: String,
}

/// Every check run on one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The plugin.
    pub plugin: String,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    fn record(&mut self, name: &'static str, outcome: Result<String, String>) {
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.checks.push(Check {
            name,
            passed,
            detail,
        });
    }
}

/// Runs every applicable check on plugin `name` with TOML `params` (its defaults when empty).
pub fn check(dir: &PluginDir, name: &str, params: &str) -> Report {
    let mut report = Report {
        plugin: name.to_owned(),
        checks: Vec::new(),
    };
    let plugin = match dir.load(name) {
        Ok(p) => p,
        Err(e) => {
            report.record(
                "handshake (ABI version, descriptor, name = package)",
                Err(e.to_string()),
            );
            return report;
        }
    };
    report.record(
        "handshake (ABI version, descriptor, name = package)",
        Ok(format!(
            "{} {} {}, capabilities {:?}",
            plugin.info.kind,
            plugin.info.name,
            plugin.info.version,
            plugin.info.capability_names()
        )),
    );
    report.record(
        "errors contained: non-UTF-8 parameters give an error status",
        plugin
            .rejects_invalid_parameter_bytes()
            .map(|m| format!("refused: {m}")),
    );
    match plugin.info.kind {
        Kind::Objective => check_objective(&plugin, params, &mut report),
        Kind::Preconditioner => check_precond(&plugin, params, &mut report),
    }
    report
}

/// An unknown parameter must be refused with an error that names it (not a panic).
fn unknown_parameter_refused(outcome: Result<(), super::PluginError>) -> Result<String, String> {
    match outcome {
        Ok(()) => Err("accepted an unknown parameter; use #[serde(deny_unknown_fields)]".into()),
        Err(super::PluginError::Call {
            panicked: false,
            message,
            ..
        }) if message.contains("conformance_unknown_field") => Ok(format!(
            "refused: {}",
            message.lines().last().unwrap_or_default()
        )),
        Err(e) => Err(format!(
            "refused, but not with an error naming the field: {e}"
        )),
    }
}

const UNKNOWN_PARAMETER: &str = "conformance_unknown_field = 1";

fn gaussian_block(n: usize, m: usize, seed: u64) -> Vec<f64> {
    let mut rng = stream::chain_rng(seed, 0xC0F0, 0);
    (0..n * m)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// `matrix · block` for a column-major block, as a column-major vector.
fn dense_apply(matrix: &Mat<f64>, block: &[f64]) -> Vec<f64> {
    let n = matrix.nrows();
    let product = matrix * faer::MatRef::from_column_major_slice(block, n, block.len() / n);
    (0..product.ncols())
        .flat_map(|j| (0..n).map(move |i| (i, j)))
        .map(|(i, j)| product[(i, j)])
        .collect()
}

fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let diff = a
        .iter()
        .zip(b)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let scale = a
        .iter()
        .chain(b)
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(1e-300);
    diff / scale
}

fn check_objective(plugin: &Plugin, params: &str, report: &mut Report) {
    report.record(
        "unknown parameter refused with a message",
        unknown_parameter_refused(PluginObjective::new(plugin, UNKNOWN_PARAMETER, 1).map(drop)),
    );
    let objective = match PluginObjective::new(plugin, params, 1) {
        Ok(o) => o,
        Err(e) => return report.record("created with the given parameters", Err(e.to_string())),
    };
    report.record(
        "created with the given parameters",
        Ok(format!(
            "n = {}, f* = {:e}",
            objective.dim(),
            objective.f_star()
        )),
    );
    let n = objective.dim();
    let eval = |theta: &[f64]| -> Result<(Vec<f64>, Vec<f64>), String> {
        let m = theta.len() / n;
        let (mut value, mut grad) = (vec![0.0; m], vec![0.0; n * m]);
        objective
            .value_and_gradient(theta, &mut value, &mut grad)
            .map_err(|e| e.to_string())?;
        match value.iter().position(|v| !v.is_finite()) {
            Some(j) => Err(format!("value {} of column {j}", value[j])),
            None => Ok((value, grad)),
        }
    };
    let theta_star = objective.theta_star().to_vec();
    let scale = theta_star.iter().fold(1.0_f64, |a, t| a.max(t.abs()));
    // Points near θ*: random directions of length 0.1·scale per coordinate.
    let directions = gaussian_block(n, 3, 7);
    let points: Vec<f64> = directions
        .chunks_exact(n)
        .flat_map(|d| {
            theta_star
                .iter()
                .zip(d)
                .map(move |(t, d)| t + 0.1 * scale * d)
        })
        .collect();

    report.record(
        "stationary: ∇f(θ*) ≈ 0 and f(θ*) = f*",
        eval(&theta_star).and_then(|(value, grad)| {
            let (_, far) = eval(&points)?;
            let reference = far.iter().map(|g| g * g).sum::<f64>().sqrt().max(1e-300);
            let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
            let value_gap = (value[0] - objective.f_star()).abs() / (1.0 + objective.f_star().abs());
            if norm <= 1e-8 * reference && value_gap <= 1e-10 {
                Ok(format!("‖∇f(θ*)‖ = {norm:.1e} (vs {reference:.1e} nearby), |f(θ*) − f*| relative {value_gap:.1e}"))
            } else {
                Err(format!("‖∇f(θ*)‖ = {norm:.3e} vs {reference:.3e} nearby; |f(θ*) − f*| relative {value_gap:.3e}"))
            }
        }),
    );

    report.record(
        "gradient matches central finite differences",
        eval(&points).and_then(|(_, grad)| {
            let probes = gaussian_block(n, 3, 8);
            let mut worst = 0.0_f64;
            for (j, (point, probe)) in points
                .chunks_exact(n)
                .zip(probes.chunks_exact(n))
                .enumerate()
            {
                let h = FD_STEP * scale;
                let shifted = |sign: f64| {
                    point
                        .iter()
                        .zip(probe)
                        .map(|(p, v)| p + sign * h * v)
                        .collect::<Vec<f64>>()
                };
                let (plus, _) = eval(&shifted(1.0))?;
                let (minus, _) = eval(&shifted(-1.0))?;
                let numeric = (plus[0] - minus[0]) / (2.0 * h);
                let analytic: f64 = grad[j * n..(j + 1) * n]
                    .iter()
                    .zip(probe)
                    .map(|(g, v)| g * v)
                    .sum();
                worst = worst.max(
                    (numeric - analytic).abs() / (numeric.abs().max(analytic.abs()).max(1e-12)),
                );
            }
            if worst <= FD_RTOL {
                Ok(format!("worst relative error {worst:.1e}"))
            } else {
                Err(format!("relative error {worst:.3e} > {FD_RTOL:e}"))
            }
        }),
    );

    report.record(
        "deterministic for a seed",
        (|| {
            let again = PluginObjective::new(plugin, params, 1).map_err(|e| e.to_string())?;
            let (mut v1, mut g1) = (vec![0.0; 3], vec![0.0; 3 * n]);
            let (mut v2, mut g2) = (vec![0.0; 3], vec![0.0; 3 * n]);
            objective
                .value_and_gradient(&points, &mut v1, &mut g1)
                .map_err(|e| e.to_string())?;
            again
                .value_and_gradient(&points, &mut v2, &mut g2)
                .map_err(|e| e.to_string())?;
            if again.theta_star() == objective.theta_star() && v1 == v2 && g1 == g2 {
                Ok("two instances with seed 1 agree bit for bit".to_owned())
            } else {
                Err("two instances with the same seed differ".to_owned())
            }
        })(),
    );

    report.record(
        "errors contained: a block of the wrong dimension gives an error status",
        objective
            .rejects_wrong_dimension()
            .map(|m| format!("refused: {m}")),
    );

    let hessian = objective.hessian();
    if let Ok(Some(h)) = &hessian {
        report.record(
            "Hessian symmetric and equal to the derivative of the gradient",
            (|| {
                let asym = asymmetry(h.as_ref());
                if asym > 1e-10 {
                    return Err(format!("relative asymmetry {asym:.3e}"));
                }
                let probe = gaussian_block(n, 1, 9);
                let step = FD_STEP * scale;
                let at = |sign: f64| {
                    theta_star
                        .iter()
                        .zip(&probe)
                        .map(|(t, v)| t + sign * step * v)
                        .collect::<Vec<f64>>()
                };
                let (_, plus) = eval(&at(1.0))?;
                let (_, minus) = eval(&at(-1.0))?;
                let numeric: Vec<f64> = plus
                    .iter()
                    .zip(&minus)
                    .map(|(p, m)| (p - m) / (2.0 * step))
                    .collect();
                let error = relative_error(&dense_apply(h, &probe), &numeric);
                if error <= FD_RTOL {
                    Ok(format!(
                        "asymmetry {asym:.1e}, H v vs differences {error:.1e}"
                    ))
                } else {
                    Err(format!(
                        "H v vs gradient differences: relative error {error:.3e}"
                    ))
                }
            })(),
        );
        if let Some(rank) = objective.true_rank() {
            report.record(
                "true rank equals the Hessian's numerical rank",
                (|| {
                    let eig = h
                        .self_adjoint_eigenvalues(Side::Lower)
                        .map_err(|_| "EVD failed".to_owned())?;
                    let top = eig.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
                    let numeric = eig.iter().filter(|v| v.abs() > 1e-9 * top).count();
                    if numeric == rank {
                        Ok(format!("{rank}"))
                    } else {
                        Err(format!("declared {rank}, numerical {numeric}"))
                    }
                })(),
            );
        }
    } else if let Err(e) = &hessian {
        report.record("Hessian", Err(e.to_string()));
    }

    let probe = gaussian_block(n, 2, 10);
    match (objective.hessian_vector(&probe), &hessian) {
        (Ok(Some(hv)), Ok(Some(h))) => {
            report.record("Hessian-vector products equal the dense Hessian's", {
                let error = relative_error(&hv, &dense_apply(h, &probe));
                if error <= 1e-10 {
                    Ok(format!("relative error {error:.1e}"))
                } else {
                    Err(format!("relative error {error:.3e}"))
                }
            })
        }
        (Err(e), _) => report.record("Hessian-vector products", Err(e.to_string())),
        _ => {}
    }

    match (objective.hessian_eigenvalues(), &hessian) {
        (Ok(Some(mut claimed)), Ok(Some(h))) => {
            report.record("Hessian eigenvalues equal the dense Hessian's", {
                claimed.sort_by(f64::total_cmp);
                let found: Vec<f64> = h.self_adjoint_eigenvalues(Side::Lower).unwrap_or_default();
                let scale = found.iter().fold(1e-300_f64, |a, v| a.max(v.abs()));
                let worst = claimed
                    .iter()
                    .zip(&found)
                    .fold(0.0_f64, |a, (c, f)| a.max((c - f).abs()))
                    / scale;
                if found.len() != claimed.len() {
                    Err("the dense Hessian's eigendecomposition did not converge".to_owned())
                } else if worst <= 1e-9 {
                    Ok(format!("largest difference {worst:.1e} of λ_max"))
                } else {
                    Err(format!("largest difference {worst:.3e} of λ_max"))
                }
            })
        }
        (Err(e), _) => report.record("Hessian eigenvalues", Err(e.to_string())),
        _ => {}
    }

    match objective.gradient_noise() {
        Ok(Some(c)) => report.record(
            "gradient-noise covariance symmetric positive semi-definite",
            SymMatrix::Dense(c)
                .check_semi_definite(1e-10)
                .map(|()| "ok".to_owned())
                .map_err(|e| e.to_string()),
        ),
        Ok(None) => {}
        Err(e) => report.record("gradient-noise covariance", Err(e.to_string())),
    }
}

/// A small test problem for preconditioners: H of rank 5 and an SPD C, both rotated.
fn test_problem() -> (Mat<f64>, Mat<f64>) {
    let n = TEST_DIM;
    let b = gaussian_block(n, 5, 11);
    let h = Mat::from_fn(n, n, |i, j| {
        (0..5).map(|k| b[k * n + i] * b[k * n + j]).sum::<f64>()
    });
    let a = gaussian_block(n, n, 12);
    let c = Mat::from_fn(n, n, |i, j| {
        0.1 * (0..n).map(|k| a[k * n + i] * a[k * n + j]).sum::<f64>()
            + if i == j { 0.5 } else { 0.0 }
    });
    (h, c)
}

fn check_precond(plugin: &Plugin, params: &str, report: &mut Report) {
    let (h, c) = test_problem();
    report.record(
        "unknown parameter refused with a message",
        unknown_parameter_refused(
            PluginPrecond::new(plugin, UNKNOWN_PARAMETER, 1, Some(&h), &c).map(drop),
        ),
    );
    let mut precond = match PluginPrecond::new(plugin, params, 1, Some(&h), &c) {
        Ok(p) => p,
        Err(e) => return report.record("created on the test problem", Err(e.to_string())),
    };
    report.record(
        "created on the test problem",
        Ok(format!("n = {TEST_DIM}, singular H of rank 5, dense C")),
    );
    let spd = |g: &SymMatrix| -> Result<String, String> {
        g.cholesky_factor()
            .map_err(|e| format!("G is not positive definite: {e}"))?;
        Ok("G symmetric (checked on load), finite and positive definite".to_owned())
    };
    let g = precond.matrix();
    report.record(
        "G symmetric positive definite",
        g.as_ref().map_err(|e| e.to_string()).and_then(spd),
    );
    let Ok(g) = g else { return };
    report.record(
        "apply consistent with the matrix",
        (|| {
            let block = gaussian_block(TEST_DIM, 3, 13);
            let applied = precond.apply(&block).map_err(|e| e.to_string())?;
            let error = relative_error(&applied, &dense_apply(&g.to_dense(), &block));
            if error <= 1e-12 {
                Ok(format!("relative error {error:.1e}"))
            } else {
                Err(format!("relative error {error:.3e}"))
            }
        })(),
    );
    report.record(
        "deterministic for a seed",
        PluginPrecond::new(plugin, params, 1, Some(&h), &c)
            .and_then(|p| p.matrix())
            .map_err(|e| e.to_string())
            .and_then(|again| {
                if again == g {
                    Ok("two instances with seed 1 agree bit for bit".to_owned())
                } else {
                    Err("two instances with the same seed differ".to_owned())
                }
            }),
    );
    if precond.is_online() {
        report.record(
            "online mode keeps G symmetric positive definite",
            (|| {
                for step in 0..5 {
                    precond
                        .observe(&gaussian_block(TEST_DIM, 4, 20 + step))
                        .map_err(|e| e.to_string())?;
                }
                spd(&precond.matrix().map_err(|e| e.to_string())?)
            })(),
        );
    }
}
