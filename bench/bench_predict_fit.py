"""Benchmark: fit BG/NBD + Gamma-Gamma on a million simulated customers.

Run: ``.venv/bin/python bench/bench_predict_fit.py [--customers N]``. Customers are drawn
from the models themselves (:mod:`purchase_patterns.predict.simulate`) with day-resolution
times over a 78-week window, so the fit sees as many distinct ``(x, t_x, T)`` rows as a real
log of that size would. Prints the wall-clock and CPU seconds of each step (CPU time is the
fairer number on a shared machine) and the estimates next to the truth.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from purchase_patterns.predict import bgnbd, gamma_gamma
from purchase_patterns.predict.bgnbd import BgNbdParams
from purchase_patterns.predict.gamma_gamma import GammaGammaParams
from purchase_patterns.predict.simulate import simulate_summaries

TRUE_BGNBD = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    df = simulate_summaries(args.customers, TRUE_BGNBD, TRUE_GG, T_min=1.0, T_max=78.0,
                            seed=args.seed, time_step=1 / 7)
    t_sim = time.perf_counter() - t0
    x, t_x, T = (df[c].to_numpy() for c in ("x", "t_x", "T"))
    rep = x > 0

    t0, c0 = time.perf_counter(), time.process_time()
    fit_b = bgnbd.fit(x, t_x, T)
    t_bgnbd, c_bgnbd = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    fit_g = gamma_gamma.fit(x[rep], df["m"].to_numpy()[rep])
    t_gg, c_gg = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    horizon = 52.0
    e = bgnbd.expected_purchases(fit_b.params, horizon, x, t_x, T)
    s = gamma_gamma.expected_spend(fit_g.params, x, np.nan_to_num(df["m"].to_numpy()))
    t_pred = time.perf_counter() - t0

    print(f"customers: {args.customers:,} (simulated in {t_sim:.2f}s); repeat: {rep.sum():,}")
    print(f"BG/NBD fit: {t_bgnbd:.2f}s ({c_bgnbd:.2f}s CPU) on {fit_b.n_distinct:,} distinct (x, t_x, T) rows, "
          f"{fit_b.iterations} iterations, converged={fit_b.converged}")
    for k, v in fit_b.params.as_dict().items():
        print(f"  {k:>5} = {v:8.4f} ± {fit_b.std_errors[k]:.4f}  (true "
              f"{getattr(TRUE_BGNBD, k)})")
    print(f"Gamma-Gamma fit: {t_gg:.2f}s ({c_gg:.2f}s CPU) on {fit_g.n_distinct:,} distinct rows, "
          f"converged={fit_g.converged}")
    for k, v in fit_g.params.as_dict().items():
        print(f"  {k:>5} = {v:8.4f} ± {fit_g.std_errors[k]:.4f}  (true {getattr(TRUE_GG, k)})")
    print(f"fit total (BG/NBD + Gamma-Gamma): {t_bgnbd + t_gg:.2f}s "
          f"({c_bgnbd + c_gg:.2f}s CPU)")
    print(f"predictions for every customer (52 weeks, spend): {t_pred:.2f}s; "
          f"mean expected purchases {e.mean():.3f}, mean expected spend {s.mean():.2f}")


if __name__ == "__main__":
    main()
