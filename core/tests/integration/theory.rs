//! The closed form against independent computations (THEORY.md §7 facts 1–4 and 7).

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};
use ldbench::linalg::SymMatrix;
use ldbench::theory::{ClosedForm, DEFAULT_MATCHED_RTOL, DEFAULT_RANK_RTOL};

use crate::random::{Random, diagonal, symmetrize, trace};

fn closed_form(h: &Mat<f64>, g: &SymMatrix, sigma: &SymMatrix) -> ClosedForm {
    ClosedForm::new(h.as_ref(), g, sigma, DEFAULT_RANK_RTOL).unwrap()
}

fn relative_difference(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Orthonormal basis U_r of range(H) and the nonzero eigenvalues Λ_r, from H's own
/// eigendecomposition (the implementation never decomposes H itself).
fn range_of(h: &Mat<f64>) -> (Mat<f64>, Vec<f64>) {
    let evd = h.self_adjoint_eigen(Side::Lower).unwrap();
    let s = evd.S().column_vector();
    let scale = (0..h.nrows()).fold(0.0_f64, |a, i| a.max(s[i].abs()));
    let keep: Vec<usize> = (0..h.nrows())
        .filter(|&i| s[i].abs() > 1e-9 * scale)
        .collect();
    let u = Mat::from_fn(h.nrows(), keep.len(), |i, j| evd.U()[(i, keep[j])]);
    (u, keep.iter().map(|&i| s[i]).collect())
}

/// Solves Σ_t c_t · (A_t ⊗ B_t) vec(S) = vec(Q) for S, by Kronecker vectorisation.
fn kronecker_solve(terms: &[(f64, MatRef<'_, f64>, MatRef<'_, f64>)], q: &Mat<f64>) -> Mat<f64> {
    let r = q.nrows();
    // vec(B S Aᵀ) = (A ⊗ B) vec(S), column-major vec: index (i, j) ↦ i + r·j.
    let k = Mat::from_fn(r * r, r * r, |row, col| {
        let (i, j, k, l) = (row % r, row / r, col % r, col / r);
        terms
            .iter()
            .map(|(c, a, b)| c * a[(j, l)] * b[(i, k)])
            .sum::<f64>()
    });
    let rhs = Mat::from_fn(r * r, 1, |row, _| q[(row % r, row / r)]);
    let vec_s = k.partial_piv_lu().solve(&rhs);
    Mat::from_fn(r, r, |i, j| vec_s[(i + r * j, 0)])
}

/// Stationary excess loss by a Lyapunov solve on range(H): with y = U_rᵀx the dynamics close,
/// dy = −A y dt + U_rᵀGΣ^{1/2} dW, A = U_rᵀ G U_r Λ_r, Q = U_rᵀ GΣG U_r, loss ½ yᵀΛ_r y.
fn lyapunov_stationary(h: &Mat<f64>, g: &Mat<f64>, sigma: &Mat<f64>, eta: Option<f64>) -> f64 {
    let (u, lambda) = range_of(h);
    let r = lambda.len();
    let a = u.transpose() * g * &u * diagonal(&lambda);
    let q = u.transpose() * g * sigma * g * &u;
    let id = Mat::<f64>::identity(r, r);
    let s = match eta {
        // Continuous: A S + S Aᵀ = Q.
        None => kronecker_solve(
            &[
                (1.0, id.as_ref(), a.as_ref()),
                (1.0, a.as_ref(), id.as_ref()),
            ],
            &q,
        ),
        // Discrete: S = B S Bᵀ + ηQ, B = I − ηA.
        Some(eta) => {
            let b = &id - &a * faer::Scale(eta);
            let q = &q * faer::Scale(eta);
            kronecker_solve(
                &[
                    (1.0, id.as_ref(), id.as_ref()),
                    (-1.0, b.as_ref(), b.as_ref()),
                ],
                &q,
            )
        }
    };
    0.5 * trace(&(diagonal(&lambda) * s))
}

/// A singular H (rank 4 of 7), a dense G and a dense Σ that commute with neither.
fn non_commuting_case(rng: &mut Random) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
    let b = rng.gaussian(7, 4);
    let mut h = &b * b.transpose();
    symmetrize(&mut h);
    (h, rng.spd(7, 0.3), rng.spd(7, 0.5))
}

