//! Regression tracking end to end: a run saved as a baseline, then the "next release" of a
//! preconditioner (fixture-drift-precond, switched by `LDBENCH_FIXTURE_DRIFT`) run and compared.
//!
//! A test binary of its own: cargo runs test binaries one after another, so the timings here are
//! not disturbed by the other tests' simulations; within it, the tests take one lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use ldbench::baseline::Baseline;

/// One timing run at a time.
static MACHINE: Mutex<()> = Mutex::new(());

/// A diagonal quadratic (n = 256, rank 128) under isotropic noise, with the drift preconditioner
/// (G = I, so GΣ = σ²I and the rank estimates apply); its apply and step are timed.
const SUITE: &str = r#"
description = "Regression-tracking test"
seed = 7

[run]
chains = 32
steps = 3000
eta_fraction = 0.3

[noise]
structure = "isotropic"
scale = 1e-4

[timing]
parts = ["apply", "step"]
warm_up = 0.1
measurement = 0.3
samples = 20

[[objective]]
plugin = "objective-quadratic"
params = { dim = 256, rank = 128 }

[[preconditioner]]
plugin = "fixture-drift-precond"
"#;

fn ldbench(args: &[&str], drift: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldbench"));
    command
        .args(args)
        .env("LDBENCH_PLUGIN_DIR", common::plugins().path());
    match drift {
        Some(d) => command.env("LDBENCH_FIXTURE_DRIFT", d),
        None => command.env_remove("LDBENCH_FIXTURE_DRIFT"),
    };
    command.output().unwrap()
}

/// Runs the suite with timings into `dir/<name>/` with the preconditioner's `drift`.
fn run(dir: &Path, name: &str, drift: Option<&str>) -> String {
    let suite = dir.join("drift.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let out = dir.join(name);
    let output = ldbench(
        &[
            "run",
            suite.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--timing",
            "--quiet",
        ],
        drift,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_str().unwrap().to_owned()
}

/// A baseline "before" saved from an unchanged run; returns the baselines folder.
fn baseline_before(dir: &Path) -> String {
    let from = run(dir, "before", None);
    let baselines = dir.join("baselines");
    let output = ldbench(
        &[
            "save-baseline",
            "before",
            "--from",
            &from,
            "--baselines",
            baselines.to_str().unwrap(),
        ],
        None,
    );
    assert!(output.status.success());
    let saved = Baseline::read(&baselines.join("before.json")).unwrap();
    let suite = &saved.suites["drift"];
    assert_eq!(suite.timings.len(), 2, "apply and step are timed");
    assert!(suite.accuracy[0].metrics.contains_key("rank_error"));
    baselines.to_str().unwrap().to_owned()
}

/// `ldbench compare before <new>`: (exit code, Markdown).
fn compare(dir: &Path, baselines: &str, new: &str) -> (i32, String) {
    let output = ldbench(
        &[
            "compare",
            "before",
            new,
            "--baselines",
            baselines,
            "--out",
            dir.join("compare").to_str().unwrap(),
        ],
        None,
    );
    assert!(dir.join("compare/compare.svg").exists());
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn an_unchanged_rerun_is_not_flagged() {
    let _machine = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let baselines = baseline_before(dir.path());
    let after = run(dir.path(), "after", None);
    let (code, md) = compare(dir.path(), &baselines, &after);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("0 regression(s)"), "{md}");
    // The same seeds give the same chains: every accuracy metric is identical.
    assert!(md.contains("0 changed beyond"), "{md}");
}

#[test]
fn a_slowed_preconditioner_is_flagged_as_a_timing_regression() {
    let _machine = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let baselines = baseline_before(dir.path());
    let after = run(dir.path(), "after", Some("slow"));
    let (code, md) = compare(dir.path(), &baselines, &after);
    assert_eq!(code, 1, "{md}");
    let apply = md
        .lines()
        .find(|l| l.contains(r"\| apply \|"))
        .expect("the apply timing is compared");
    assert!(apply.contains("**regressed**"), "{md}");
    // The same G, stored densely: the numbers do not move.
    assert!(md.contains("0 worse accuracy metric(s)"), "{md}");
}

#[test]
fn a_biased_preconditioner_is_flagged_as_an_accuracy_regression() {
    let _machine = MACHINE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let baselines = baseline_before(dir.path());
    let after = run(dir.path(), "after", Some("bias"));
    let (code, md) = compare(dir.path(), &baselines, &after);
    assert_eq!(code, 1, "{md}");
    let rank = md
        .lines()
        .find(|l| l.contains("| rank_error |"))
        .expect("the rank error is listed as changed");
    assert!(rank.contains("**regressed**"), "{md}");
    // G = 1.2 I under Σ = σ²I: the loss is 1.2 times higher, and the closed form says so.
    assert!(!md.contains("| loss_error |"), "{md}");
}
