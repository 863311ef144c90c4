//! Standard normal draws for the chains' noise: Marsaglia and Tsang's ziggurat (J. Stat. Softw. 5(8),
//! 2000, "RNOR", here with 256 layers as in Doornik 2005), fed 32 bits at a time so that one 64-bit output of the chain's PCG
//! stream gives two normals.
//!
//! Why not `rand_distr::StandardNormal`: it spends a whole 64-bit output per draw, and on a
//! diagonal problem the generator, not the arithmetic, bounds a Langevin step (see the
//! `diagonal_step` benchmark, which measures both). Each 32-bit word is split into an 8-bit layer
//! index and a signed 24-bit value, disjoint bits, so the layer and the position within it are
//! independent. The value's resolution, 2⁻²³ of the layer's width (at most 4.4e-7), is far below
//! anything a Monte-Carlo estimate can resolve. The rare rejections (about 1.2% of draws) take
//! fresh words from the same stream, so a chain's draws remain a pure function of its stream.

use std::sync::LazyLock;

use rand::Rng;

use super::stream::ChainRng;

/// Number of ziggurat layers.
const LAYERS: usize = 256;
/// Start of the tail, r in Marsaglia and Tsang.
const TAIL_START: f64 = 3.654_152_885_361_009;
/// Area of each layer, v = r·φ(r) + ∫_r^∞ φ with φ(x) = exp(−x²/2).
const LAYER_AREA: f64 = 4.928_673_233_974_658e-3;
/// Scale of the signed 24-bit value: |value| < 2²³.
const VALUE_SCALE: f64 = (1u32 << 23) as f64;

/// The ziggurat tables: acceptance thresholds `k`, widths `w` (x = value·w) and densities `f`.
struct Tables {
    k: [u32; LAYERS],
    w: [f64; LAYERS],
    f: [f64; LAYERS],
}

/// Marsaglia and Tsang's table set-up (their `zigset`), for 256 layers and a 24-bit signed value.
static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let mut t = Tables {
        k: [0; LAYERS],
        w: [0.0; LAYERS],
        f: [0.0; LAYERS],
    };
    let density = |x: f64| (-0.5 * x * x).exp();
    let mut d = TAIL_START;
    let mut previous = d;
    let q = LAYER_AREA / density(d);
    t.k[0] = ((d / q) * VALUE_SCALE) as u32;
    t.k[1] = 0;
    t.w[0] = q / VALUE_SCALE;
    t.w[LAYERS - 1] = d / VALUE_SCALE;
    t.f[0] = 1.0;
    t.f[LAYERS - 1] = density(d);
    for i in (1..LAYERS - 1).rev() {
        d = (-2.0 * (LAYER_AREA / d + density(d)).ln()).sqrt();
        t.k[i + 1] = ((d / previous) * VALUE_SCALE) as u32;
        previous = d;
        t.f[i] = density(d);
        t.w[i] = d / VALUE_SCALE;
    }
    t
});

/// Fills `out` with independent N(0, 1) draws from `rng`.
pub fn fill_standard_normal(out: &mut [f64], rng: &mut ChainRng) {
    let tables = &*TABLES;
    // A local copy keeps the generator's state in registers rather than in memory.
    let mut local = rng.clone();
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        let bits = local.next_u64();
        pair[0] = draw(bits as u32, tables, &mut local);
        pair[1] = draw((bits >> 32) as u32, tables, &mut local);
    }
    if let [last] = pairs.into_remainder() {
        *last = draw(local.next_u64() as u32, tables, &mut local);
    }
    *rng = local;
}

/// One draw from the 32-bit word `word`: the low 8 bits pick the layer, the high 24 bits (signed)
/// the position.
#[inline(always)]
fn draw(word: u32, t: &Tables, rng: &mut ChainRng) -> f64 {
    let layer = (word as usize) & (LAYERS - 1);
    let value = (word as i32) >> 8;
    if value.unsigned_abs() < t.k[layer] {
        return f64::from(value) * t.w[layer];
    }
    reject(word, t, rng)
}

/// The slow path of [`draw`]: the tail (layer 0) or a wedge test, then fresh words until accepted.
#[cold]
fn reject(mut word: u32, t: &Tables, rng: &mut ChainRng) -> f64 {
    loop {
        let layer = (word as usize) & (LAYERS - 1);
        let value = (word as i32) >> 8;
        if value.unsigned_abs() < t.k[layer] {
            return f64::from(value) * t.w[layer];
        }
        let x = f64::from(value) * t.w[layer];
        if layer == 0 {
            // Marsaglia's tail method: x > r from the exponential proposal.
            loop {
                let x = -open_unit(rng).ln() / TAIL_START;
                let y = -open_unit(rng).ln();
                if y + y >= x * x {
                    return if value > 0 {
                        TAIL_START + x
                    } else {
                        -TAIL_START - x
                    };
                }
            }
        }
        if t.f[layer] + open_unit(rng) * (t.f[layer - 1] - t.f[layer]) < (-0.5 * x * x).exp() {
            return x;
        }
        word = rng.next_u32();
    }
}