#[test]
fn stationary_values_match_kronecker_lyapunov_solves_with_singular_h() {
    let mut rng = Random::new(11);
    for _ in 0..3 {
        let (h, g, sigma) = non_commuting_case(&mut rng);
        for (g_sym, g_dense) in [
            (SymMatrix::Dense(g.clone()), g.clone()),
            (
                SymMatrix::Diagonal(vec![0.5, 1.0, 2.0, 0.7, 1.3, 0.9, 1.1]),
                diagonal(&[0.5, 1.0, 2.0, 0.7, 1.3, 0.9, 1.1]),
            ),
        ] {
            let cf = closed_form(&h, &g_sym, &SymMatrix::Dense(sigma.clone()));
            assert_eq!(cf.rank(), 4);
            let continuous = lyapunov_stationary(&h, &g_dense, &sigma, None);
            assert!(relative_difference(cf.stationary_continuous().unwrap(), continuous) < 1e-9);
            for fraction in [0.1, 1.0, 1.9] {
                let eta = fraction / cf.lambda_max();
                let discrete = lyapunov_stationary(&h, &g_dense, &sigma, Some(eta));
                let ours = cf.stationary_discrete(eta).unwrap();
                assert!(
                    relative_difference(ours, discrete) < 1e-8,
                    "ηλmax = {fraction}: {ours} vs {discrete}"
                );
            }
        }
    }
}

#[test]
fn discrete_curve_matches_the_lyapunov_recursion_from_an_offset() {
    // THEORY §7 fact 4: ½ tr(H S_k), S_{k+1} = (I − ηGH) S_k (I − ηGH)ᵀ + ηGΣG, S_0 = x0 x0ᵀ.
    let mut rng = Random::new(4);
    let (h, g, sigma) = non_commuting_case(&mut rng);
    let cf = closed_form(
        &h,
        &SymMatrix::Dense(g.clone()),
        &SymMatrix::Dense(sigma.clone()),
    );
    let eta = 1.2 / cf.lambda_max();
    let x0: Vec<f64> = (0..7).map(|_| rng.normal()).collect();
    let z0 = cf.initial_offset(&x0).unwrap();
    let b = Mat::<f64>::identity(7, 7) - &g * &h * faer::Scale(eta);
    let noise = &g * &sigma * &g * faer::Scale(eta);
    let mut s = Mat::from_fn(7, 7, |i, j| x0[i] * x0[j]);
    for k in 0..=200 {
        if [0, 1, 2, 10, 50, 200].contains(&k) {
            let expected = 0.5 * trace(&(&h * &s));
            let ours = cf.discrete_at(k, eta, Some(&z0)).unwrap();
            assert!(
                relative_difference(ours, expected) < 1e-9,
                "k = {k}: {ours} vs {expected}"
            );
        }
        s = &b * &s * b.transpose() + &noise;
    }
}

#[test]
fn continuous_curve_is_the_small_step_limit_of_the_discrete_one() {
    let mut rng = Random::new(5);
    let (h, g, sigma) = non_commuting_case(&mut rng);
    let cf = closed_form(&h, &SymMatrix::Dense(g), &SymMatrix::Dense(sigma));
    let z0 = cf
        .initial_offset(&[1.0, 0.0, -1.0, 2.0, 0.5, 0.0, 1.0])
        .unwrap();
    let time = 0.7 / cf.lambda_max();
    let eta = time / 1e5;
    let discrete = cf.discrete_at(100_000, eta, Some(&z0)).unwrap();
    // The discrete chain's error is O(η); 1e5 steps leave a relative difference near 1e-5.
    assert!(relative_difference(discrete, cf.continuous_at(time, Some(&z0))) < 1e-4);
}

#[test]
fn fact_1_identity_and_isotropic_noise_give_sigma2_rank_over_4_at_rank_1024() {
    let mut rng = Random::new(1);
    let mut eigenvalues: Vec<f64> = (0..1024)
        .map(|i| 10f64.powf(-3.0 + 5.0 * i as f64 / 1023.0))
        .collect();
    eigenvalues.extend([0.0; 256]);
    let h = rng.with_spectrum(&eigenvalues);
    let cf = closed_form(
        &h,
        &SymMatrix::identity(1280),
        &SymMatrix::Scaled {
            dim: 1280,
            scale: 2e-5,
        },
    );
    assert_eq!(cf.rank(), 1024);
    assert!(relative_difference(cf.stationary_continuous().unwrap(), 0.00512) < 1e-12);
    assert!(relative_difference(cf.matched_sigma2(DEFAULT_MATCHED_RTOL).unwrap(), 2e-5) < 1e-12);
}

