//! `ldbench theory` and `ldbench simulate` end to end, on .npy and CSV files, and every kind of
//! bad input: exit code 2, a message naming the file and the problem, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ldbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldbench"))
        .args(args)
        .output()
        .expect("the ldbench binary runs")
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

/// A .npy file as NumPy writes it (format 1.0), for the dtype `descr` ('<f8' or '<f4').
pub fn npy(
    dir: &Path,
    name: &str,
    descr: &str,
    fortran: bool,
    shape: &[usize],
    row_major: &[f64],
) -> PathBuf {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape_text}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    let (rows, cols) = (shape[0], shape.get(1).copied().unwrap_or(1));
    let stored: Vec<f64> = if fortran {
        (0..rows * cols)
            .map(|k| row_major[(k % rows) * cols + k / rows])
            .collect()
    } else {
        row_major.to_vec()
    };
    for v in stored {
        match descr {
            "<f8" => bytes.extend(v.to_le_bytes()),
            "<f4" => bytes.extend((v as f32).to_le_bytes()),
            _ => bytes.extend((v as i64).to_le_bytes()),
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn csv(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// H = diag(2, 1, 0) rotated by 45° in the (0, 1) plane: rank 2, λ_max 2.
const H: [f64; 9] = [1.5, 0.5, 0.0, 0.5, 1.5, 0.0, 0.0, 0.0, 0.0];

#[test]
fn theory_on_npy_reports_rank_stationary_values_curve_and_directions() {
    let dir = tempfile::tempdir().unwrap();
    let h = npy(dir.path(), "h.npy", "<f8", false, &[3, 3], &H);
    let out = json(&ldbench(&[
        "theory",
        "--hessian",
        s(&h),
        "--noise",
        "isotropic:0.01",
        "--eta",
        "0.5",
        "--steps",
        "0,1,100",
    ]));
    assert_eq!(out["dim"], 3);
    assert_eq!(out["rank"], 2);
    assert_eq!(out["rank_rtol"], 1e-9);
    assert!((out["lambda_max"].as_f64().unwrap() - 2.0).abs() < 1e-12);
    let stationary = &out["stationary_excess_loss"];
    assert!((stationary["continuous"].as_f64().unwrap() - 0.005).abs() < 1e-15);
    // ¼σ² (1/(1 − 0.5) + 1/(1 − 0.25)) with ηλ = 1 and 0.5.
    let discrete = 0.0025 * (2.0 + 4.0 / 3.0);
    assert!((stationary["discrete"].as_f64().unwrap() - discrete).abs() < 1e-15);
    assert_eq!(out["matched"]["holds"], true);
    assert!((out["matched"]["predicted_excess_loss"].as_f64().unwrap() - 0.005).abs() < 1e-15);
    assert!((out["stability"]["max_stable_eta"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!((out["escape_slope"].as_f64().unwrap() - 0.5 * 0.01 * 3.0).abs() < 1e-15);
    let curve = out["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 3);
    assert_eq!(curve[0]["discrete"], 0.0);
    assert!((curve[2]["discrete"].as_f64().unwrap() - discrete).abs() < 1e-12);
    assert_eq!(out["directions"].as_array().unwrap().len(), 3);

    let out = json(&ldbench(&[
        "theory",
        "--hessian",
        s(&h),
        "--noise",
        "isotropic:0.01",
        "--eta",
        "0.5",
        "--no-directions",
    ]));
    assert!(out.get("directions").is_none() && out.get("curve").is_none());
}

#[test]
fn theory_on_csv_and_float32_fortran_npy_agree() {
    let dir = tempfile::tempdir().unwrap();
    let h_csv = csv(dir.path(), "h.csv", "1.5,0.5,0\n0.5,1.5,0\n0,0,0\n");
    let g_csv = csv(dir.path(), "g.csv", "1\n2\n0.5\n");
    let sigma_csv = csv(
        dir.path(),
        "sigma.csv",
        "# Σ\n0.02, 0.01, 0\n0.01, 0.03, 0\n0, 0, 0.01\n",
    );
    let x0 = csv(dir.path(), "x0.csv", "1,0,1\n");
    let h32 = npy(dir.path(), "h32.npy", "<f4", true, &[3, 3], &H);
    let g32 = npy(dir.path(), "g32.npy", "<f4", false, &[3], &[1.0, 2.0, 0.5]);
    let run = |h: &Path, g: &Path| {
        json(&ldbench(&[
            "theory",
            "--hessian",
            s(h),
            "--precond",
            s(g),
            "--noise",
            s(&sigma_csv),
            "--eta",
            "0.1",
            "--x0",
            s(&x0),
            "--steps",
            "5",
        ]))
    };
    let (a, b) = (run(&h_csv, &g_csv), run(&h32, &g32));
    assert_eq!(a["rank"], 2);
    assert_eq!(a["matched"]["holds"], false);
    assert_eq!(
        b["rank_rtol"], 1e-5,
        "float32 input raises the rank threshold"
    );
    for field in ["continuous", "discrete"] {
        let (x, y) = (
            a["stationary_excess_loss"][field].as_f64().unwrap(),
            b["stationary_excess_loss"][field].as_f64().unwrap(),
        );
        assert!((x - y).abs() < 1e-12 * x.abs(), "{field}: {x} vs {y}");
    }
    assert!(
        a["curve"][0]["discrete"].as_f64().unwrap()
            > a["stationary_excess_loss"]["discrete"].as_f64().unwrap()
    );
}

#[test]
fn the_published_reference_matrix_reads_the_same_from_npy_and_csv() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference");
    let npy =
        ldbench::matrix_file::MatrixFile::read(&reference.join("deep_linear_w32_sigma_yx.npy"))
            .unwrap();
    let csv =
        ldbench::matrix_file::MatrixFile::read(&reference.join("deep_linear_w32_sigma_yx.csv"))
            .unwrap();
    assert_eq!((npy.rows, npy.cols), (32, 32));
    assert_eq!(
        npy.data, csv.data,
        "the CSV is printed with round-trip precision"
    );
    assert_eq!(npy.get(0, 1), 1.009167979995897);
}

#[test]
fn simulate_compares_estimates_with_the_closed_form() {
    let dir = tempfile::tempdir().unwrap();
    let h = npy(dir.path(), "h.npy", "<f8", false, &[3, 3], &H);
    let output = ldbench(&[
        "simulate",
        "--hessian",
        s(&h),
        "--noise",
        "matched:0.01",
        "--eta",
        "0.5",
        "--steps",
        "4000",
        "--chains",
        "32",
        "--seed",
        "3",
    ]);
    let out = json(&output);
    assert_eq!(out["rank"]["true_rank"], 2);
    // 4 standard errors: see the tolerance note in simulation.rs.
    assert!(
        out["excess_loss"]["z_score"].as_f64().unwrap().abs() < 4.0,
        "{}",
        out["excess_loss"]
    );
    assert!(
        out["corrected_excess_loss"]["z_score"]
            .as_f64()
            .unwrap()
            .abs()
            < 4.0
    );
    assert_eq!(out["trace"].as_array().unwrap().len(), 501);
    assert!(String::from_utf8_lossy(&output.stderr).contains("corrected loss"));
}

/// Runs a command that must fail with exit code 2 and a message containing every `expected` part.
fn refused(args: &[&str], expected: &[&str]) {
    let output = ldbench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty());
    for part in expected {
        assert!(
            stderr.contains(part),
            "{args:?}: expected '{part}' in: {stderr}"
        );
    }
}

#[test]
fn bad_input_exits_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = npy(d, "h.npy", "<f8", false, &[3, 3], &H);
    let asymmetric = csv(d, "asym.csv", "1,2\n0,1\n");
    let nan = csv(d, "nan.csv", "1,0\n0,nan\n");
    let inf = npy(d, "inf.npy", "<f8", false, &[2], &[1.0, f64::INFINITY]);
    let square = csv(d, "g2.csv", "1,0\n0,1\n");
    let indefinite = csv(d, "indef.csv", "1,2,0\n2,1,0\n0,0,1\n");
    let not_psd = csv(d, "sigma.csv", "-1\n1\n1\n");
    let ints = npy(d, "ints.npy", "<i8", false, &[3, 3], &H);
    let cube = npy(d, "cube.npy", "<f8", false, &[1, 1, 1], &[1.0]);
    let text = csv(d, "h.npy.csv", "a,b\n");
    let missing = d.join("missing.npy");
    let base = |hessian: &Path| {
        vec![
            "theory".to_owned(),
            "--hessian".into(),
            s(hessian).into(),
            "--eta".into(),
            "0.1".into(),
        ]
    };
    let with = |hessian: &Path, extra: &[&str]| {
        let mut args = base(hessian);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            with(&missing, &["--noise", "isotropic:1"]),
            vec!["missing.npy", "cannot read the file"],
        ),
        (
            with(&asymmetric, &["--noise", "isotropic:1"]),
            vec!["asym.csv", "not symmetric", "--symmetry-rtol"],
        ),
        (
            with(&nan, &["--noise", "isotropic:1"]),
            vec!["nan.csv", "entry (1, 1) is NaN"],
        ),
        (
            with(&inf, &["--noise", "isotropic:1"]),
            vec!["inf.npy", "is inf"],
        ),
        (
            with(&h, &["--precond", s(&square), "--noise", "isotropic:1"]),
            vec![
                "g2.csv",
                "3×3 matrix or a vector of length 3",
                "found a 2×2",
            ],
        ),
        (
            with(&h, &["--precond", s(&indefinite), "--noise", "isotropic:1"]),
            vec!["indef.csv", "positive definite"],
        ),
        (
            with(&h, &["--noise", s(&not_psd)]),
            vec!["sigma.csv", "positive semi-definite"],
        ),
        (
            with(&ints, &["--noise", "isotropic:1"]),
            vec!["ints.npy", "expected float64 or float32"],
        ),
        (
            with(&cube, &["--noise", "isotropic:1"]),
            vec!["cube.npy", "shape [1, 1, 1]"],
        ),
        (
            with(&text, &["--noise", "isotropic:1"]),
            vec!["h.npy.csv", "'a' is not a number"],
        ),
        (
            with(&h, &["--noise", "isotropic:-1"]),
            vec!["--noise", "'-1' is not a non-negative number"],
        ),
        (
            with(&h, &["--noise", "isotropic:1", "--x0", s(&square)]),
            vec!["g2.csv", "x0 must be a vector of length n = 3"],
        ),
        (
            with(&h, &["--noise", "isotropic:1", "--rank-rtol", "2"]),
            vec!["--rank-rtol"],
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, &expected);
    }
    // η·λ_max = 2.2 ≥ 2.
    refused(
        &[
            "theory",
            "--hessian",
            s(&h),
            "--noise",
            "isotropic:1",
            "--eta",
            "1.1",
        ],
        &["unstable step size", "2.2000", "use eta < 1.000000e0"],
    );
    refused(
        &[
            "simulate",
            "--hessian",
            s(&h),
            "--noise",
            "isotropic:1",
            "--eta",
            "0.1",
            "--steps",
            "10",
        ],
        &["invalid simulation settings", "batches = 20"],
    );
}
