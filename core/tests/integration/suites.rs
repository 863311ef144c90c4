//! Suites end to end: `ldbench validate`, `plan`, `run` (with resume after an interruption) and
//! the report, on suites/smoke.toml and on malformed suites.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ldbench::runner::{Record, Status, read_records};

use crate::plugins::plugins;

fn ldbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldbench"))
        .args(args)
        .env("LDBENCH_PLUGIN_DIR", plugins().path())
        .output()
        .unwrap()
}

/// Records with their wall-clock times zeroed, for comparing runs.
fn without_time(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .map(|mut r| {
            if let Some(o) = r.outcome.as_mut() {
                o.seconds = 0.0;
                o.rank_estimates.iter_mut().for_each(|e| e.seconds = 0.0);
            }
            r
        })
        .collect()
}

/// The records of a report folder, times zeroed.
fn records_without_time(dir: &str) -> Vec<Record> {
    without_time(read_records(&Path::new(dir).join("results.jsonl"), false).unwrap())
}

/// `ldbench validate` must refuse `path` with exit code 2, no panic, and every part in its message.
fn validate_refuses(path: &Path, parts: &[&str]) {
    let output = ldbench(&["validate", path.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}: {stderr}",
        path.display()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for part in parts {
        assert!(
            stderr.contains(part),
            "{}: expected '{part}' in: {stderr}",
            path.display()
        );
    }
}

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/smoke.toml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A suite run by [`run_inline`].
struct InlineRun {
    /// The scratch folder, deleted when this is dropped.
    _dir: tempfile::TempDir,
    /// The report folder.
    out: PathBuf,
    records: Vec<Record>,
    stderr: String,
}

/// Runs the suite `toml` (quiet) into a fresh folder's `out/`; it must succeed.
fn run_inline(toml: &str) -> InlineRun {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite.toml");
    std::fs::write(&suite, toml).unwrap();
    let out = dir.path().join("out");
    let run = ldbench(&[
        "run",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    InlineRun {
        records: read_records(&out.join("results.jsonl"), false).unwrap(),
        stderr: text(&run.stderr),
        out,
        _dir: dir,
    }
}

#[test]
fn smoke_suite_runs_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smoke");
    let out_arg = out.to_str().unwrap();
    let suite = smoke();
    let suite_arg = suite.to_str().unwrap();

    let validate = ldbench(&["validate", suite_arg]);
    assert!(validate.status.success(), "{}", text(&validate.stderr));
    assert!(text(&validate.stdout).contains("valid, 4 cases"));
    let plan = ldbench(&["plan", suite_arg]);
    assert!(
        text(&plan.stdout).contains("4 cases"),
        "{}",
        text(&plan.stdout)
    );

    let run = ldbench(&["run", suite_arg, "--out", out_arg, "--quiet"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let records = read_records(&out.join("results.jsonl"), false).unwrap();
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r.status, Status::Ok, "{:?}", r.reason);
        let o = r.outcome.as_ref().unwrap();
        // 5 standard errors over 4 cases: see simulation.rs for why a correct simulator passes.
        assert!(
            o.z_score.abs() < 5.0,
            "case {}: z = {}",
            r.case.index,
            o.z_score
        );
        if r.case.noise.structure.name() == "matched" {
            assert!(o.rank_corrected.is_some() && o.matched_sigma2.is_some());
        }
    }
    for file in [
        "summary.csv",
        "metadata.json",
        "index.md",
        "index.html",
        "loss_curves.svg",
        "comparison.svg",
        "accuracy.svg",
        "rank.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(
        std::fs::read_to_string(out.join("index.html"))
            .unwrap()
            .contains("<img src=\"comparison.svg\"")
    );

    // A second run into the same folder is refused: results are never silently mixed.
    let again = ldbench(&["run", suite_arg, "--out", out_arg, "--quiet"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already holds 4 results; pass --resume"),
        "{}",
        text(&again.stderr)
    );

    // An interrupted run: the last record torn in the middle, one missing. Resuming repairs the
    // file, runs only the missing cases, and ends with the same records as the full run.
    let path = out.join("results.jsonl");
    let full = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    let torn = format!(
        "{}\n{}\n{}",
        lines[0],
        lines[1],
        &lines[2][..lines[2].len() / 2]
    );
    std::fs::write(&path, torn).unwrap();
    let resumed = ldbench(&["run", suite_arg, "--out", out_arg, "--resume"]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains("resuming: 2 of 4 cases"),
        "{}",
        text(&resumed.stderr)
    );
    let after = read_records(&path, false).unwrap();
    assert_eq!(
        after.iter().map(|r| r.case.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(without_time(after), without_time(records));
}

#[test]
fn malformed_suites_are_refused_with_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let base = "[[objective]]\nplugin = \"objective-quadratic\"\nparams = { dim = 6 }\n[[preconditioner]]\nplugin = \"precond-sgd\"\n";
    let cases = [
        (
            write("typo.toml", &format!("{base}[run]\nchainz = 4\n")),
            vec![
                "typo.toml:7:1",
                "unknown field `chainz`",
                "did you mean `chains`?",
            ],
        ),
        (
            write("plugin.toml", &base.replace("precond-sgd", "precond-sdg")),
            vec![
                "plugin.toml:5:10",
                "no plugin named 'precond-sdg'",
                "precond-sgd",
            ],
        ),
        (
            write(
                "kind.toml",
                &base.replace("precond-sgd", "objective-deep-linear"),
            ),
            vec![
                "kind.toml:5:10",
                "is an objective, listed as a preconditioner",
            ],
        ),
        (
            write("param.toml", &base.replace("dim = 6", "dimm = 6")),
            vec![
                "param.toml:2:10",
                "unknown field `dimm`, expected one of `dim`",
            ],
        ),
        (
            write(
                "sweep.toml",
                &format!("{base}[objective.zip]\ndim = [4, 8]\nrank = [2]\n"),
            ),
            vec!["equal lengths"],
        ),
        (
            write("unstable.toml", &format!("{base}[run]\neta = 100.0\n")),
            vec!["unstable.toml:7:1", "unstable step size", "use eta <"],
        ),
        (
            write(
                "impossible.toml",
                &base.replace("dim = 6", "dim = 6, rank = 9"),
            ),
            vec!["rank = 9"],
        ),
        (
            write(
                "window.toml",
                &format!("{base}[run]\nsteps = 10\nburn_in = 10\n"),
            ),
            vec!["leave no window to average"],
        ),
    ];
    for (path, expected) in cases {
        validate_refuses(&path, &expected);
    }
}

#[test]
fn the_merge_of_shards_equals_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let suite = smoke();
    let suite_arg = suite.to_str().unwrap();
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for (out, shard) in [
        ("whole", None),
        ("s1", Some("1/3")),
        ("s2", Some("2/3")),
        ("s3", Some("3/3")),
    ] {
        let mut args = vec!["run", suite_arg, "--quiet", "--out"];
        let out = folder(out);
        args.push(&out);
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        let run = ldbench(&args);
        assert!(run.status.success(), "{}", text(&run.stderr));
    }
    let merged = folder("merged");
    let merge = ldbench(&[
        "merge",
        &folder("s1"),
        &folder("s2"),
        &folder("s3"),
        "--out",
        &merged,
    ]);
    assert!(merge.status.success(), "{}", text(&merge.stderr));
    assert_eq!(
        records_without_time(&folder("s2")).len(),
        1,
        "case 1 of 4 falls in shard 2/3"
    );
    assert_eq!(
        records_without_time(&merged),
        records_without_time(&folder("whole"))
    );
    assert!(Path::new(&merged).join("index.html").is_file());
    let bad = ldbench(&["run", suite_arg, "--out", &folder("x"), "--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("is not a shard I/N"));
}

#[test]
fn every_malformed_suite_in_the_corpus_gets_its_message() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/malformed");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        validate_refuses(&path, &[expected.trim()]);
        checked += 1;
    }
    assert!(checked >= 12, "the corpus holds {checked} suites");
}

#[test]
fn killing_the_runner_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/hessian_rank.toml");
    let suite_arg = suite.to_str().unwrap();
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let whole = folder("whole");
    assert!(
        ldbench(&["run", suite_arg, "--out", &whole, "--quiet"])
            .status
            .success()
    );

    // SIGKILL at fixed moments of successive resumed runs, then a final resume to the end.
    let killed = folder("killed");
    let mut kills = 0;
    for (attempt, millis) in [300u64, 700, 150, 1100, 450].into_iter().enumerate() {
        let mode = if attempt == 0 {
            "--overwrite"
        } else {
            "--resume"
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ldbench"))
            // One job makes the run last several seconds, so every kill lands mid-run; results do
            // not depend on the job count, which the final comparison also checks.
            .args([
                "run", suite_arg, "--out", &killed, "--quiet", "--jobs", "1", mode,
            ])
            .env("LDBENCH_PLUGIN_DIR", plugins().path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(millis));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Between kills, the file always reads back (a torn last line is cut off on resume).
        let so_far = read_records(&Path::new(&killed).join("results.jsonl"), true).unwrap();
        let keys: std::collections::BTreeSet<_> =
            so_far.iter().map(|r| r.case.key.clone()).collect();
        assert_eq!(keys.len(), so_far.len(), "no case recorded twice");
    }
    assert!(
        kills >= 3,
        "only {kills} runs were still running when killed"
    );
    let finish = ldbench(&["run", suite_arg, "--out", &killed, "--resume", "--quiet"]);
    assert!(finish.status.success(), "{}", text(&finish.stderr));
    let (after, reference) = (records_without_time(&killed), records_without_time(&whole));
    assert_eq!(after.len(), 20);
    assert_eq!(
        after, reference,
        "the resumed results equal an uninterrupted run's"
    );
}

#[test]
fn faulty_plugins_and_a_hang_fail_their_cases_and_the_suite_goes_on() {
    let started = std::time::Instant::now();
    let run = run_inline(
        r#"
description = "Faults: a panic, a NaN gradient and a call that never returns, beside healthy cases."
[run]
chains = 4
steps = 400
time_limit = 3.0

[[objective]]
plugin = "fixture-faulty-objective"
label = "faulty"
zip = { panic_in = ["", "value_and_gradient", "", ""], bad_in = ["", "", "gradient", ""], hang_in = ["", "", "", "value_and_gradient"] }

[[objective]]
plugin = "objective-quadratic"
params = { dim = 5 }

[[preconditioner]]
plugin = "precond-sgd"
"#,
    );
    let records = &run.records;
    assert!(
        started.elapsed().as_secs_f64() < 60.0,
        "the hang held the suite up"
    );
    let outcome = |i: usize| {
        (
            records[i].status,
            records[i].reason.clone().unwrap_or_default(),
        )
    };
    assert_eq!(records.len(), 5);
    assert_eq!(outcome(0).0, Status::Ok);
    assert!(
        outcome(1).1.contains("panicked")
            && outcome(1).1.contains("fixture panic in value_and_gradient"),
        "{:?}",
        outcome(1)
    );
    assert!(
        outcome(2)
            .1
            .contains("non-finite value (NaN) at index 0 of its gradient"),
        "{:?}",
        outcome(2)
    );
    assert!(
        outcome(3).1.contains("timed out after 3 s"),
        "{:?}",
        outcome(3)
    );
    assert_eq!(
        outcome(4).0,
        Status::Ok,
        "the healthy objective's case is intact"
    );
    assert!(run.stderr.contains("case 3 failed: timed out"));
}

#[test]
fn a_case_larger_than_the_machine_is_refused_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("huge.toml");
    std::fs::write(
        &suite,
        "[[objective]]\nplugin = \"objective-quadratic\"\nparams = { dim = 2000000 }\n[[preconditioner]]\nplugin = \"precond-sgd\"\n",
    )
    .unwrap();
    let output = ldbench(&["validate", suite.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("needs about")
            && stderr.contains("GiB (n = 2000000, 64 chains) but the machine has"),
        "{stderr}"
    );
}

#[test]
fn a_second_run_into_a_busy_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/hessian_rank.toml");
    let out = dir.path().join("busy");
    let args = |extra: &str| {
        [
            "run",
            suite.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--jobs",
            "1",
            extra,
        ]
        .map(str::to_owned)
    };
    let mut first = Command::new(env!("CARGO_BIN_EXE_ldbench"))
        .args(args("--overwrite"))
        .env("LDBENCH_PLUGIN_DIR", plugins().path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run holds the folder's lock.
    let lock = out.join(".lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = ldbench(
        &args("--resume")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().ok();
    first.wait().unwrap();
    if still_running {
        assert_eq!(second.status.code(), Some(2));
        assert!(
            text(&second.stderr).contains("another ldbench run is writing to"),
            "{}",
            text(&second.stderr)
        );
    }
    assert!(
        still_running,
        "the first run ended before the second started; the test needs a longer suite"
    );
}

#[test]
fn every_rank_estimator_reports_its_estimate_and_its_cost() {
    // Matched noise on a quadratic of rank 20 (n = 60, eigenvalues from 1 to 1/100 of λ_max:
    // a gap for KPM), with every estimator.
    let run = run_inline(
        r#"
seed = 3
[run]
chains = 64
steps = 6000
eta_fraction = 0.2
[noise]
structure = "matched"
scale = 1e-3
[rank]
estimators = ["paper", "corrected", "kpm", "exact"]
kpm = { degree = 50, probes = 200 }
[[objective]]
plugin = "objective-quadratic"
params = { dim = 60, rank = 20, basis = "random", spectrum = "log-uniform", condition = 100.0 }
[[preconditioner]]
plugin = "precond-sgd"
"#,
    );
    let (records, out) = (&run.records, &run.out);
    let o = records[0].outcome.as_ref().unwrap();
    let by_name = |name: &str| {
        o.rank_estimates
            .iter()
            .find(|e| e.estimator == name)
            .unwrap_or_else(|| panic!("no {name} estimate"))
    };
    let exact = by_name("exact");
    assert_eq!(exact.rank.mean, 20.0);
    assert_eq!(exact.rmse, 0.0);
    // r̂_c is unbiased on a quadratic under matched noise (THEORY §5 fact 6); KPM's Hutchinson
    // average is unbiased for the damped step in a wide gap. 4 standard errors each.
    for name in ["corrected", "kpm"] {
        let e = by_name(name);
        let z = (e.rank.mean - 20.0) / e.rank.std_error;
        assert!(z.abs() < 4.0, "{name}: {e:?}");
    }
    let paper = by_name("paper");
    assert_eq!(paper.runs, 64);
    assert_eq!(paper.gradient_evaluations, 64 * 6001);
    assert_eq!(paper.hessian_vector_products, 0);
    assert!(paper.rmse >= (paper.rank.mean - 20.0).abs());
    let kpm = by_name("kpm");
    // Lanczos stops early once the Krylov space is exhausted (rank 20 here): at most 30 steps.
    let lanczos = kpm.hessian_vector_products - 50 * 200;
    assert!((1..=30).contains(&lanczos), "{kpm:?}");
    assert_eq!(kpm.gradient_evaluations, 0);
    assert!(kpm.threshold.is_some_and(|t| t > 0.0));
    // The report carries the table and the estimator figure.
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("## Rank estimators"), "{index}");
    assert!(out.join("rank_estimators.svg").exists());
}

#[test]
fn beyond_a_dense_hessian_the_closed_form_comes_from_the_plugins_eigenvalues() {
    // Width 48 at depth 5: n = 11 520, above the plugin's dense-Hessian limit (8192), so the
    // runner takes the eigenvalues (THEORY fact 7) and builds the closed form from them.
    let run = run_inline(
        r#"
seed = 5
[run]
chains = 16
steps = 400
burn_in = 200
eta = 1e-4
[noise]
structure = "isotropic"
scale = 0.2
[rank]
estimators = ["paper", "exact"]
[[objective]]
plugin = "objective-deep-linear"
params = { depth = 5, width = 48 }
[[preconditioner]]
plugin = "precond-sgd"
"#,
    );
    let records = &run.records;
    let o = records[0].outcome.as_ref().expect("the case ran");
    assert_eq!((o.dim, o.rank), (11_520, 48 * 48));
    let exact = o
        .rank_estimates
        .iter()
        .find(|e| e.estimator == "exact")
        .unwrap();
    assert_eq!(exact.rank.mean, 2304.0);
    // The simulation against the window closed form built from the eigenvalues alone: within 4
    // standard errors (a correct closed form leaves ~1e-4 chance of failing).
    assert!(o.z_score.abs() < 4.0, "z = {}", o.z_score);
}
