//! Estimates with standard errors from correlated chains: batch means within each chain's
//! averaging window, pooled across chains.
//!
//! A window of W states is cut into B consecutive batches. When a batch is much longer than the
//! chain's autocorrelation time, batch means are nearly independent, so their spread measures the
//! error of the window mean honestly even though consecutive states are strongly correlated.
//! With b_cj the mean of batch j of chain c and μ_c the chain's window mean:
//!
//! ```text
//! mean        = (1/m) Σ_c μ_c
//! s²          = Σ_c Σ_j (b_cj − μ_c)² / (m (B − 1))     (pooled variance of one batch mean)
//! std_error   = sqrt(s² / (m B))
//! ```

use serde::Serialize;

/// A Monte-Carlo estimate: mean and standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub mean: f64,
    /// Its standard error.
    pub std_error: f64,
}

impl Estimate {
    /// The normal-approximation 95% confidence interval, mean ± 1.96·std_error.
    pub fn ci95(&self) -> (f64, f64) {
        (
            self.mean - 1.96 * self.std_error,
            self.mean + 1.96 * self.std_error,
        )
    }

    /// How many standard errors the estimate lies from `expected` (signed).
    pub fn z_score(&self, expected: f64) -> f64 {
        (self.mean - expected) / self.std_error
    }

    /// The estimate of `factor · X`.
    pub fn scaled(&self, factor: f64) -> Estimate {
        Estimate {
            mean: factor * self.mean,
            std_error: factor.abs() * self.std_error,
        }
    }
}

/// Running batch sums of one scalar for a block of chains.
#[derive(Debug, Clone)]
pub(crate) struct BatchMeans {
    window: u64,
    batches: usize,
    /// sums[c * batches + j]: sum over batch j of chain c.
    sums: Vec<f64>,
}

impl BatchMeans {
    pub(crate) fn new(chains: usize, window: u64, batches: usize) -> Self {
        BatchMeans {
            window,
            batches,
            sums: vec![0.0; chains * batches],
        }
    }

    /// Batch that window index `i` (0-based, < window) belongs to.
    pub(crate) fn batch_of(&self, i: u64) -> usize {
        (u128::from(i) * self.batches as u128 / u128::from(self.window)) as usize
    }

    pub(crate) fn add(&mut self, chain: usize, batch: usize, value: f64) {
        self.sums[chain * self.batches + batch] += value;
    }

    /// Concatenates the chains of `other` after those of `self`.
    pub(crate) fn append(&mut self, other: &BatchMeans) {
        self.sums.extend_from_slice(&other.sums);
    }

    fn batch_len(&self, j: usize) -> f64 {
        let start = |j: usize| (j as u128 * u128::from(self.window)).div_ceil(self.batches as u128);
        (start(j + 1) - start(j)) as f64
    }

    /// Each chain's window mean, in chain order.
    pub(crate) fn chain_means(&self) -> Vec<f64> {
        self.sums
            .chunks_exact(self.batches)
            .map(|chain| chain.iter().sum::<f64>() / self.window as f64)
            .collect()
    }

    /// The pooled estimate (see the module documentation).
    pub(crate) fn estimate(&self) -> Estimate {
        let b = self.batches;
        let chains = self.sums.len() / b;
        let lens: Vec<f64> = (0..b).map(|j| self.batch_len(j)).collect();
        let mut total = 0.0;
        let mut squares = 0.0;
        for chain in self.sums.chunks_exact(b) {
            let chain_mean = chain.iter().sum::<f64>() / self.window as f64;
            total += chain_mean;
            squares += chain
                .iter()
                .zip(&lens)
                .map(|(s, l)| (s / l - chain_mean).powi(2))
                .sum::<f64>();
        }
        let m = chains as f64;
        let pooled = squares / (m * (b as f64 - 1.0));
        Estimate {
            mean: total / m,
            std_error: (pooled / (m * b as f64)).sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_assignment_covers_the_window_in_order() {
        let bm = BatchMeans::new(1, 10, 3);
        let batches: Vec<usize> = (0..10).map(|i| bm.batch_of(i)).collect();
        assert_eq!(batches, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!((0..3).map(|j| bm.batch_len(j)).sum::<f64>(), 10.0);
        assert_eq!(
            (bm.batch_len(0), bm.batch_len(1), bm.batch_len(2)),
            (4.0, 3.0, 3.0)
        );
    }

    #[test]
    fn independent_values_give_the_textbook_standard_error() {
        // Two chains, 4 batches of one value each: batch means are the values themselves.
        let mut bm = BatchMeans::new(2, 4, 4);
        for (c, values) in [[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]
            .iter()
            .enumerate()
        {
            for (i, v) in values.iter().enumerate() {
                bm.add(c, bm.batch_of(i as u64), *v);
            }
        }
        let e = bm.estimate();
        assert_eq!(e.mean, (2.5 + 2.0) / 2.0);
        // Pooled variance: (2.25 + 0.25 + 0.25 + 2.25 + 0) / (2·3) = 5/6; SE² = (5/6)/8.
        assert!((e.std_error - (5.0_f64 / 48.0).sqrt()).abs() < 1e-15);
    }
}
