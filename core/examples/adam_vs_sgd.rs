//! SGD-like against Adam-like preconditioning near a minimum, by closed form and by simulation
//! (THEORY.md §6), on four gradient-noise structures. This is the end-to-end job that
//! `cargo xtask bench suites/adam_vs_sgd.toml` runs until the suite runner exists, and a worked
//! example of the library: build (H, G, Σ), evaluate the theory, simulate, compare.
//!
//! Run: `cargo run --release -p ldbench-core --example adam_vs_sgd -- [OUT_DIR]`
//! (default `reports/adam_vs_sgd`). Writes `summary.md` and `results.json` there.

use std::path::PathBuf;

use anyhow::Context;
use ldbench::linalg::{SymMatrix, random_orthogonal, with_spectrum};
use ldbench::sim::{Quadratic, Sampler, SimConfig, stream};
use ldbench::theory::{ClosedForm, DEFAULT_RANK_RTOL};
use serde::Serialize;

const DIM: usize = 200;
const CHAINS: usize = 64;
const STEPS: u64 = 20_000;
const SEED: u64 = 2024;
/// Adam's ε in G = (diag(C) + ε)^{-1/2}.
const ADAM_EPSILON: f64 = 1e-8;

/// One gradient-noise structure C (the covariance of a stochastic gradient at θ*).
struct NoiseStructure {
    name: &'static str,
    what: &'static str,
    gradient_noise: SymMatrix,
}

#[derive(Serialize)]
struct Row {
    noise: &'static str,
    precond: &'static str,
    eta: f64,
    theory_continuous: f64,
    theory_discrete: f64,
    simulated: f64,
    std_error: f64,
    z_score: f64,
}

fn log_uniform(i: usize, count: usize, low: f64, high: f64) -> f64 {
    low * (high / low).powf(i as f64 / (count - 1) as f64)
}

