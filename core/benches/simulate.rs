//! Criterion benchmarks of the simulator's step and of the closed form, each beside the physical
//! limit it is judged against (normal sampling, faer's GEMM, faer's eigendecomposition), measured
//! in the same run on one core. How to read them: README.md, "Benchmarks".

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use ldbench::linalg::{SymMatrix, random_orthogonal, with_spectrum};
use ldbench::sim::{Quadratic, Sampler, SimConfig, fill_standard_normal, stream};
use ldbench::theory::{ClosedForm, DEFAULT_RANK_RTOL};
use rand_distr::{Distribution, StandardNormal};
use std::hint::black_box;

/// Runs `f` on a one-thread rayon pool with faer sequential: the targets are per core.
fn one_core<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread_local! {
        static POOL: rayon::ThreadPool =
            rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a rayon pool");
    }
    faer::set_global_parallelism(Par::Seq);
    POOL.with(|pool| pool.install(f))
}

fn config(eta: f64, chains: usize, steps: u64) -> SimConfig {
    SimConfig {
        burn_in: steps / 2,
        batches: 2,
        thin: steps,
        ..SimConfig::new(eta, chains, steps)
    }
}

/// A symmetric matrix with eigenvalues in [0.5, 1.5] in a random basis (seeded).
fn dense_spd(n: usize, seed: u64) -> Mat<f64> {
    let q = random_orthogonal(n, &mut stream::chain_rng(seed, 0, 0));
    with_spectrum(
        &q,
        &(0..n)
            .map(|i| 0.5 + i as f64 / n as f64)
            .collect::<Vec<_>>(),
    )
}

/// Diagonal quadratic, n·m = 1e5 coordinates: target ≤ 3 ns per coordinate per step; the floor is
/// drawing one standard normal per coordinate, measured here too (ours, and rand_distr's
/// `StandardNormal` for comparison).
fn diagonal_step(c: &mut Criterion) {
    let (n, m, steps) = (1000, 100, 100);
    let coordinates = (n * m) as u64 * steps;
    let objective = Quadratic::new(SymMatrix::Diagonal(
        (0..n).map(|i| 0.5 + i as f64 / n as f64).collect(),
    ));
    let g = SymMatrix::identity(n);
    let sigma = SymMatrix::Scaled {
        dim: n,
        scale: 1e-3,
    };
    let sampler = Sampler::new(&objective, &g, &sigma).expect("valid case");
    let config = config(0.1, m, steps);

    let mut group = c.benchmark_group("diagonal_step");
    group.throughput(Throughput::Elements(coordinates));
    group.bench_function("n1000_m100_identity", |b| {
        b.iter(|| one_core(|| sampler.run(black_box(&config), None).expect("stable")))
    });
    let adam = SymMatrix::Diagonal((0..n).map(|i| 1.0 + (i % 7) as f64).collect());
    let diag_sigma = SymMatrix::Diagonal((0..n).map(|i| 1e-3 * (1.0 + (i % 3) as f64)).collect());
    let sampler = Sampler::new(&objective, &adam, &diag_sigma).expect("valid case");
    let config = SimConfig {
        eta: 0.05,
        ..config.clone()
    };
    group.bench_function("n1000_m100_diagonal", |b| {
        b.iter(|| one_core(|| sampler.run(black_box(&config), None).expect("stable")))
    });
    let mut rng = stream::chain_rng(0, 0, 0);
    let mut buffer = vec![0.0; n * m];
    group.throughput(Throughput::Elements((n * m) as u64));
    group.bench_function("normal_sampling_floor", |b| {
        b.iter(|| fill_standard_normal(black_box(&mut buffer), &mut rng))
    });
    group.bench_function("normal_sampling_rand_distr", |b| {
        b.iter(|| {
            for z in buffer.iter_mut() {
                *z = StandardNormal.sample(&mut rng);
            }
            black_box(&buffer);
        })
    });
    group.finish();
}

