//! Property tests ("fuzzing", bounded): the suite parser and the matrix readers take arbitrary
//! input — random bytes, and mutations of valid files — and either accept it or return an error
//! with a message; they never panic. Bounded to a few thousand cases so that they run in CI:
//! `cargo test --release -p ldbench-core --test integration fuzz`; raise `PROPTEST_CASES` for a
//! longer search.

use std::path::Path;

use ldbench::matrix_file::MatrixFile;
use ldbench::suite::Suite;
use proptest::prelude::*;

const SMOKE: &str = include_str!("../../../suites/smoke.toml");
const ADAM_VS_SGD: &str = include_str!("../../../suites/adam_vs_sgd.toml");

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Writes `bytes` to a fresh file named `name` and runs `check` on its path.
fn with_file(name: &str, bytes: &[u8], check: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    check(&path);
}

/// A valid file with a byte range replaced by arbitrary bytes.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        0..len,
        0..16usize,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(at, cut, insert)| {
            let mut bytes = base.as_bytes().to_vec();
            let end = (at + cut).min(len);
            bytes.splice(at..end, insert);
            bytes
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn suite_parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        with_file("s.toml", &bytes, |path| {
            if let Err(e) = Suite::load(path) {
                assert!(!e.to_string().is_empty());
            }
        });
    }

    #[test]
    fn suite_parser_never_panics_on_mutated_suites(bytes in prop_oneof![mutated(SMOKE), mutated(ADAM_VS_SGD)]) {
        with_file("s.toml", &bytes, |path| {
            if let Err(e) = Suite::load(path) {
                assert!(e.to_string().contains("s.toml"), "the error names the file: {e}");
            }
        });
    }

    #[test]
    fn matrix_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), npy in any::<bool>()) {
        let name = if npy { "m.npy" } else { "m.csv" };
        with_file(name, &bytes, |path| {
            if let Err(e) = MatrixFile::read(path) {
                assert!(e.to_string().contains(name), "the error names the file: {e}");
            }
        });
    }

    #[test]
    fn npy_reader_never_panics_on_mutated_headers(at in 0..128usize, byte in any::<u8>(), cut in 0..200usize) {
        // A valid 3×3 float64 .npy file with one header byte changed and its data truncated.
        let dir = tempfile::tempdir().unwrap();
        let valid = crate::cli::npy(dir.path(), "v.npy", "<f8", false, &[3, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let mut bytes = std::fs::read(valid).unwrap();
        let at = at.min(bytes.len() - 1);
        bytes[at] = byte;
        bytes.truncate(bytes.len().saturating_sub(cut));
        with_file("m.npy", &bytes, |path| {
            let _ = MatrixFile::read(path);
        });
    }
}
