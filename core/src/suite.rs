//! Suite files: the TOML schema (documented field by field in `suites/README.md`), parsing with
//! errors that name the file, the line and the field, and the expansion of sweeps into cases.
//!
//! A case is one objective (with its parameters) × one preconditioner (with its parameters) ×
//! one noise structure × one set of run settings. Sweeps are cartesian products; a `zip` table
//! moves its lists together, as one axis of the product.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A parsed suite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// What the suite is for (shown in the report).
    #[serde(default)]
    pub description: String,
    /// Default seed of every case (a `run.seed` sweep overrides it).
    #[serde(default)]
    pub seed: u64,
    /// Run settings shared by every case.
    #[serde(default)]
    pub run: RunSpec,
    /// The noise structure shared by every case.
    #[serde(default)]
    pub noise: NoiseSpec,
    /// Objectives, `[[objective]]`.
    pub objective: Vec<PluginEntry>,
    /// Preconditioners, `[[preconditioner]]`.
    pub preconditioner: Vec<PluginEntry>,
    /// Cartesian product over `run.*` and `noise.*` fields.
    #[serde(default)]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
    /// Lists that move together (one axis of the product) over `run.*` and `noise.*` fields.
    #[serde(default)]
    pub zip: BTreeMap<String, Vec<toml::Value>>,
    /// The Hessian-rank estimators every case reports, with their settings.
    #[serde(default)]
    pub rank: RankSpec,
    /// Criterion settings of the timing phase (`ldbench run --timing`, on in `cargo xtask bench`).
    #[serde(default)]
    pub timing: TimingSpec,
}

/// A Hessian-rank estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// The paper's r̂ = (4/σ²)·mean(f − f*) from the chains.
    Paper,
    /// r̂_c, with the step-size bias removed (THEORY.md §5).
    Corrected,
    /// Ubaru and Saad's Chebyshev/KPM numerical rank on Hessian-vector products.
    Kpm,
    /// The eigendecomposition of the dense Hessian.
    Exact,
}

impl Estimator {
    /// The name used in suite files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Paper => "paper",
            Estimator::Corrected => "corrected",
            Estimator::Kpm => "kpm",
            Estimator::Exact => "exact",
        }
    }
}

/// `[rank]`: which estimators run on every case, and KPM's settings. The Langevin ones (r̂, r̂_c)
/// run where GΣ is a multiple of I and divide by the injected σ² (see `Outcome::rank_sigma2`), so
/// they read the rank exactly when GΣ = σ²I. Not part of the case key: `--resume` keeps results
/// computed with other estimators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankSpec {
    /// The estimators [default: paper and corrected].
    pub estimators: Vec<Estimator>,
    /// KPM's degree, probes and Lanczos steps.
    pub kpm: crate::rank::KpmSettings,
}

impl Default for RankSpec {
    fn default() -> Self {
        RankSpec {
            estimators: vec![Estimator::Paper, Estimator::Corrected],
            kpm: crate::rank::KpmSettings::default(),
        }
    }
}

/// What the timing phase measures, and criterion's settings. The defaults time every part of
/// each (objective, preconditioner) pair in about 2 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingSpec {
    /// The parts timed: "gradient", "apply", "step", "closed-form".
    pub parts: Vec<crate::timing::Part>,
    /// Criterion's warm-up time per benchmark, seconds.
    pub warm_up: f64,
    /// Criterion's measurement time per benchmark, seconds.
    pub measurement: f64,
    /// Criterion's samples per benchmark (at least 10).
    pub samples: usize,
    /// Bootstrap resamples for the confidence intervals.
    pub resamples: usize,
    /// Chains in the timed block [default: the case's, at most one block of 64].
    pub chains: Option<usize>,
}

impl Default for TimingSpec {
    fn default() -> Self {
        TimingSpec {
            parts: crate::timing::Part::ALL.to_vec(),
            warm_up: 0.1,
            measurement: 0.3,
            samples: 20,
            resamples: 10_000,
            chains: None,
        }
    }
}

impl TimingSpec {
    /// Settings criterion would reject (it panics on them), as a message naming the field.
    fn problem(&self) -> Option<String> {
        let seconds = |v: f64| v.is_finite() && v > 0.0;
        if !seconds(self.warm_up) || !seconds(self.measurement) {
            Some(format!(
                "timing.warm_up = {} and timing.measurement = {} must be positive numbers of seconds",
                self.warm_up, self.measurement
            ))
        } else if self.samples < 10 {
            Some(format!(
                "timing.samples = {} must be at least 10 (criterion's minimum)",
                self.samples
            ))
        } else if self.resamples == 0 || self.chains == Some(0) {
            Some("timing.resamples and timing.chains must be at least 1".to_owned())
        } else {
            None
        }
    }
}

