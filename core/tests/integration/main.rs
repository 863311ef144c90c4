//! Integration tests of ldbench-core: the closed form against independent computations, the
//! simulator against the closed form, and the `ldbench` command end to end.

// A failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
#[path = "../common/mod.rs"]
mod common;
mod fuzz;
mod plugins;
mod random;
mod rank;
mod simulation;
mod suites;
mod theory;
