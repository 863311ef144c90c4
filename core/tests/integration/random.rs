//! Seeded random test matrices.

use faer::Mat;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

pub struct Random(Pcg64Mcg);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(Pcg64Mcg::seed_from_u64(seed))
    }

    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// An r×c matrix of i.i.d. N(0, 1) entries.
    pub fn gaussian(&mut self, rows: usize, cols: usize) -> Mat<f64> {
        Mat::from_fn(rows, cols, |_, _| self.normal())
    }

    /// A Haar-random orthogonal n×n matrix.
    pub fn orthogonal(&mut self, n: usize) -> Mat<f64> {
        ldbench::linalg::random_orthogonal(n, &mut self.0)
    }

    /// Q diag(eigenvalues) Qᵀ with a random orthogonal Q.
    pub fn with_spectrum(&mut self, eigenvalues: &[f64]) -> Mat<f64> {
        let q = self.orthogonal(eigenvalues.len());
        ldbench::linalg::with_spectrum(&q, eigenvalues)
    }

    /// A symmetric positive definite n×n matrix with eigenvalues in [1, 1 + spread·n].
    pub fn spd(&mut self, n: usize, spread: f64) -> Mat<f64> {
        let a = self.gaussian(n, n);
        let mut m = &a * a.transpose() * faer::Scale(spread) + Mat::<f64>::identity(n, n);
        symmetrize(&mut m);
        m
    }
}

pub fn diagonal(values: &[f64]) -> Mat<f64> {
    Mat::from_fn(values.len(), values.len(), |i, j| {
        if i == j { values[i] } else { 0.0 }
    })
}

pub fn symmetrize(m: &mut Mat<f64>) {
    let t = m.transpose().to_owned();
    *m = (&*m + t) * faer::Scale(0.5);
}

pub fn trace(m: &Mat<f64>) -> f64 {
    (0..m.nrows()).map(|i| m[(i, i)]).sum()
}