/// Run settings of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Chains simulated as one block.
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// Total steps.
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Steps before the averaging window [default: steps/2].
    #[serde(default)]
    pub burn_in: Option<u64>,
    /// The step size; when absent, `eta_fraction` of the stability limit 2/λ_max(GH).
    #[serde(default)]
    pub eta: Option<f64>,
    /// η as a fraction of 2/λ_max(GH), in (0, 1).
    #[serde(default = "default_eta_fraction")]
    pub eta_fraction: f64,
    /// Batches for the batch-means standard errors.
    #[serde(default = "default_batches")]
    pub batches: usize,
    /// Keep every `thin`-th step in the loss trace [default: about 200 points].
    #[serde(default)]
    pub thin: Option<u64>,
    /// The seed of this case [default: the suite's `seed`].
    #[serde(default)]
    pub seed: Option<u64>,
    /// Seconds a case may take before it is recorded as timed out and the suite goes on.
    #[serde(default = "default_time_limit")]
    pub time_limit: f64,
}

fn default_time_limit() -> f64 {
    3600.0
}

fn default_chains() -> usize {
    64
}
fn default_steps() -> u64 {
    10_000
}
fn default_eta_fraction() -> f64 {
    0.25
}
fn default_batches() -> usize {
    20
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            chains: default_chains(),
            steps: default_steps(),
            burn_in: None,
            eta: None,
            eta_fraction: default_eta_fraction(),
            batches: default_batches(),
            thin: None,
            seed: None,
            time_limit: default_time_limit(),
        }
    }
}

/// Noise structures: the shape of the gradient-noise covariance C (the chain's Σ = ηC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Structure {
    /// C = scale · I.
    Isotropic,
    /// Σ = σ² G⁻¹ with σ² = η·scale: the rank-revealing relation GΣ = σ²I.
    Matched,
    /// C = scale · H / λ_max(H): SGD's gradient-noise model.
    HessianAligned,
    /// C = scale · diag(a^{−j/(n−1)}): variances from scale down to scale/a on the axes.
    Diagonal,
    /// The diagonal spectrum in a random basis, which a diagonal preconditioner cannot follow.
    Rotated,
    /// C = scale · U Uᵀ, U random orthonormal n×k.
    LowRank,
    /// C = scale · the objective's own gradient-noise covariance.
    Objective,
}

impl Structure {
    /// The kebab-case name used in suite files.
    pub fn name(self) -> &'static str {
        match self {
            Structure::Isotropic => "isotropic",
            Structure::Matched => "matched",
            Structure::HessianAligned => "hessian-aligned",
            Structure::Diagonal => "diagonal",
            Structure::Rotated => "rotated",
            Structure::LowRank => "low-rank",
            Structure::Objective => "objective",
        }
    }
}

/// The noise of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    /// The structure.
    #[serde(default = "default_structure")]
    pub structure: Structure,
    /// The scale of C (its largest variance).
    #[serde(default = "one")]
    pub scale: f64,
    /// Largest over smallest variance, for `diagonal` and `rotated`.
    #[serde(default = "default_anisotropy")]
    pub anisotropy: f64,
    /// k, for `low-rank` [default: n/2].
    #[serde(default)]
    pub rank: Option<usize>,
}

fn default_structure() -> Structure {
    Structure::Isotropic
}
fn one() -> f64 {
    1.0
}
fn default_anisotropy() -> f64 {
    100.0
}

impl Default for NoiseSpec {
    fn default() -> Self {
        NoiseSpec {
            structure: default_structure(),
            scale: 1.0,
            anisotropy: default_anisotropy(),
            rank: None,
        }
    }
}

/// An `[[objective]]` or `[[preconditioner]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The plugin's name.
    pub plugin: String,
    /// How reports name it [default: the plugin name].
    #[serde(default)]
    pub label: Option<String>,
    /// Fixed parameters.
    #[serde(default)]
    pub params: toml::Table,
    /// Cartesian product over parameters.
    #[serde(default)]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
    /// Parameters that move together.
    #[serde(default)]
    pub zip: BTreeMap<String, Vec<toml::Value>>,
}

