//! `ldbench plugins` (list what is installed) and `ldbench inspect` (one plugin, as JSON).

use std::path::PathBuf;

use faer::{Mat, Side};
use serde::Serialize;

use crate::linalg::SymMatrix;
use crate::plugin::{Kind, PluginDir, PluginInfo, PluginObjective, PluginPrecond};
use crate::sim::Objective;
use crate::theory::DEFAULT_RANK_RTOL;

/// Where plugins are looked up: shared by every command that loads one.
#[derive(Debug, clap::Args)]
pub struct PluginDirArg {
    /// Directory of plugin libraries [default: $LDBENCH_PLUGIN_DIR, else the directory of the
    /// ldbench executable, i.e. target/release after `cargo build --release --workspace`].
    #[arg(long, value_name = "DIR", global = true)]
    pub plugin_dir: Option<PathBuf>,
}

impl PluginDirArg {
    /// The directory to use.
    pub fn resolve(&self) -> PluginDir {
        PluginDir::resolve(self.plugin_dir.as_deref())
    }
}

/// List the installed plugins: name, kind, version, capabilities, file.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    dir: PluginDirArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) fn list(args: &ListArgs) -> anyhow::Result<()> {
    let dir = args.dir.resolve();
    let (plugins, broken): (Vec<_>, Vec<_>) = dir.list().into_iter().partition(Result::is_ok);
    let plugins: Vec<PluginInfo> = plugins.into_iter().filter_map(Result::ok).collect();
    if args.json {
        return super::print_json(&plugins);
    }
    println!("plugins in {}", dir.path().display());
    println!(
        "{:<28} {:<15} {:<9} {:<40} file",
        "name", "kind", "version", "capabilities"
    );
    for p in &plugins {
        let file = p
            .file
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        println!(
            "{:<28} {:<15} {:<9} {:<40} {file}",
            p.name,
            p.kind.to_string(),
            p.version,
            p.capability_names().join(",")
        );
    }
    for e in broken.into_iter().filter_map(Result::err) {
        eprintln!("skipped: {e}");
    }
    Ok(())
}

/// Load one plugin and describe it as JSON: for an objective its dimension, f* and Hessian
/// spectrum; for a preconditioner (built on --objective) G's structure and condition number.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ldbench inspect objective-quadratic --params 'dim = 50\nrank = 20'\n  ldbench inspect precond-adam --objective objective-quadratic --objective-params 'dim = 50'"
)]
pub struct InspectArgs {
    /// Plugin name, e.g. objective-quadratic or precond-adam.
    name: String,
    /// The plugin's parameters, as TOML (`key = value` lines). A string value "@FILE" is replaced
    /// by the matrix or vector in FILE (.npy or CSV).
    #[arg(long, default_value = "")]
    params: String,
    /// Seed passed to the plugin(s).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// For a preconditioner: the objective whose Hessian and gradient noise it is built from.
    #[arg(long, default_value = "objective-quadratic")]
    objective: String,
    /// For a preconditioner: the objective's parameters (TOML).
    #[arg(long, default_value = "")]
    objective_params: String,
    #[command(flatten)]
    dir: PluginDirArg,
}

#[derive(Debug, Serialize)]
struct Inspection {
    #[serde(flatten)]
    info: PluginInfo,
    capability_names: Vec<&'static str>,
    dim: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    objective: Option<ObjectiveReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preconditioner: Option<PrecondReport>,
}

#[derive(Debug, Serialize)]
struct ObjectiveReport {
    f_star: f64,
    /// What the plugin says rank(H) is.
    true_rank: Option<usize>,
    /// The Hessian's spectrum at θ*, when it offers a dense Hessian.
    hessian: Option<Spectrum>,
}

#[derive(Debug, Serialize)]
struct Spectrum {
    /// Eigenvalues with |λ| ≤ rank_rtol · max|λ| count as zero.
    rank: usize,
    rank_rtol: f64,
    smallest_nonzero: Option<f64>,
    largest: f64,
    trace: f64,
}

#[derive(Debug, Serialize)]
struct PrecondReport {
    /// "scaled-identity", "diagonal" or "dense".
    structure: &'static str,
    /// λ_max(G) / λ_min(G).
    condition_number: f64,
    smallest_eigenvalue: f64,
    largest_eigenvalue: f64,
    /// The objective G was built on, and where C came from.
    built_on: String,
    gradient_noise: &'static str,
}