#[test]
fn fact_2_matched_noise_reveals_the_rank_whatever_g_and_the_spectrum() {
    let mut rng = Random::new(2);
    let sigma2 = 0.3;
    for rank in [1, 3, 6] {
        let mut eigenvalues: Vec<f64> = (0..rank).map(|_| rng.normal().exp()).collect();
        eigenvalues.resize(8, 0.0);
        let h = rng.with_spectrum(&eigenvalues);
        for g in [
            SymMatrix::Dense(rng.spd(8, 2.0)),
            SymMatrix::Diagonal((1..=8).map(f64::from).collect()),
        ] {
            let matched = g.inverse().unwrap();
            let sigma = match matched {
                SymMatrix::Dense(m) => SymMatrix::Dense(m * faer::Scale(sigma2)),
                SymMatrix::Diagonal(d) => {
                    SymMatrix::Diagonal(d.iter().map(|v| v * sigma2).collect())
                }
                other => other,
            };
            let cf = closed_form(&h, &g, &sigma);
            assert_eq!(cf.rank(), rank);
            let found = cf.matched_sigma2(DEFAULT_MATCHED_RTOL).unwrap();
            assert!(relative_difference(found, sigma2) < 1e-10);
            let expected = sigma2 * rank as f64 / 4.0;
            assert!(relative_difference(cf.stationary_continuous().unwrap(), expected) < 1e-10);
            // Discrete (THEORY §5): (σ²/4) Σ 1/(1 − ηλ_i/2).
            let eta = 1.5 / cf.lambda_max();
            let discrete: f64 = cf
                .directions()
                .iter()
                .filter(|d| d.nonzero)
                .map(|d| 1.0 / (1.0 - 0.5 * eta * d.lambda))
                .sum();
            assert!(
                relative_difference(
                    cf.stationary_discrete(eta).unwrap(),
                    sigma2 / 4.0 * discrete
                ) < 1e-10
            );
        }
    }
}

#[test]
fn fact_3_nonsingular_h_gives_a_quarter_trace_of_g_sigma_and_the_escape_slope_its_formula() {
    let mut rng = Random::new(3);
    let h = rng.spd(9, 1.0);
    let g = rng.spd(9, 0.2);
    let sigma = rng.spd(9, 0.7);
    let cf = closed_form(
        &h,
        &SymMatrix::Dense(g.clone()),
        &SymMatrix::Dense(sigma.clone()),
    );
    assert_eq!(cf.rank(), 9);
    assert!(cf.matched_sigma2(DEFAULT_MATCHED_RTOL).is_none());
    let quarter_trace = 0.25 * trace(&(&g * &sigma));
    assert!(relative_difference(cf.stationary_continuous().unwrap(), quarter_trace) < 1e-12);
    let slope = 0.5 * trace(&(&h * &g * &sigma * &g));
    assert!(relative_difference(cf.escape_slope(), slope) < 1e-12);
}

#[test]
fn adam_like_beats_sgd_like_exactly_when_the_noise_is_large() {
    // THEORY §6: H nonsingular, C diagonal, α = 1, ε = 0: SGD ¼ηΣc_j, Adam ¼ηΣ√c_j.
    let eta = 0.01;
    let h = diagonal(&[1.0, 2.0, 3.0]);
    for (c, adam_wins) in [([2.0, 3.0, 5.0], true), ([0.1, 0.5, 0.9], false)] {
        let sigma = SymMatrix::Diagonal(c.iter().map(|c| eta * c).collect());
        let sgd = closed_form(&h, &SymMatrix::identity(3), &sigma)
            .stationary_continuous()
            .unwrap();
        let adam_g = SymMatrix::Diagonal(c.iter().map(|c| 1.0 / c.sqrt()).collect());
        let adam = closed_form(&h, &adam_g, &sigma)
            .stationary_continuous()
            .unwrap();
        assert!(relative_difference(sgd, 0.25 * eta * c.iter().sum::<f64>()) < 1e-14);
        assert!(
            relative_difference(adam, 0.25 * eta * c.iter().map(|c| c.sqrt()).sum::<f64>()) < 1e-14
        );
        assert_eq!(adam < sgd, adam_wins);
    }
}

/// 2JᵀJ, the Hessian of the deep linear loss ‖W_L⋯W_1 − T‖² − ‖T‖² at a global minimum
/// (Σ_x = I, so the residual term vanishes): J maps vec(dW_l) to vec(dA), with
/// dA = Σ_l (W_L⋯W_{l+1}) dW_l (W_{l−1}⋯W_1), i.e. J_l = (W_{<l})ᵀ ⊗ W_{>l}.
fn deep_linear_hessian(weights: &[Mat<f64>]) -> Mat<f64> {
    let d = weights[0].nrows();
    let depth = weights.len();
    let product = |range: std::ops::Range<usize>| {
        range
            .rev()
            .fold(Mat::<f64>::identity(d, d), |acc, l| acc * &weights[l])
    };
    let jacobian = Mat::from_fn(d * d, depth * d * d, |row, col| {
        let (l, k) = (col / (d * d), col % (d * d));
        let (below, above) = (product(0..l), product(l + 1..depth));
        // (Bᵀ ⊗ A)[(i + d·j), (p + d·q)] = B[q, j]·A[i, p].
        let (i, j, p, q) = (row % d, row / d, k % d, k / d);
        below[(q, j)] * above[(i, p)]
    });
    let mut h = jacobian.transpose() * &jacobian * faer::Scale(2.0);
    symmetrize(&mut h);
    h
}