/// A plugin with the parameters of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginCase {
    /// The plugin's name.
    pub plugin: String,
    /// Its label in reports.
    pub label: String,
    /// Its parameters.
    pub params: toml::Table,
}

impl PluginCase {
    /// The parameters as a TOML document.
    pub fn params_text(&self) -> String {
        toml::to_string(&self.params).unwrap_or_default()
    }
}

/// One expanded case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Position in the suite's expansion order (also the case input of the chains' streams).
    pub index: usize,
    /// A stable, readable identity: objective, preconditioner, noise and run settings.
    pub key: String,
    /// The objective.
    pub objective: PluginCase,
    /// The preconditioner.
    pub preconditioner: PluginCase,
    /// The noise.
    pub noise: NoiseSpec,
    /// The run settings, with the seed resolved.
    pub run: RunSpec,
    /// The rank estimators (the suite's `[rank]`).
    #[serde(default)]
    pub rank: RankSpec,
}

impl Case {
    /// The (objective, preconditioner) part of the key, each plugin with its parameters: what the
    /// timing phase measures once.
    pub fn pair_key(&self) -> String {
        let params = |p: &PluginCase| serde_json::to_string(&p.params).unwrap_or_default();
        format!(
            "{} {} | {} {}",
            self.objective.plugin,
            params(&self.objective),
            self.preconditioner.plugin,
            params(&self.preconditioner)
        )
    }
}

/// A suite-level error: the file, where, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct SuiteError {
    /// The suite file.
    pub file: PathBuf,
    /// Line and column (1-based), when known.
    pub line: Option<(usize, usize)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A loaded suite: its file, name, text and expanded cases.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file.
    pub file: PathBuf,
    /// The file stem, which names the report folder.
    pub name: String,
    /// The parsed file.
    pub spec: SuiteFile,
    /// Every case, in order.
    pub cases: Vec<Case>,
    source: String,
}

/// The fields a global `sweep` or `zip` may address.
const RUN_FIELDS: [&str; 8] = [
    "chains",
    "steps",
    "burn_in",
    "eta",
    "eta_fraction",
    "batches",
    "thin",
    "seed",
];
const NOISE_FIELDS: [&str; 4] = ["structure", "scale", "anisotropy", "rank"];

impl Suite {
    /// Reads, parses and expands a suite file; every problem names the file and, where it can,
    /// the line.
    pub fn load(file: &Path) -> Result<Suite, SuiteError> {
        let source = std::fs::read_to_string(file).map_err(|e| SuiteError {
            file: file.into(),
            line: None,
            message: format!("cannot read the suite: {e}"),
        })?;
        let spec: SuiteFile = toml::from_str(&source).map_err(|e| SuiteError {
            file: file.into(),
            line: e.span().map(|span| line_of(&source, span.start)),
            message: suggest_unknown_field(e.message()),
        })?;
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("suite")
            .to_owned();
        let mut suite = Suite {
            file: file.into(),
            name,
            spec,
            cases: Vec::new(),
            source,
        };
        if let Some(problem) = suite.spec.timing.problem() {
            return Err(suite.error_at("[timing]", problem));
        }
        suite.cases = suite.expand()?;
        Ok(suite)
    }

