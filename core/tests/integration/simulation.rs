//! The simulator against the discrete closed form.
//!
//! Tolerance: every comparison allows 4 standard errors. With fixed seeds the tests are
//! deterministic; 4 SE is where a correct simulator would fail with probability 6e-5 per check,
//! while the errors these tests guard against (a missing discretisation factor, a wrong noise
//! factor, a preconditioner applied twice) move the estimates by tens of standard errors at
//! these window lengths, which `r_hat_c_is_unbiased_where_r_hat_is_visibly_biased` shows.

use std::sync::atomic::{AtomicUsize, Ordering};

use ldbench::linalg::SymMatrix;
use ldbench::sim::{
    Objective, ObjectiveError, Quadratic, Sampler, SimConfig, SimError, Simulation,
};
use ldbench::theory::{ClosedForm, DEFAULT_RANK_RTOL};

use crate::random::{Random, symmetrize};

const TOLERANCE_SE: f64 = 4.0;

struct Case {
    name: &'static str,
    hessian: SymMatrix,
    precond: SymMatrix,
    noise_cov: SymMatrix,
    /// η as a fraction of 2/λ_max.
    stability_fraction: f64,
}

fn run(case: &Case, chains: usize, steps: u64, seed: u64) -> (ClosedForm, f64, Simulation) {
    let cf = ClosedForm::new(
        case.hessian.to_dense().as_ref(),
        &case.precond,
        &case.noise_cov,
        DEFAULT_RANK_RTOL,
    )
    .unwrap();
    let eta = case.stability_fraction * 2.0 / cf.lambda_max();
    let objective = Quadratic::new(case.hessian.clone());
    let sampler = Sampler::new(&objective, &case.precond, &case.noise_cov).unwrap();
    let config = SimConfig {
        seed,
        ..SimConfig::new(eta, chains, steps)
    };
    (cf.clone(), eta, sampler.run(&config, None).unwrap())
}

fn check_against_theory(case: &Case) {
    let (cf, eta, sim) = run(case, 64, 20_000, 1);
    // The slowest nonzero direction must have relaxed long before the window starts.
    let slowest = cf.lambda_min_nonzero().unwrap();
    assert!(
        10_000.0 * eta * slowest > 20.0,
        "{}: burn-in too short for the test",
        case.name
    );
    let discrete = cf.stationary_discrete(eta).unwrap();
    let continuous = cf.stationary_continuous().unwrap();
    let z = sim.estimates.excess_loss.z_score(discrete);
    let z_corrected = sim.estimates.corrected_excess_loss.z_score(continuous);
    assert!(
        z.abs() < TOLERANCE_SE,
        "{}: excess loss z = {z:.2} ({:?} vs {discrete})",
        case.name,
        sim.estimates.excess_loss
    );
    assert!(
        z_corrected.abs() < TOLERANCE_SE,
        "{}: corrected z = {z_corrected:.2} ({:?} vs {continuous})",
        case.name,
        sim.estimates.corrected_excess_loss
    );
}

fn singular_spectrum(rng: &mut Random, n: usize, rank: usize) -> Vec<f64> {
    let mut eigenvalues: Vec<f64> = (0..rank).map(|_| 0.5 + rng.normal().abs()).collect();
    eigenvalues.resize(n, 0.0);
    eigenvalues
}

fn singular_dense(rng: &mut Random, n: usize, rank: usize) -> faer::Mat<f64> {
    let spectrum = singular_spectrum(rng, n, rank);
    rng.with_spectrum(&spectrum)
}

#[test]
fn identity_precond_isotropic_noise_singular_diagonal_hessian() {
    let mut rng = Random::new(21);
    check_against_theory(&Case {
        name: "identity/isotropic",
        hessian: SymMatrix::Diagonal(singular_spectrum(&mut rng, 24, 15)),
        precond: SymMatrix::identity(24),
        noise_cov: SymMatrix::Scaled {
            dim: 24,
            scale: 0.02,
        },
        stability_fraction: 0.3,
    });
}

#[test]
fn diagonal_precond_matched_noise_singular_dense_hessian() {
    let mut rng = Random::new(22);
    let g: Vec<f64> = (0..16).map(|i| 0.5 + 0.1 * i as f64).collect();
    check_against_theory(&Case {
        name: "diagonal/matched",
        hessian: SymMatrix::Dense(singular_dense(&mut rng, 16, 10)),
        noise_cov: SymMatrix::Diagonal(g.iter().map(|g| 0.05 / g).collect()),
        precond: SymMatrix::Diagonal(g),
        stability_fraction: 0.5,
    });
}

