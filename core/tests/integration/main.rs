//! Integration tests of ldbench-core: the closed form against independent computations, the
//! simulator against the closed form, and the `ldbench` command end to end.

mod cli;
mod random;
mod simulation;
mod theory;
