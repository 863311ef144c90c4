#!/usr/bin/env python3
"""A straightforward NumPy implementation of the paper's deep-linear-network Langevin loop
(THEORY.md §8), to time against ldbench: `cargo xtask numpy-compare` runs both side by side.

Depth-L square linear network f(W) = ||A||_F^2 - 2 tr(A T^T), A = W_L ... W_1 (Sigma_x = I,
Sigma_yx = T = R R^T / sqrt(d)), started at the global minimum W_1 = Q T^(1/L), W_2..W_{L-1} =
Q T^(1/L) Q^T, W_L = T^(1/L) Q^T; the chain theta <- theta - eta grad f + sqrt(eta) sigma xi, all
chains at once (batched matrix products over the chain axis). Prints one JSON line: the seconds
per 1000 iterations per chain, and the paper's rank estimate r_hat from the chains' window means.
"""

import argparse
import json
import time

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--steps", type=int, default=15000)
    p.add_argument("--burn-in", type=int, default=5000)
    p.add_argument("--eta", type=float, default=1e-4)
    p.add_argument("--sigma2", type=float, default=2e-5)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args()
    d, L, m = a.width, a.depth, a.chains
    rng = np.random.default_rng(a.seed)
    r = rng.standard_normal((d, d))
    t = r @ r.T / np.sqrt(d)
    mu, u = np.linalg.eigh(t)
    root = u @ np.diag(mu ** (1.0 / L)) @ u.T
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    layers = [q @ root] + [q @ root @ q.T for _ in range(L - 2)] + [root @ q.T]
    # w[l] has shape (m, d, d): layer l of every chain.
    w = [np.broadcast_to(x, (m, d, d)).copy() for x in layers]
    f_star = -np.sum(t * t)
    sigma = np.sqrt(a.sigma2)
    window = np.zeros(m)

    started = time.perf_counter()
    for k in range(a.steps + 1):
        # Prefix products S_l = W_l ... W_1 and suffix products P_l = W_L ... W_l.
        prefix = [w[0]]
        for l in range(1, L):
            prefix.append(w[l] @ prefix[-1])
        product = prefix[-1]
        residual = product - t
        loss = np.sum(product * product, axis=(1, 2)) - 2.0 * np.sum(product * t, axis=(1, 2))
        if k > a.burn_in:
            window += loss - f_star
        if k == a.steps:
            break
        grad_a = 2.0 * residual
        suffix = np.broadcast_to(np.eye(d), (m, d, d))
        grads = [None] * L
        for l in range(L - 1, -1, -1):
            left = np.swapaxes(suffix, 1, 2) @ grad_a
            grads[l] = left @ np.swapaxes(prefix[l - 1], 1, 2) if l > 0 else left
            suffix = suffix @ w[l]
        for l in range(L):
            w[l] -= a.eta * grads[l]
            w[l] += np.sqrt(a.eta) * sigma * rng.standard_normal((m, d, d))
    seconds = time.perf_counter() - started

    excess = window / (a.steps - a.burn_in)
    r_hat = 4.0 / a.sigma2 * excess
    print(json.dumps({
        "implementation": "numpy " + np.__version__,
        "width": d, "depth": L, "chains": m, "steps": a.steps,
        "seconds": seconds,
        "seconds_per_1000_iterations_per_chain": seconds / (a.steps / 1000.0) / m,
        "r_hat_mean": float(r_hat.mean()), "true_rank": d * d,
    }))


if __name__ == "__main__":
    main()