#[test]
fn dense_precond_rotated_noise_singular_dense_hessian() {
    let mut rng = Random::new(23);
    let noise_spectrum: Vec<f64> = (0..12).map(|i| 0.01 * (1.0 + i as f64)).collect();
    check_against_theory(&Case {
        name: "dense/rotated",
        hessian: SymMatrix::Dense(singular_dense(&mut rng, 12, 7)),
        precond: SymMatrix::Dense(rng.spd(12, 0.05)),
        noise_cov: SymMatrix::Dense(rng.with_spectrum(&noise_spectrum)),
        stability_fraction: 0.4,
    });
}

#[test]
fn low_rank_noise_through_the_eigen_factor() {
    let mut rng = Random::new(24);
    let v = rng.gaussian(10, 3);
    let mut low_rank = &v * v.transpose() * faer::Scale(0.01);
    symmetrize(&mut low_rank);
    check_against_theory(&Case {
        name: "identity/low-rank",
        hessian: SymMatrix::Dense(rng.spd(10, 0.1)),
        precond: SymMatrix::Diagonal((0..10).map(|i| 1.0 + 0.05 * i as f64).collect()),
        noise_cov: SymMatrix::Dense(low_rank),
        stability_fraction: 0.3,
    });
}

#[test]
fn the_trace_follows_the_discrete_curve_from_an_offset() {
    let h = SymMatrix::Diagonal(vec![1.0, 0.5, 0.25, 0.0]);
    let sigma = SymMatrix::Scaled {
        dim: 4,
        scale: 0.01,
    };
    let cf = ClosedForm::new(
        h.to_dense().as_ref(),
        &SymMatrix::identity(4),
        &sigma,
        DEFAULT_RANK_RTOL,
    )
    .unwrap();
    let objective = Quadratic::new(h);
    let g = SymMatrix::identity(4);
    let sampler = Sampler::new(&objective, &g, &sigma).unwrap();
    let x0 = [2.0, -1.0, 1.5, 3.0];
    let z0 = cf.initial_offset(&x0).unwrap();
    let config = SimConfig {
        thin: 10,
        seed: 3,
        ..SimConfig::new(0.05, 512, 400)
    };
    let sim = sampler.run(&config, Some(&x0)).unwrap();
    assert_eq!(sim.trace.len(), 41);
    for point in &sim.trace {
        let expected = cf.discrete_at(point.step, 0.05, Some(&z0)).unwrap();
        if point.step == 0 {
            assert!((point.mean - expected).abs() < 1e-12 && point.std_error == 0.0);
        } else {
            let z = (point.mean - expected) / point.std_error;
            assert!(
                z.abs() < TOLERANCE_SE,
                "step {}: {} vs {expected} (z = {z:.2})",
                point.step,
                point.mean
            );
        }
    }
}

#[test]
fn r_hat_c_is_unbiased_where_r_hat_is_visibly_biased() {
    // ηλ_i from 0.1 to 1.5 on a rank-8 quadratic, matched isotropic noise (G = I).
    let eta_lambda: Vec<f64> = (0..8).map(|i| 0.1 + 0.2 * i as f64).collect();
    let eta = 0.1;
    let mut h: Vec<f64> = eta_lambda.iter().map(|x| x / eta).collect();
    h.extend([0.0; 4]);
    let sigma2 = 0.01;
    let case = Case {
        name: "bias",
        hessian: SymMatrix::Diagonal(h),
        precond: SymMatrix::identity(12),
        noise_cov: SymMatrix::Scaled {
            dim: 12,
            scale: sigma2,
        },
        stability_fraction: 1.5 / 2.0,
    };
    let (cf, eta_used, sim) = run(&case, 64, 20_000, 5);
    assert!((eta_used - eta).abs() < 1e-15);
    let r_hat = sim.estimates.rank(sigma2);
    let r_hat_c = sim.estimates.rank_corrected(sigma2);
    let biased_mean: f64 = eta_lambda.iter().map(|x| 1.0 / (1.0 - x / 2.0)).sum();
    assert_eq!(cf.rank(), 8);
    assert!(
        r_hat_c.z_score(8.0).abs() < TOLERANCE_SE,
        "r̂_c = {r_hat_c:?}"
    );
    assert!(
        r_hat.z_score(biased_mean).abs() < TOLERANCE_SE,
        "r̂ = {r_hat:?}, theory {biased_mean}"
    );
    assert!(
        r_hat.z_score(8.0) > 10.0,
        "r̂'s bias of {} must be visible: {r_hat:?}",
        biased_mean - 8.0
    );
}

