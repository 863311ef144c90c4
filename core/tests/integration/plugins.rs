//! The plugin host against real plugin libraries: the standard plugins pass conformance and run
//! through the simulator, and every kind of faulty plugin gives a clear error without crashing
//! the host.

use std::path::Path;
use std::process::Command;

use faer::Mat;
use ldbench::linalg::SymMatrix;
use ldbench::plugin::{PluginError, PluginObjective, PluginPrecond, conformance};
use ldbench::sim::{Quadratic, Sampler, SimConfig, SimError};
use ldbench::theory::{ClosedForm, DEFAULT_MATCHED_RTOL, DEFAULT_RANK_RTOL};

pub use crate::common::plugins;

const STANDARD: [(&str, &str); 8] = [
    ("objective-teacher-student", ""),
    (
        "objective-quadratic",
        "dim = 30\nrank = 12\nbasis = \"random\"",
    ),
    ("objective-deep-linear", "width = 3\ndepth = 3"),
    ("precond-sgd", "alpha = 0.5"),
    ("precond-adam", ""),
    ("precond-natural", ""),
    // The conformance problem has a singular H: Newton needs damping.
    ("precond-newton", "delta = 0.1"),
    ("precond-diag-hessian", ""),
];

#[test]
fn every_standard_plugin_passes_conformance() {
    for (name, params) in STANDARD {
        let report = conformance::check(plugins(), name, params);
        let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{name}: {failed:#?}");
        assert!(
            report.checks.len() >= 6,
            "{name}: {} checks",
            report.checks.len()
        );
    }
}

#[test]
fn a_plugin_objective_runs_through_the_simulator_like_the_in_process_one() {
    let plugin = plugins().load("objective-quadratic").unwrap();
    let objective = PluginObjective::new(
        &plugin,
        "dim = 16\nrank = 9\nbasis = \"random\"\ncondition = 5.0",
        4,
    )
    .unwrap();
    assert_eq!(objective.true_rank(), Some(9));
    let h = objective.hessian().unwrap().unwrap();
    let in_process = Quadratic::new(SymMatrix::Dense(h.clone()));
    // Natural-gradient G built by its plugin from C = I + 0.5·ones: matched noise Σ = ηC.
    let c = Mat::from_fn(16, 16, |i, j| if i == j { 1.5 } else { 0.5 });
    let natural = plugins().load("precond-natural").unwrap();
    let g = PluginPrecond::new(&natural, "", 0, Some(&h), &c)
        .unwrap()
        .matrix()
        .unwrap();
    let eta = 0.05;
    let sigma = SymMatrix::Dense(&c * faer::Scale(eta));
    let config = SimConfig {
        seed: 2,
        ..SimConfig::new(eta, 64, 20_000)
    };
    let through_plugin = Sampler::new(&objective, &g, &sigma)
        .unwrap()
        .run(&config, None)
        .unwrap();
    let through_core = Sampler::new(&in_process, &g, &sigma)
        .unwrap()
        .run(&config, None)
        .unwrap();
    let (a, b) = (
        through_plugin.estimates.excess_loss,
        through_core.estimates.excess_loss,
    );
    // Same gradients bit for bit; only the plugin's loss value is summed in another order.
    assert!(
        (a.mean - b.mean).abs() <= 1e-12 * b.mean.abs(),
        "{a:?} vs {b:?}"
    );

    // And the rank it reveals: GΣ = ηI, so r̂_c = 4/η · corrected loss ≈ 9 (4 standard errors, as
    // in simulation.rs).
    let cf = ClosedForm::new(h.as_ref(), &g, &sigma, DEFAULT_RANK_RTOL).unwrap();
    let sigma2 = cf
        .matched_sigma2(DEFAULT_MATCHED_RTOL)
        .expect("matched by construction");
    assert!((sigma2 - eta).abs() < 1e-12);
    let r_hat_c = through_plugin.estimates.rank_corrected(sigma2);
    assert!(r_hat_c.z_score(9.0).abs() < 4.0, "{r_hat_c:?}");
}

#[test]
fn adam_plugin_is_the_fixed_point_of_theory_section_6() {
    let plugin = plugins().load("precond-adam").unwrap();
    let c = Mat::from_fn(3, 3, |i, j| if i == j { [4.0, 0.25, 1.0][i] } else { 0.1 });
    let g = PluginPrecond::new(&plugin, "alpha = 2.0\nepsilon = 0.0", 0, None, &c)
        .unwrap()
        .matrix()
        .unwrap();
    assert_eq!(g, SymMatrix::Diagonal(vec![1.0, 4.0, 2.0]));
    let mut online = PluginPrecond::new(
        &plugin,
        "online = true\nbeta2 = 0.5\nepsilon = 1e-12",
        0,
        None,
        &c,
    )
    .unwrap();
    assert!(online.is_online());
    // One observation of gradients ±3 in every coordinate: bias-corrected v = 9, G = 1/3.
    online.observe(&[3.0, -3.0, 3.0, -3.0, 3.0, -3.0]).unwrap();
    let SymMatrix::Diagonal(d) = online.matrix().unwrap() else {
        panic!("diagonal")
    };
    assert!(d.iter().all(|g| (g - 1.0 / 3.0).abs() < 1e-9), "{d:?}");
}

#[test]
fn online_adam_tracks_its_fixed_point_limit() {
    // Diagonal quadratic, diagonal gradient noise C, Σ = ηC: Adam's fixed point is
    // G* = (diag C + ε)^{-1/2}; online, G follows the chains' stochastic gradients.
    let n = 20;
    let h: Vec<f64> = (0..n)
        .map(|i| 0.5 + 1.5 * i as f64 / (n - 1) as f64)
        .collect();
    let c: Vec<f64> = (0..n)
        .map(|i| 0.1 * 100f64.powf(i as f64 / (n - 1) as f64))
        .collect();
    let eta = 0.01;
    let objective = Quadratic::new(SymMatrix::Diagonal(h.clone()));
    let sigma = SymMatrix::Diagonal(c.iter().map(|c| eta * c).collect());
    let fixed_g: Vec<f64> = c.iter().map(|c| 1.0 / (c + 1e-8).sqrt()).collect();
    let fixed = SymMatrix::Diagonal(fixed_g.clone());
    let cf = ClosedForm::new(
        SymMatrix::Diagonal(h).to_dense().as_ref(),
        &fixed,
        &sigma,
        DEFAULT_RANK_RTOL,
    )
    .unwrap();
    let theory = cf.stationary_discrete(eta).unwrap();
    let config = SimConfig {
        seed: 6,
        ..SimConfig::new(eta, 64, 40_000)
    };

    let plugin = plugins().load("precond-adam").unwrap();
    let c_dense = SymMatrix::Diagonal(c.clone()).to_dense();
    let mut online =
        PluginPrecond::new(&plugin, "online = true\nbeta2 = 0.99", 0, None, &c_dense).unwrap();
    let identity = SymMatrix::identity(n);
    let sampler = Sampler::new(&objective, &identity, &sigma).unwrap();
    let adaptive = sampler
        .run_adaptive(&config, None, fixed_g.clone(), &mut online)
        .unwrap();
    let final_g = online.matrix().unwrap().diagonal().unwrap();
    let fixed_run = Sampler::new(&objective, &fixed, &sigma)
        .unwrap()
        .run(&config, None)
        .unwrap();

    // The fixed point simulates to its theory (4 standard errors, as in simulation.rs).
    assert!(fixed_run.estimates.excess_loss.z_score(theory).abs() < 4.0);
    // Online, Adam's second moment also sees the gradient's own variance, E[(∇f)²] ≈ (ηλ/2)·C
    // relative, and its β2 = 0.99 average over 64 chains fluctuates by about
    // sqrt(2(1−β2)/(1+β2)/64) ≈ 1.8% per coordinate: G and the loss stay within a few percent.
    let relative = adaptive.estimates.excess_loss.mean / theory - 1.0;
    assert!(
        relative.abs() < 0.05,
        "online {:?} vs fixed-point theory {theory}",
        adaptive.estimates.excess_loss
    );
    let worst_g = final_g
        .iter()
        .zip(&fixed_g)
        .map(|(g, f)| (g / f - 1.0).abs())
        .fold(0.0, f64::max);
    assert!(worst_g < 0.1, "final G off its fixed point by {worst_g}");
    eprintln!("online/fixed-point loss − 1 = {relative:+.4}, worst G deviation {worst_g:.4}");
}

fn call_error(e: PluginError) -> (String, bool) {
    match e {
        PluginError::Call {
            message, panicked, ..
        } => (message, panicked),
        other => panic!("expected a call error, got: {other}"),
    }
}

#[test]
fn missing_foreign_and_incompatible_libraries_are_refused_by_name() {
    let dir = plugins();
    let not_found = dir.load("precond-nope").unwrap_err().to_string();
    assert!(
        not_found.contains("no plugin named 'precond-nope'") && not_found.contains("precond-sgd"),
        "{not_found}"
    );
    for bad in ["../precond-sgd", "a/b", "a\\b", ""] {
        assert!(
            matches!(dir.load(bad), Err(PluginError::InvalidName(_))),
            "{bad}"
        );
    }
    let not_plugin = dir.load("fixture-not-a-plugin").unwrap_err();
    assert!(
        matches!(not_plugin, PluginError::NotAPlugin { .. }),
        "{not_plugin}"
    );
    assert!(not_plugin.to_string().contains("libfixture_not_a_plugin"));
    match dir.load("fixture-future-abi").unwrap_err() {
        PluginError::AbiMismatch {
            expected: ldbench_sdk::abi::ABI_VERSION,
            found: 999,
            file,
        } => assert!(file.ends_with("libfixture_future_abi.so")),
        other => panic!("expected an ABI mismatch, got {other}"),
    }
    let sgd = dir.load("precond-sgd").unwrap();
    let wrong_kind = PluginObjective::new(&sgd, "", 0).err().unwrap().to_string();
    assert_eq!(
        wrong_kind,
        "plugin 'precond-sgd' is a preconditioner, but an objective is needed here"
    );
    let (message, panicked) = call_error(
        PluginPrecond::new(&sgd, "alpah = 2", 0, None, &Mat::identity(2, 2))
            .err()
            .unwrap(),
    );
    assert!(
        !panicked && message.contains("unknown field `alpah`, expected `alpha`"),
        "{message}"
    );
    let newton = dir.load("precond-newton").unwrap();
    let singular = Mat::from_fn(2, 2, |_, _| 1.0);
    let (message, _) = call_error(
        PluginPrecond::new(&newton, "", 0, Some(&singular), &Mat::identity(2, 2))
            .err()
            .unwrap(),
    );
    assert!(message.contains("set delta > 0"), "{message}");
}

#[test]
fn a_panic_in_any_objective_call_is_an_error_with_its_message() {
    let plugin = plugins().load("fixture-faulty-objective").unwrap();
    for call in ["create", "info", "theta_star"] {
        let (message, panicked) = call_error(
            PluginObjective::new(&plugin, &format!("panic_in = \"{call}\""), 0)
                .err()
                .unwrap(),
        );
        assert!(
            panicked && message.contains(&format!("fixture panic in {call}")),
            "{call}: {message}"
        );
    }
    for call in [
        "hessian",
        "gradient_noise",
        "hessian_vector",
        "value_and_gradient",
    ] {
        let objective =
            PluginObjective::new(&plugin, &format!("panic_in = \"{call}\""), 0).unwrap();
        let message = match call {
            "hessian" => objective.hessian().err().unwrap().to_string(),
            "gradient_noise" => objective.gradient_noise().err().unwrap().to_string(),
            "hessian_vector" => objective
                .hessian_vector(&[1.0, 2.0, 3.0])
                .err()
                .unwrap()
                .to_string(),
            _ => {
                let g = SymMatrix::identity(3);
                let sampler = Sampler::new(&objective, &g, &g).unwrap();
                match sampler.run(&SimConfig::new(0.1, 4, 100), None).unwrap_err() {
                    SimError::Objective { step: 0, source } => source.0,
                    other => panic!("{other}"),
                }
            }
        };
        assert!(
            message.contains("panicked") && message.contains(&format!("fixture panic in {call}")),
            "{call}: {message}"
        );
    }
    // The host is intact: the same library still serves a healthy instance.
    assert!(
        PluginObjective::new(&plugin, "", 0)
            .unwrap()
            .hessian()
            .unwrap()
            .is_some()
    );
}

#[test]
fn nan_inf_and_wrong_length_outputs_are_errors() {
    let plugin = plugins().load("fixture-faulty-objective").unwrap();
    let create = |params: &str| PluginObjective::new(&plugin, params, 0);
    let err = create("bad_in = \"theta_star\"\nbad_output = \"nan\"")
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            PluginError::NonFinite {
                what: "theta_star",
                index: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = create("bad_in = \"f_star\"\nbad_output = \"inf\"")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("non-finite value (inf)") && err.contains("f_star"),
        "{err}"
    );
    let (message, panicked) = call_error(
        create("bad_in = \"theta_star\"\nbad_output = \"short\"")
            .err()
            .unwrap(),
    );
    assert!(
        !panicked && message.contains("theta_star has 2 values but the dimension is 3"),
        "{message}"
    );
    let err = create("bad_in = \"hessian\"")
        .unwrap()
        .hessian()
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::NonFinite {
                what: "hessian",
                index: 1,
                ..
            }
        ),
        "{err}"
    );

    let g = SymMatrix::identity(3);
    let run = |params: &str| {
        let objective = create(params).unwrap();
        Sampler::new(&objective, &g, &g)
            .unwrap()
            .run(&SimConfig::new(0.1, 4, 100), None)
            .unwrap_err()
    };
    let SimError::NonFinite {
        step: 0, chain: 0, ..
    } = run("bad_in = \"value\"")
    else {
        panic!("NaN value")
    };
    match run("bad_in = \"gradient\"\nbad_output = \"inf\"") {
        SimError::Objective { step: 0, source } => assert!(
            source
                .0
                .contains("non-finite value (inf) at index 0 of its gradient"),
            "{}",
            source.0
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn a_faulty_preconditioner_is_an_error_not_a_crash() {
    let plugin = plugins().load("fixture-faulty-precond").unwrap();
    let c = Mat::<f64>::identity(3, 3);
    let (message, panicked) = call_error(
        PluginPrecond::new(&plugin, "panic_in = \"create\"", 0, None, &c)
            .err()
            .unwrap(),
    );
    assert!(panicked && message.contains("fixture panic in create"));
    let matrix_panics = PluginPrecond::new(&plugin, "panic_in = \"matrix\"", 0, None, &c);
    // `create` reads G's dimension, so the panic may come from create or from matrix.
    let err = match matrix_panics {
        Err(e) => e,
        Ok(p) => p.matrix().unwrap_err(),
    };
    assert!(call_error(err).1);
    // A panic on any use of G after creation: in structure (read by `matrix`) and in apply.
    let used = PluginPrecond::new(&plugin, "panic_in = \"use\"", 0, None, &c).unwrap();
    match used.matrix().unwrap_err() {
        PluginError::Call {
            function: "structure",
            panicked: true,
            ..
        } => {}
        other => panic!("{other}"),
    }
    match used.apply(&[1.0, 2.0, 3.0]).unwrap_err() {
        PluginError::Call {
            function: "apply",
            panicked: true,
            ..
        } => {}
        other => panic!("{other}"),
    }
    let mut observing = PluginPrecond::new(&plugin, "panic_in = \"observe\"", 0, None, &c).unwrap();
    let (message, panicked) = call_error(observing.observe(&[1.0, 2.0, 3.0]).unwrap_err());
    assert!(panicked && message.contains("fixture panic in observe"));
    let err = PluginPrecond::new(&plugin, "nan = true", 0, None, &c)
        .unwrap()
        .matrix()
        .unwrap_err();
    assert!(
        matches!(err, PluginError::NonFinite { what: "matrix", .. }),
        "{err}"
    );
}

fn ldbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ldbench"))
        .args(args)
        .env("LDBENCH_PLUGIN_DIR", plugins().path())
        .output()
        .unwrap()
}

#[test]
fn plugins_and_inspect_commands_describe_what_is_installed() {
    let out = ldbench(&["plugins"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, _) in STANDARD {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert!(stdout.contains("hessian,hessian-vector,true-rank"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("libfixture_future_abi") && stderr.contains("ABI version 999"),
        "{stderr}"
    );

    // The published width-32 instance, read by the host from ../shared and passed as numbers.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/deep_linear_w32_sigma_yx.npy");
    let params = format!("depth = 2\nsigma_yx = \"@{}\"", reference.display());
    let out = ldbench(&["inspect", "objective-deep-linear", "--params", &params]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dim"], 2048);
    assert_eq!(json["objective"]["true_rank"], 1024);
    assert_eq!(json["objective"]["hessian"]["rank"], 1024);

    let out = ldbench(&[
        "inspect",
        "precond-natural",
        "--objective",
        "objective-quadratic",
        "--objective-params",
        "dim = 5",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["preconditioner"]["structure"], "diagonal");
    // C = s²H (the quadratic's label-noise model), H log-uniform with condition 100: G = C⁻¹ too.
    let condition = json["preconditioner"]["condition_number"].as_f64().unwrap();
    assert!((condition - 100.0).abs() < 1e-9, "{condition}");
    assert_eq!(
        json["preconditioner"]["gradient_noise"],
        "the objective's own gradient-noise model"
    );

    let out = ldbench(&["inspect", "precond-sgd", "--params", "alpah = 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field `alpah`, expected `alpha`")
    );
}

#[test]
fn plugin_test_command_exits_1_when_a_check_fails() {
    let ok = ldbench(&["plugin-test", "precond-sgd"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("7 passed, 0 failed"));
    let failing = ldbench(&[
        "plugin-test",
        "fixture-faulty-objective",
        "--params",
        "bad_in = \"gradient\"",
    ]);
    assert_eq!(
        failing.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failing.stdout)
    );
    assert!(String::from_utf8_lossy(&failing.stdout).contains("FAIL"));
}