fn spectrum(m: &Mat<f64>) -> anyhow::Result<Vec<f64>> {
    m.self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| anyhow::anyhow!("the eigendecomposition did not converge"))
}

pub(super) fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let dir = args.dir.resolve();
    let plugin = dir.load(&args.name)?;
    let params = crate::plugin::expand_file_params(&args.params)?;
    let info = plugin.info().clone();
    let capability_names = info.capability_names();
    let report = match info.kind {
        Kind::Objective => {
            let objective = PluginObjective::new(&plugin, &params, args.seed)?;
            let hessian = match objective.hessian()? {
                Some(h) => {
                    let eig = spectrum(&h)?;
                    let largest_abs = eig.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
                    let nonzero: Vec<f64> = eig
                        .iter()
                        .copied()
                        .filter(|v| v.abs() > DEFAULT_RANK_RTOL * largest_abs)
                        .collect();
                    Some(Spectrum {
                        rank: nonzero.len(),
                        rank_rtol: DEFAULT_RANK_RTOL,
                        smallest_nonzero: nonzero
                            .iter()
                            .copied()
                            .min_by(|a, b| a.abs().total_cmp(&b.abs())),
                        largest: eig.last().copied().unwrap_or(0.0),
                        trace: eig.iter().sum(),
                    })
                }
                None => None,
            };
            Inspection {
                dim: objective.dim(),
                objective: Some(ObjectiveReport {
                    f_star: objective.f_star(),
                    true_rank: objective.true_rank(),
                    hessian,
                }),
                preconditioner: None,
                info,
                capability_names,
            }
        }
        Kind::Preconditioner => {
            let objective_plugin = dir.load(&args.objective)?;
            let objective_params = crate::plugin::expand_file_params(&args.objective_params)?;
            let objective = PluginObjective::new(&objective_plugin, &objective_params, args.seed)?;
            let hessian = objective.hessian()?;
            let (noise, source) = match objective.gradient_noise()? {
                Some(c) => (c, "the objective's own gradient-noise model"),
                None => (
                    Mat::<f64>::identity(objective.dim(), objective.dim()),
                    "isotropic (C = I): the objective has no noise model",
                ),
            };
            let precond =
                PluginPrecond::new(&plugin, &params, args.seed, hessian.as_ref(), &noise)?;
            let g = precond.matrix()?;
            let eig = match &g {
                SymMatrix::Dense(m) => spectrum(m)?,
                diagonal => {
                    let mut d = diagonal.diagonal().unwrap_or_default();
                    d.sort_by(f64::total_cmp);
                    d
                }
            };
            let (smallest, largest) = (
                eig.first().copied().unwrap_or(0.0),
                eig.last().copied().unwrap_or(0.0),
            );
            Inspection {
                dim: g.dim(),
                objective: None,
                preconditioner: Some(PrecondReport {
                    structure: match g {
                        SymMatrix::Scaled { .. } => "scaled-identity",
                        SymMatrix::Diagonal(_) => "diagonal",
                        SymMatrix::Dense(_) => "dense",
                    },
                    condition_number: largest / smallest,
                    smallest_eigenvalue: smallest,
                    largest_eigenvalue: largest,
                    built_on: format!(
                        "{} {}",
                        args.objective,
                        args.objective_params.replace('\n', "; ")
                    ),
                    gradient_noise: source,
                }),
                info,
                capability_names,
            }
        }
    };
    super::print_json(&report)
}

/// Run the conformance checks on one plugin (what `cargo xtask plugin-test` runs): handshake,
/// parameter errors, finite and deterministic outputs, gradients against finite differences,
/// Hessian consistency, G symmetric positive definite. Exits with 1 when a check fails.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Plugin name.
    name: String,
    /// The plugin's parameters, as TOML [default: its defaults].
    #[arg(long, default_value = "")]
    params: String,
    /// Print JSON instead of a list.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    dir: PluginDirArg,
}

/// Whether every check passed.
pub(super) fn test(args: &TestArgs) -> anyhow::Result<bool> {
    let params = crate::plugin::expand_file_params(&args.params)?;
    let report = crate::plugin::conformance::check(&args.dir.resolve(), &args.name, &params);
    if args.json {
        super::print_json(&report)?;
    } else {
        println!("conformance of {}", report.plugin);
        for c in &report.checks {
            println!(
                "  {} {:<62} {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        println!("{} passed, {failed} failed", report.checks.len() - failed);
    }
    Ok(report.passed())
}