fn determinism_case() -> (Quadratic, SymMatrix, SymMatrix) {
    let mut rng = Random::new(31);
    let h = singular_dense(&mut rng, 20, 12);
    (
        Quadratic::new(SymMatrix::Dense(h)),
        SymMatrix::Dense(rng.spd(20, 0.02)),
        SymMatrix::Dense(rng.spd(20, 0.01)),
    )
}

#[test]
fn the_same_seed_gives_identical_results_on_one_and_two_threads() {
    let (objective, g, sigma) = determinism_case();
    let sampler = Sampler::new(&objective, &g, &sigma).unwrap();
    // 150 chains make three blocks, so two threads really split the work.
    let config = SimConfig {
        seed: 9,
        ..SimConfig::new(0.05, 150, 600)
    };
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| sampler.run(&config, None).unwrap())
    };
    let one = on(1);
    assert_eq!(one, on(2));
    let other_seed = sampler
        .run(
            &SimConfig {
                seed: 10,
                ..config.clone()
            },
            None,
        )
        .unwrap();
    assert_ne!(one.estimates, other_seed.estimates);
}

#[test]
fn an_unstable_step_is_reported_as_divergence_with_its_step() {
    let objective = Quadratic::new(SymMatrix::Diagonal(vec![1.0, 4.0]));
    let g = SymMatrix::identity(2);
    let sigma = SymMatrix::Scaled {
        dim: 2,
        scale: 1e-3,
    };
    let sampler = Sampler::new(&objective, &g, &sigma).unwrap();
    // ηλ_max = 2.2: the fast direction grows by 1.2 per step.
    let err = sampler
        .run(&SimConfig::new(0.55, 8, 100_000), None)
        .unwrap_err();
    let SimError::Diverged {
        step, excess_loss, ..
    } = err
    else {
        panic!("expected divergence, got {err}")
    };
    assert!(step > 10 && step < 1_000, "diverged at step {step}");
    assert!(excess_loss > 1e30);
    assert!(err.to_string().contains(&format!("at step {step}")));
}

/// Returns NaN or an error from its `fail_at`-th call on.
struct Faulty {
    calls: AtomicUsize,
    fail_at: usize,
    nan: bool,
    theta_star: Vec<f64>,
}

impl Objective for Faulty {
    fn dim(&self) -> usize {
        2
    }
    fn theta_star(&self) -> &[f64] {
        &self.theta_star
    }
    fn f_star(&self) -> f64 {
        0.0
    }
    fn value_and_gradient(
        &self,
        _: &[f64],
        value: &mut [f64],
        grad: &mut [f64],
    ) -> Result<(), ObjectiveError> {
        grad.fill(0.0);
        value.fill(0.0);
        if self.calls.fetch_add(1, Ordering::Relaxed) < self.fail_at {
            Ok(())
        } else if self.nan {
            value[1] = f64::NAN;
            Ok(())
        } else {
            Err(ObjectiveError("out of domain".into()))
        }
    }
}

#[test]
fn nan_and_objective_errors_stop_the_run_with_the_step() {
    for nan in [true, false] {
        let objective = Faulty {
            calls: AtomicUsize::new(0),
            fail_at: 7,
            nan,
            theta_star: vec![0.0; 2],
        };
        let g = SymMatrix::identity(2);
        let sampler = Sampler::new(&objective, &g, &SymMatrix::identity(2)).unwrap();
        let err = sampler.run(&SimConfig::new(0.1, 2, 100), None).unwrap_err();
        match err {
            SimError::NonFinite {
                step: 7, chain: 1, ..
            } if nan => {}
            SimError::Objective {
                step: 7,
                ref source,
            } if !nan => assert_eq!(source.0, "out of domain"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn impossible_settings_are_refused_before_any_step() {
    let objective = Quadratic::new(SymMatrix::identity(3));
    let g = SymMatrix::identity(3);
    let sampler = Sampler::new(&objective, &g, &SymMatrix::identity(3)).unwrap();
    for (config, says) in [
        (
            SimConfig {
                burn_in: 95,
                ..SimConfig::new(0.1, 4, 100)
            },
            "must hold at least batches = 20",
        ),
        (SimConfig::new(0.0, 4, 100), "eta = 0 must be a positive"),
        (SimConfig::new(0.1, 0, 100), "chains must be at least 1"),
    ] {
        let err = sampler.run(&config, None).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert!(matches!(
        sampler.run(&SimConfig::new(0.1, 4, 100), Some(&[0.0])),
        Err(SimError::Dimension { .. })
    ));
    let wrong = SymMatrix::identity(2);
    assert!(matches!(
        Sampler::new(&objective, &wrong, &wrong),
        Err(SimError::Dimension { .. })
    ));
}