/// Dense quadratic, n = 1024, m = 64: the step's products against faer's own GEMM of the same
/// shape. Throughput is in floating-point operations (2n²m per product), so both rows read as
/// FLOP/s; target ≥ 75% of the GEMM's.
fn dense_step(c: &mut Criterion) {
    let (n, m, steps) = (1024, 64, 20_u64);
    let gemm_flops = 2 * (n * n * m) as u64;
    let h = dense_spd(n, 1);
    let objective = Quadratic::new(SymMatrix::Dense(h.clone()));
    let mut group = c.benchmark_group("dense_step");
    group.sample_size(10);

    // G = I, Σ = σ²I: one product per evaluation (H θ), steps + 1 evaluations.
    let g = SymMatrix::identity(n);
    let sigma = SymMatrix::Scaled {
        dim: n,
        scale: 1e-3,
    };
    let sampler = Sampler::new(&objective, &g, &sigma).expect("valid case");
    let config = config(0.5, m, steps);
    group.throughput(Throughput::Elements(gemm_flops * (steps + 1)));
    group.bench_function("n1024_m64_identity", |b| {
        b.iter(|| one_core(|| sampler.run(black_box(&config), None).expect("stable")))
    });

    // Dense G and Σ: H θ and G ∇f per evaluation, F ξ per step.
    let g = SymMatrix::Dense(dense_spd(n, 2));
    let sigma = SymMatrix::Dense(dense_spd(n, 3));
    let sampler = Sampler::new(&objective, &g, &sigma).expect("valid case");
    group.throughput(Throughput::Elements(gemm_flops * (3 * steps + 2)));
    group.bench_function("n1024_m64_dense_g_dense_noise", |b| {
        b.iter(|| one_core(|| sampler.run(black_box(&config), None).expect("stable")))
    });

    let theta = Mat::from_fn(n, m, |i, j| ((i * 31 + j * 17) % 13) as f64 - 6.0);
    let mut out = Mat::<f64>::zeros(n, m);
    group.throughput(Throughput::Elements(gemm_flops));
    group.bench_function("faer_gemm_n1024_m64", |b| {
        b.iter(|| {
            matmul(
                out.as_mut(),
                Accum::Replace,
                &h,
                black_box(&theta),
                1.0,
                Par::Seq,
            )
        })
    });
    group.finish();
}

/// The closed form against one symmetric eigendecomposition of the same size.
fn closed_form(c: &mut Criterion) {
    faer::set_global_parallelism(Par::Seq);
    let mut group = c.benchmark_group("closed_form");
    group.sample_size(10);
    for n in [256, 512, 1024, 2048] {
        let h = dense_spd(n, 4);
        let isotropic = SymMatrix::Scaled {
            dim: n,
            scale: 1e-3,
        };
        group.bench_with_input(BenchmarkId::new("identity_isotropic", n), &n, |b, _| {
            b.iter(|| {
                ClosedForm::new(
                    h.as_ref(),
                    &SymMatrix::identity(n),
                    &isotropic,
                    DEFAULT_RANK_RTOL,
                )
            })
        });
        let g = SymMatrix::Dense(dense_spd(n, 5));
        let sigma = SymMatrix::Dense(dense_spd(n, 6));
        group.bench_with_input(BenchmarkId::new("dense_g_dense_noise", n), &n, |b, _| {
            b.iter(|| ClosedForm::new(h.as_ref(), &g, &sigma, DEFAULT_RANK_RTOL))
        });
        group.bench_with_input(
            BenchmarkId::new("faer_eigendecomposition", n),
            &n,
            |b, _| b.iter(|| h.self_adjoint_eigen(Side::Lower)),
        );
        group.bench_with_input(BenchmarkId::new("faer_gemm_square", n), &n, |b, _| {
            let mut out = Mat::<f64>::zeros(n, n);
            b.iter(|| {
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    &h,
                    black_box(&h),
                    1.0,
                    Par::Seq,
                )
            })
        });
    }
    group.finish();
}

fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .noise_threshold(0.05)
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = diagonal_step, dense_step, closed_form
}
criterion_main!(benches);