fn structures() -> Vec<NoiseStructure> {
    let spectrum: Vec<f64> = (0..DIM).map(|i| log_uniform(i, DIM, 0.01, 100.0)).collect();
    // A random orthogonal basis, seeded: the same spectrum, rotated away from the axes.
    let q = random_orthogonal(DIM, &mut stream::chain_rng(SEED, u64::MAX, 0));
    let rotated = with_spectrum(&q, &spectrum);
    vec![
        NoiseStructure {
            name: "isotropic, large",
            what: "C = 4·I",
            gradient_noise: SymMatrix::Scaled {
                dim: DIM,
                scale: 4.0,
            },
        },
        NoiseStructure {
            name: "isotropic, small",
            what: "C = 0.25·I",
            gradient_noise: SymMatrix::Scaled {
                dim: DIM,
                scale: 0.25,
            },
        },
        NoiseStructure {
            name: "diagonal, anisotropic",
            what: "C = diag(c), c log-uniform in [0.01, 100]",
            gradient_noise: SymMatrix::Diagonal(spectrum),
        },
        NoiseStructure {
            name: "rotated",
            what: "C = Q diag(c) Qᵀ, Q random orthogonal",
            gradient_noise: SymMatrix::Dense(rotated),
        },
    ]
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "reports/adam_vs_sgd".into()),
    );
    // H: full rank, eigenvalues log-uniform in [0.1, 10], on the axes.
    let hessian: Vec<f64> = (0..DIM).map(|i| log_uniform(i, DIM, 0.1, 10.0)).collect();
    let objective = Quadratic::new(SymMatrix::Diagonal(hessian.clone()));
    let h_dense = SymMatrix::Diagonal(hessian).to_dense();

    let mut rows = Vec::new();
    for (case, structure) in structures().iter().enumerate() {
        let c = &structure.gradient_noise;
        let c_diag: Vec<f64> = (0..DIM).map(|i| c.to_dense()[(i, i)]).collect();
        let candidates = [
            ("SGD-like", SymMatrix::identity(DIM)),
            (
                "Adam-like",
                SymMatrix::Diagonal(
                    c_diag
                        .iter()
                        .map(|c| 1.0 / (c + ADAM_EPSILON).sqrt())
                        .collect(),
                ),
            ),
        ];
        // One η for both, a quarter of the smaller stability limit, so they are compared at the
        // same step size; Σ = η·C (SGD's gradient noise in the SDE's units, THEORY §2).
        let lambda_max = candidates
            .iter()
            .map(|(_, g)| {
                ClosedForm::new(
                    h_dense.as_ref(),
                    g,
                    &SymMatrix::identity(DIM),
                    DEFAULT_RANK_RTOL,
                )
                .map(|cf| cf.lambda_max())
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .fold(0.0, f64::max);
        let eta = 0.5 / lambda_max;
        let sigma = match c {
            SymMatrix::Scaled { dim, scale } => SymMatrix::Scaled {
                dim: *dim,
                scale: eta * scale,
            },
            SymMatrix::Diagonal(d) => SymMatrix::Diagonal(d.iter().map(|v| eta * v).collect()),
            SymMatrix::Dense(m) => SymMatrix::Dense(m * faer::Scale(eta)),
        };
        for (name, g) in &candidates {
            let cf = ClosedForm::new(h_dense.as_ref(), g, &sigma, DEFAULT_RANK_RTOL)?;
            let sampler = Sampler::new(&objective, g, &sigma)?;
            let config = SimConfig {
                seed: SEED,
                case: case as u64,
                ..SimConfig::new(eta, CHAINS, STEPS)
            };
            let sim = sampler
                .run(&config, None)
                .with_context(|| format!("{name}, {}", structure.name))?;
            let discrete = cf.stationary_discrete(eta)?;
            let estimate = sim.estimates.excess_loss;
            rows.push(Row {
                noise: structure.name,
                precond: name,
                eta,
                theory_continuous: cf.stationary_continuous()?,
                theory_discrete: discrete,
                simulated: estimate.mean,
                std_error: estimate.std_error,
                z_score: estimate.z_score(discrete),
            });
            eprintln!("{:<22} {:<9} done", structure.name, name);
        }
    }

    let mut md = format!(
        "# SGD-like vs Adam-like preconditioning: stationary excess loss\n\n\
         Quadratic, n = {DIM}, H = diag(log-uniform in [0.1, 10]); gradient-noise covariance C as \
         listed, Σ = η·C; SGD-like G = I, Adam-like G = (diag C + {ADAM_EPSILON:e})^(-1/2). \
         {CHAINS} chains × {STEPS} steps (half burn-in), seed {SEED}. Theory: THEORY.md §3–4; \
         simulation: window mean ± standard error (batch means); z = (simulated − discrete theory) / SE.\n\n\
         | noise | C | preconditioner | η | theory (continuous) | theory (discrete) | simulated | ± SE | z |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    for (row, structure) in rows
        .iter()
        .zip(structures().iter().flat_map(|s| [s.what, s.what]))
    {
        md += &format!(
            "| {} | {} | {} | {:.3e} | {:.5e} | {:.5e} | {:.5e} | {:.1e} | {:+.2} |\n",
            row.noise,
            structure,
            row.precond,
            row.eta,
            row.theory_continuous,
            row.theory_discrete,
            row.simulated,
            row.std_error,
            row.z_score
        );
    }
    md += "\n## Lower stationary loss\n\n";
    for pair in rows.chunks(2) {
        let (winner, loser) = if pair[0].theory_discrete < pair[1].theory_discrete {
            (&pair[0], &pair[1])
        } else {
            (&pair[1], &pair[0])
        };
        let confirmed = (loser.simulated - winner.simulated)
            > 3.0 * (loser.std_error.powi(2) + winner.std_error.powi(2)).sqrt();
        md += &format!(
            "- {}: **{}** ({:.3}× lower in theory; simulation {})\n",
            winner.noise,
            winner.precond,
            loser.theory_discrete / winner.theory_discrete,
            if confirmed {
                "agrees, beyond 3 standard errors"
            } else {
                "cannot separate them within 3 standard errors"
            }
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("summary.md"), &md)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    println!("{md}");
    println!("Report written to {}", out.join("summary.md").display());
    Ok(())
}