/// A uniform draw in (0, 1), never 0 (its logarithm is taken).
fn open_unit(rng: &mut ChainRng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::stream::chain_rng;
    use rand_distr::{Distribution, StandardNormal};

    fn draws(count: usize, seed: u64) -> Vec<f64> {
        let mut out = vec![0.0; count];
        fill_standard_normal(&mut out, &mut chain_rng(seed, 0, 0));
        out
    }

    #[test]
    fn tables_follow_the_ziggurat_construction() {
        let t = &*TABLES;
        // The bottom layer ends where the tail starts; densities fall from the top layer down.
        assert!((t.w[LAYERS - 1] * VALUE_SCALE - TAIL_START).abs() < 1e-12);
        assert!((0..LAYERS - 1).all(|i| t.f[i] > t.f[i + 1]));
        // Acceptance ratios k_i / 2^24 = x_{i-1} / x_i lie in (0, 1).
        assert!(
            t.k[2..]
                .iter()
                .all(|&k| k > 0 && f64::from(k) < VALUE_SCALE)
        );
    }

    #[test]
    fn moments_and_tail_frequencies_match_the_standard_normal() {
        // 4e6 draws; every check allows 5 standard errors of its own estimator, so a correct
        // sampler fails with probability below 1e-6 per check, and the seed is fixed.
        let n = 4_000_000;
        let z = draws(n, 1);
        let nf = n as f64;
        let mean = z.iter().sum::<f64>() / nf;
        let second = z.iter().map(|x| x * x).sum::<f64>() / nf;
        let fourth = z.iter().map(|x| x.powi(4)).sum::<f64>() / nf;
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!(
            (second - 1.0).abs() < 5.0 * 2f64.sqrt() / nf.sqrt(),
            "variance {second}"
        );
        assert!(
            (fourth - 3.0).abs() < 5.0 * 96f64.sqrt() / nf.sqrt(),
            "fourth moment {fourth}"
        );
        // P(|Z| > c) = erfc(c/√2), computed with Python's math.erfc.
        for (c, p) in [
            (1.0, 0.317_310_507_862_914_15),
            (2.0, 0.045_500_263_896_358_44),
            (TAIL_START, 2.580_324_876_539_013e-4),
            (4.0, 6.334_248_366_623_993e-5),
        ] {
            let found = z.iter().filter(|x| x.abs() > c).count() as f64 / nf;
            let se = (p * (1.0 - p) / nf).sqrt();
            assert!(
                (found - p).abs() < 5.0 * se,
                "P(|Z| > {c}) = {found}, expected {p} ± {se}"
            );
        }
    }

    #[test]
    fn the_distribution_matches_rand_distr_by_a_two_sample_ks_test() {
        let n = 1_000_000;
        let mut ours = draws(n, 2);
        let mut rng = chain_rng(3, 0, 0);
        let mut reference: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        ours.sort_by(f64::total_cmp);
        reference.sort_by(f64::total_cmp);
        let (mut i, mut j, mut distance) = (0, 0, 0.0_f64);
        while i < n && j < n {
            if ours[i] <= reference[j] {
                i += 1
            } else {
                j += 1
            }
            distance = distance.max((i as f64 - j as f64).abs() / n as f64);
        }
        // Two-sample KS critical value at level 1e-4: sqrt(−ln(1e-4/2)/2) · sqrt(2/n).
        let critical = (-(0.5e-4_f64).ln() / 2.0).sqrt() * (2.0 / n as f64).sqrt();
        assert!(distance < critical, "KS distance {distance} ≥ {critical}");
    }

    #[test]
    fn draws_are_a_function_of_the_stream_only() {
        assert_eq!(draws(1001, 7), draws(1001, 7));
        let mut split = vec![0.0; 1001];
        let mut rng = chain_rng(7, 0, 0);
        // Filling in two calls continues the same stream (the odd call wastes half a word).
        fill_standard_normal(&mut split[..500], &mut rng);
        fill_standard_normal(&mut split[500..], &mut rng);
        assert_eq!(&split[..500], &draws(1001, 7)[..500]);
    }
}