#[test]
fn fact_7_deep_linear_network_hessian_has_rank_d_squared_and_the_predicted_spectrum() {
    let mut rng = Random::new(7);
    let (d, depth) = (3, 4);
    let r = rng.gaussian(d, d);
    let t = &r * r.transpose() * faer::Scale(1.0 / (d as f64).sqrt())
        + Mat::<f64>::identity(d, d) * faer::Scale(0.1);
    let evd = t.self_adjoint_eigen(Side::Lower).unwrap();
    let mu: Vec<f64> = (0..d).map(|i| evd.S().column_vector()[i]).collect();
    let root = evd.U()
        * diagonal(
            &mu.iter()
                .map(|m| m.powf(1.0 / depth as f64))
                .collect::<Vec<_>>(),
        )
        * evd.U().transpose();
    // A point of the minimum manifold (THEORY §8): W_1 = Q T^{1/L}, W_l = Q T^{1/L} Qᵀ, W_L = T^{1/L} Qᵀ.
    let q = rng.orthogonal(d);
    let mut weights = vec![&q * &root];
    weights.extend((1..depth - 1).map(|_| &q * &root * q.transpose()));
    weights.push(&root * q.transpose());
    let product = weights
        .iter()
        .fold(Mat::<f64>::identity(d, d), |acc, w| w * acc);
    assert!(
        (&product - &t).norm_max() < 1e-12,
        "the weights multiply to T"
    );

    let h = deep_linear_hessian(&weights);
    let n = depth * d * d;
    let cf = closed_form(&h, &SymMatrix::identity(n), &SymMatrix::identity(n));
    assert_eq!(cf.rank(), d * d);
    let mut predicted: Vec<f64> = (0..d)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .map(|(i, j)| {
            let l = depth as f64;
            2.0 * (0..depth)
                .map(|k| {
                    mu[i].powf(2.0 * k as f64 / l) * mu[j].powf(2.0 * (l - 1.0 - k as f64) / l)
                })
                .sum::<f64>()
        })
        .collect();
    predicted.sort_by(f64::total_cmp);
    let found: Vec<f64> = cf
        .directions()
        .iter()
        .filter(|d| d.nonzero)
        .map(|d| d.lambda)
        .collect();
    for (f, p) in found.iter().zip(&predicted) {
        assert!(
            relative_difference(*f, *p) < 1e-10,
            "{found:?} vs {predicted:?}"
        );
    }
}

#[test]
fn the_closed_form_from_eigenvalues_alone_equals_the_full_one_for_scaled_g_and_sigma() {
    use ldbench::linalg::{random_orthogonal, with_spectrum};
    use rand::SeedableRng;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(4);
    // Rank 6 of n = 9, spread spectrum, random basis; G = 0.7 I, Σ = 3e-3 I.
    let spectrum = [0.0, 0.0, 0.0, 0.05, 0.3, 1.0, 2.0, 5.0, 9.0];
    let h = with_spectrum(&random_orthogonal(9, &mut rng), &spectrum);
    let g = SymMatrix::Scaled { dim: 9, scale: 0.7 };
    let sigma = SymMatrix::Scaled {
        dim: 9,
        scale: 3e-3,
    };
    let full = ClosedForm::new(h.as_ref(), &g, &sigma, DEFAULT_RANK_RTOL).unwrap();
    let light = ClosedForm::from_spectrum(&spectrum, &g, &sigma, DEFAULT_RANK_RTOL).unwrap();
    assert_eq!(light.rank(), full.rank());
    assert!(relative_difference(light.lambda_max(), full.lambda_max()) < 1e-12);
    let eta = 0.2;
    for k in [1, 10, 100] {
        assert!(
            relative_difference(
                light.discrete_at(k, eta, None).unwrap(),
                full.discrete_at(k, eta, None).unwrap()
            ) < 1e-10
        );
    }
    assert!(
        relative_difference(
            light.stationary_continuous().unwrap(),
            full.stationary_continuous().unwrap()
        ) < 1e-12
    );
    assert_eq!(light.matched_sigma2(DEFAULT_MATCHED_RTOL), Some(0.7 * 3e-3));
    // Without eigenvectors an initial offset cannot be projected; a dense G is refused.
    assert!(light.initial_offset(&[1.0; 9]).is_err());
    let dense_g = SymMatrix::Diagonal(vec![1.0; 9]);
    let err =
        ClosedForm::from_spectrum(&spectrum, &dense_g, &sigma, DEFAULT_RANK_RTOL).unwrap_err();
    assert!(err.to_string().contains("multiple of I"), "{err}");
}
