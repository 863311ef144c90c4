//! The rank estimators that do not simulate: exact (eigendecomposition) and KPM (Hessian-vector
//! products), on Hessians of known rank.

use faer::Mat;
use ldbench::linalg::{random_orthogonal, with_spectrum};
use ldbench::rank::{KpmSettings, exact_rank, kpm_rank};
use ldbench::theory::DEFAULT_RANK_RTOL;
use rand::SeedableRng;

/// n = 400, rank 150, nonzero eigenvalues evenly spread over [1, 10], in a random basis: a clear
/// gap between the null space and the rest.
fn gapped_hessian() -> Mat<f64> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let spectrum: Vec<f64> = (0..400)
        .map(|i| {
            if i < 150 {
                1.0 + 9.0 * i as f64 / 149.0
            } else {
                0.0
            }
        })
        .collect();
    with_spectrum(&random_orthogonal(400, &mut rng), &spectrum)
}

fn products(h: &Mat<f64>) -> impl FnMut(&[f64]) -> Result<Vec<f64>, String> + '_ {
    move |v: &[f64]| {
        let n = h.nrows();
        let block = faer::MatRef::from_column_major_slice(v, n, v.len() / n);
        let out = h * block;
        Ok((0..out.ncols())
            .flat_map(|j| (0..n).map(move |i| (i, j)))
            .map(|(i, j)| out[(i, j)])
            .collect())
    }
}

#[test]
fn exact_rank_counts_the_nonzero_eigenvalues() {
    let h = gapped_hessian();
    let (rank, seconds) = exact_rank(h.as_ref(), DEFAULT_RANK_RTOL).unwrap();
    assert_eq!(rank, 150);
    assert!(seconds >= 0.0);
}

#[test]
fn kpm_finds_the_gap_and_the_rank_within_its_standard_error() {
    let h = gapped_hessian();
    let settings = KpmSettings::default();
    let kpm = kpm_rank(400, &mut products(&h), settings, 3).unwrap();
    // The threshold falls in the gap (0, 1) of the spectrum, and λ_max (10) is bracketed.
    assert!(
        kpm.threshold > 0.0 && kpm.threshold < 1.0,
        "{}",
        kpm.threshold
    );
    assert!(kpm.lambda_max >= 10.0 && kpm.lambda_max < 10.3);
    // Hutchinson's probe average is unbiased for the damped step's trace, and the step sits
    // in a gap far wider than the Jackson kernel (π/50 in θ), so the damping bias is ≪ 1: the
    // estimate lies within 4 standard errors of the rank (4 leaves ~1e-4 chance to a correct
    // implementation).
    let z = (kpm.rank.mean - 150.0) / kpm.rank.std_error;
    assert!(z.abs() < 4.0, "{:?} (z = {z})", kpm.rank);
    assert!(kpm.rank.std_error < 2.0, "{:?}", kpm.rank);
    assert_eq!(
        kpm.hessian_vector_products,
        (settings.lanczos_steps + settings.degree * settings.probes) as u64
    );
}

#[test]
fn kpm_refuses_settings_it_cannot_use() {
    let h = gapped_hessian();
    let settings = KpmSettings {
        degree: 1,
        ..KpmSettings::default()
    };
    let err = kpm_rank(400, &mut products(&h), settings, 3).unwrap_err();
    assert!(err.contains("degree"), "{err}");
}
