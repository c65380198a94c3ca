"""Benchmark: fit BG/NBD + Gamma-Gamma on a million simulated customers.

Run: ``.venv/bin/python bench/bench_predict_fit.py [--customers N] [--json PATH]``. Customers
are drawn from the models themselves (:mod:`purchase_patterns.predict.simulate`) with
day-resolution times over a 78-week window, so the fit sees as many distinct ``(x, t_x, T)``
rows as a real log of that size would. Prints the wall-clock and CPU seconds of each step (CPU
time is the fairer number on a shared machine) and the estimates next to the truth; ``--json``
also writes them for the benchmark harness (``bench/harness.py``), whose "CLV fit" figure is
``fit_seconds``: BG/NBD + Gamma-Gamma, simulation excluded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from purchase_patterns.predict import bgnbd, gamma_gamma
from purchase_patterns.predict.bgnbd import BgNbdParams
from purchase_patterns.predict.gamma_gamma import GammaGammaParams
from purchase_patterns.predict.simulate import simulate_summaries

TRUE_BGNBD = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
HORIZON_WEEKS = 52.0


def run(customers: int, seed: int = 1) -> dict:
    """Simulate ``customers``, fit both models, predict for everyone; timings and estimates."""
    t0 = time.perf_counter()
    df = simulate_summaries(customers, TRUE_BGNBD, TRUE_GG, T_min=1.0, T_max=78.0,
                            seed=seed, time_step=1 / 7)
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
    e = bgnbd.expected_purchases(fit_b.params, HORIZON_WEEKS, x, t_x, T)
    s = gamma_gamma.expected_spend(fit_g.params, x, np.nan_to_num(df["m"].to_numpy()))
    t_pred = time.perf_counter() - t0
    return {
        "customers": customers, "repeat_customers": int(rep.sum()),
        "simulate_seconds": round(t_sim, 3),
        "bgnbd": {"seconds": round(t_bgnbd, 3), "cpu_seconds": round(c_bgnbd, 3),
                  "distinct_rows": int(fit_b.n_distinct), "iterations": int(fit_b.iterations),
                  "converged": bool(fit_b.converged), "params": fit_b.params.as_dict(),
                  "std_errors": dict(fit_b.std_errors), "true": TRUE_BGNBD.as_dict()},
        "gamma_gamma": {"seconds": round(t_gg, 3), "cpu_seconds": round(c_gg, 3),
                        "distinct_rows": int(fit_g.n_distinct),
                        "converged": bool(fit_g.converged), "params": fit_g.params.as_dict(),
                        "std_errors": dict(fit_g.std_errors), "true": TRUE_GG.as_dict()},
        "fit_seconds": round(t_bgnbd + t_gg, 3),
        "fit_cpu_seconds": round(c_bgnbd + c_gg, 3),
        "predict_seconds": round(t_pred, 3),
        "mean_expected_purchases": float(e.mean()), "mean_expected_spend": float(s.mean()),
    }


def show(r: dict) -> None:
    b, g = r["bgnbd"], r["gamma_gamma"]
    print(f"customers: {r['customers']:,} (simulated in {r['simulate_seconds']:.2f}s); "
          f"repeat: {r['repeat_customers']:,}")
    print(f"BG/NBD fit: {b['seconds']:.2f}s ({b['cpu_seconds']:.2f}s CPU) on "
          f"{b['distinct_rows']:,} distinct (x, t_x, T) rows, {b['iterations']} iterations, "
          f"converged={b['converged']}")
    for k, v in b["params"].items():
        print(f"  {k:>5} = {v:8.4f} ± {b['std_errors'][k]:.4f}  (true {b['true'][k]})")
    print(f"Gamma-Gamma fit: {g['seconds']:.2f}s ({g['cpu_seconds']:.2f}s CPU) on "
          f"{g['distinct_rows']:,} distinct rows, converged={g['converged']}")
    for k, v in g["params"].items():
        print(f"  {k:>5} = {v:8.4f} ± {g['std_errors'][k]:.4f}  (true {g['true'][k]})")
    print(f"fit total (BG/NBD + Gamma-Gamma): {r['fit_seconds']:.2f}s "
          f"({r['fit_cpu_seconds']:.2f}s CPU)")
    print(f"predictions for every customer ({HORIZON_WEEKS:.0f} weeks, spend): "
          f"{r['predict_seconds']:.2f}s; mean expected purchases "
          f"{r['mean_expected_purchases']:.3f}, mean expected spend "
          f"{r['mean_expected_spend']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    result = run(args.customers, args.seed)
    show(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