    /// An error at the first line mentioning `needle`.
    pub fn error_at(&self, needle: &str, message: impl Into<String>) -> SuiteError {
        let line = self.source.find(needle).map(|at| line_of(&self.source, at));
        SuiteError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    fn expand(&self) -> Result<Vec<Case>, SuiteError> {
        let spec = &self.spec;
        if spec.objective.is_empty() || spec.preconditioner.is_empty() {
            return Err(self.error_at(
                "",
                "a suite needs at least one [[objective]] and one [[preconditioner]] (see suites/README.md)",
            ));
        }
        for key in spec.sweep.keys().chain(spec.zip.keys()) {
            self.check_axis(key)?;
        }
        let globals =
            combinations(&spec.sweep, &spec.zip).map_err(|m| self.error_at(&quoted_key(&m), m))?;
        let entries =
            |entries: &[PluginEntry], what: &str| -> Result<Vec<PluginCase>, SuiteError> {
                let mut out = Vec::new();
                for entry in entries {
                    let combos = combinations(&entry.sweep, &entry.zip).map_err(|m| {
                        self.error_at(
                            &format!("\"{}\"", entry.plugin),
                            format!("{what} {}: {m}", entry.plugin),
                        )
                    })?;
                    for combo in combos {
                        let mut params = entry.params.clone();
                        let mut label = entry.label.clone().unwrap_or_else(|| entry.plugin.clone());
                        for (key, value) in &combo {
                            params.insert(key.clone(), value.clone());
                            label.push_str(&format!(" {key}={}", value_text(value)));
                        }
                        out.push(PluginCase {
                            plugin: entry.plugin.clone(),
                            label,
                            params,
                        });
                    }
                }
                Ok(out)
            };
        let objectives = entries(&spec.objective, "objective")?;
        let preconditioners = entries(&spec.preconditioner, "preconditioner")?;
        let mut cases = Vec::new();
        for objective in &objectives {
            for combo in &globals {
                let (noise, run) = self.apply(combo)?;
                for preconditioner in &preconditioners {
                    let mut case = Case {
                        index: cases.len(),
                        key: String::new(),
                        objective: objective.clone(),
                        preconditioner: preconditioner.clone(),
                        noise: noise.clone(),
                        run: run.clone(),
                        rank: spec.rank.clone(),
                    };
                    case.key = case_key(&case);
                    cases.push(case);
                }
            }
        }
        Ok(cases)
    }

    fn check_axis(&self, key: &str) -> Result<(), SuiteError> {
        let valid: Vec<String> = RUN_FIELDS
            .iter()
            .map(|f| format!("run.{f}"))
            .chain(NOISE_FIELDS.iter().map(|f| format!("noise.{f}")))
            .collect();
        if valid.iter().any(|v| v == key) {
            return Ok(());
        }
        let nearest = valid
            .iter()
            .min_by_key(|v| strsim::levenshtein(v, key))
            .cloned()
            .unwrap_or_default();
        Err(self.error_at(
            &format!("\"{key}\""),
            format!(
                "unknown sweep axis \"{key}\"; did you mean \"{nearest}\"? Global sweeps take run.* and noise.* \
                 fields; plugin parameters are swept inside their [[objective]] or [[preconditioner]] entry"
            ),
        ))
    }

    /// The suite's noise and run settings with one combination of global axes applied, type-checked.
    fn apply(&self, combo: &[(String, toml::Value)]) -> Result<(NoiseSpec, RunSpec), SuiteError> {
        let to_table = |value: toml::Value| value.as_table().cloned().unwrap_or_default();
        let mut noise = to_table(
            toml::Value::try_from(&self.spec.noise)
                .unwrap_or(toml::Value::Table(Default::default())),
        );
        let mut run = to_table(
            toml::Value::try_from(&self.spec.run).unwrap_or(toml::Value::Table(Default::default())),
        );
        for (key, value) in combo {
            match key.split_once('.') {
                Some(("noise", field)) => noise.insert(field.to_owned(), value.clone()),
                Some(("run", field)) => run.insert(field.to_owned(), value.clone()),
                _ => None,
            };
        }
        let what = combo
            .iter()
            .map(|(k, v)| format!("{k} = {}", value_text(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let noise: NoiseSpec = noise.try_into().map_err(|e: toml::de::Error| {
            self.error_at("noise", format!("noise with {what}: {}", e.message()))
        })?;
        let mut run: RunSpec = run.try_into().map_err(|e: toml::de::Error| {
            self.error_at("run", format!("run with {what}: {}", e.message()))
        })?;
        run.seed = Some(run.seed.unwrap_or(self.spec.seed));
        Ok((noise, run))
    }
}

/// Every combination of the product axes, each crossed with every position of the zipped lists.
fn combinations(
    product: &BTreeMap<String, Vec<toml::Value>>,
    zip: &BTreeMap<String, Vec<toml::Value>>,
) -> Result<Vec<Vec<(String, toml::Value)>>, String> {
    if let Some((key, _)) = product
        .iter()
        .chain(zip)
        .find(|(_, values)| values.is_empty())
    {
        return Err(format!(
            "the list for \"{key}\" is empty; give at least one value"
        ));
    }
    let zip_len = zip.values().map(Vec::len).max().unwrap_or(0);
    if let Some((key, values)) = zip.iter().find(|(_, v)| v.len() != zip_len) {
        return Err(format!(
            "zipped lists must have equal lengths, but \"{key}\" has {} values and another has {zip_len}",
            values.len()
        ));
    }
    if let Some(key) = zip.keys().find(|k| product.contains_key(*k)) {
        return Err(format!(
            "\"{key}\" is both swept and zipped; keep it in one of them"
        ));
    }
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in product {
        combos = combos
            .iter()
            .flat_map(|c| {
                values
                    .iter()
                    .map(move |v| [c.clone(), vec![(key.clone(), v.clone())]].concat())
            })
            .collect();
    }
    if zip_len > 0 {
        combos = combos
            .iter()
            .flat_map(|c| {
                (0..zip_len).map(move |i| {
                    [
                        c.clone(),
                        zip.iter().map(|(k, v)| (k.clone(), v[i].clone())).collect(),
                    ]
                    .concat()
                })
            })
            .collect();
    }
    Ok(combos)
}

/// The first `"key"` a message mentions, quotes included, to find its line.
fn quoted_key(message: &str) -> String {
    message
        .split('"')
        .nth(1)
        .map(|key| format!("\"{key}\""))
        .unwrap_or_default()
}

/// A value as a short string (strings without quotes).
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The identity of a case, independent of its position: what it runs, canonically written.
fn case_key(case: &Case) -> String {
    let run = serde_json::to_string(&case.run).unwrap_or_default();
    let noise = serde_json::to_string(&case.noise).unwrap_or_default();
    format!("{} | noise {noise} | run {run}", case.pair_key())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_of(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" messages.
fn suggest_unknown_field(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match candidates
        .iter()
        .min_by_key(|c| strsim::levenshtein(c, field))
    {
        Some(nearest) => format!("{message}; did you mean `{nearest}`?"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Suite, SuiteError> {
        let dir = std::env::temp_dir().join(format!("ldbench-suite-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("s{}.toml", text.len()));
        std::fs::write(&file, text).unwrap();
        Suite::load(&file)
    }

    const BASE: &str = "[[objective]]\nplugin = \"objective-quadratic\"\n[[preconditioner]]\nplugin = \"precond-sgd\"\n";

    #[test]
    fn sweeps_multiply_and_zips_move_together() {
        let suite = load(&format!(
            "{BASE}[[preconditioner]]\nplugin = \"precond-adam\"\n[objective.zip]\ndim = [10, 20]\nrank = [5, 10]\n\
             [sweep]\n\"noise.structure\" = [\"isotropic\", \"rotated\"]\n\"run.eta_fraction\" = [0.1, 0.2, 0.3]\n"
        ))
        .unwrap();
        // objective's [[objective]] entry is first in the file, so its zip binds to it.
        assert_eq!(suite.cases.len(), 2 * 2 * 3 * 2);
        let first = &suite.cases[0];
        assert_eq!(first.objective.params["dim"], toml::Value::Integer(10));
        assert_eq!(first.objective.params["rank"], toml::Value::Integer(5));
        assert_eq!(
            (
                first.preconditioner.plugin.as_str(),
                suite.cases[1].preconditioner.plugin.as_str()
            ),
            ("precond-sgd", "precond-adam")
        );
        let keys: std::collections::BTreeSet<_> = suite.cases.iter().map(|c| &c.key).collect();
        assert_eq!(keys.len(), suite.cases.len(), "keys are unique");
        assert!(suite.cases.iter().all(|c| c.run.seed == Some(0)));
    }

    #[test]
    fn errors_name_the_file_line_field_and_fix() {
        let err = load(&format!("{BASE}[run]\nstepz = 10\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":6:1: unknown field `stepz`") && err.contains("did you mean `steps`?"),
            "{err}"
        );
        let err = load(&format!("{BASE}[sweep]\n\"run.eta_fractoin\" = [0.1]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":6:1:") && err.contains("did you mean \"run.eta_fraction\"?"),
            "{err}"
        );
        let err = load(&format!("{BASE}[sweep]\n\"noise.scale\" = []\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
        let err = load(&format!(
            "{BASE}[zip]\n\"noise.scale\" = [1.0, 2.0]\n\"run.steps\" = [100]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("equal lengths"), "{err}");
        let err = load(&format!("{BASE}[sweep]\n\"run.steps\" = [\"many\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run with run.steps = many") && err.contains("invalid type"),
            "{err}"
        );
        let err = load(&format!("{BASE}[noise]\nstructure = \"rotate\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `rotate`"), "{err}");
        let err = load("[[objective]]\nplugin = \"objective-quadratic\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `preconditioner`"), "{err}");
    }
}
