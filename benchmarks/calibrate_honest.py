"""Calibration and speed of the Rambachan-Roth intervals (osservatorio.evaluate.honest).

Simulates betahat ~ N(tau + delta, Sigma) with Sigma of a real Callaway-Sant'Anna event
study: R did's mpdta example, universal base, event times -4..3 (3 pre, 4 post periods;
"mpdta_cs" in tests/reference/honest/event_studies.json, influence-function covariance)
and a true violation delta of parallel trends:

* relative magnitudes, Mbar = 1: pre-period changes of delta up to c = 1 sd(beta_-1);
  every post-period change equal to +Mbar_true * c (same sign, the worst case for the
  first post period and for the average). Inside the bound: Mbar_true = 1; outside: 2.
* smoothness, M: delta linear before adoption, second differences +M_true after (a
  bending trend). Inside: M_true = M = 0.5 sd(beta_-1); outside: M_true = 3 M.

Coverage of theta = l'tau (first post period and average) by the robust interval and by
the original interval betahat_theta -/+ 1.96 sd is printed with its Monte Carlo se.
For relative magnitudes "covered" means the C-LF test accepts the true theta (the
interval is the hull of the accepted set). Then times ``honest_did`` at 12 + 12 periods
(monthly, event window 12) with the default M values and the breakdown search.

Run: .venv/bin/python benchmarks/calibrate_honest.py [draws]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from osservatorio import distributions as dist
from osservatorio.evaluate.honest import honest_did, resolve_l_vec, rm_accepts
from osservatorio.evaluate.honest_flci import flci_weights

REF = Path(__file__).parents[1] / "tests" / "reference" / "honest" / "event_studies.json"


def _cs_sigma() -> tuple[np.ndarray, int, int]:
    d = json.loads(REF.read_text())["mpdta_cs"]
    return np.array(d["sigma"]), d["numPre"], d["numPost"]


def _violation(restriction: str, k: int, t: int, scale: float, factor: float) -> np.ndarray:
    """True delta at event times -k..-1, 1..t (reference 0 excluded)."""
    if restriction == "relative_magnitudes":
        pre_changes = scale * np.linspace(-1.0, 1.0, k)       # largest |change| = scale
        pre = -np.cumsum(pre_changes[::-1])[::-1]            # delta_0 = 0
        post = np.cumsum(np.full(t, factor * scale))
    else:
        slope = 0.5 * scale
        pre = slope * np.arange(-k, 0)
        steps = np.arange(1, t + 1)
        post = slope * steps + factor * scale * steps * (steps + 1) / 2
    return np.concatenate([pre, post])


def coverage(restriction: str, inside: bool, draws: int = 1000, seed: int = 0,
             l_vec=None) -> dict[str, float]:
    """Share of draws whose robust / original interval covers l'tau (tau = 0.1 in every post period)."""
    sigma, k, t = _cs_sigma()
    lv = resolve_l_vec(l_vec, t)
    scale = float(np.sqrt(sigma[k - 1, k - 1])) * (2.0 if restriction == "relative_magnitudes" else 1.0)
    bound = 1.0 if restriction == "relative_magnitudes" else 0.5 * scale
    factor = (1.0 if inside else 2.0) if restriction == "relative_magnitudes" else (0.5 if inside else 1.5)
    delta = _violation(restriction, k, t, scale, factor)
    tau = np.concatenate([np.zeros(k), np.full(t, 0.1)])
    theta = float(lv @ tau[k:])
    rng = np.random.default_rng(seed)
    draws_b = rng.multivariate_normal(tau + delta, sigma, size=draws)
    sd_theta = np.sqrt(lv @ sigma[k:, k:] @ lv)
    z = float(dist.norm.ppf(0.975))
    plain = np.abs(draws_b[:, k:] @ lv - theta) <= z * sd_theta
    if restriction == "smoothness":
        weights, half = flci_weights(sigma, k, lv, bound, 0.05)
        robust = np.abs(draws_b @ weights - theta) <= half
    else:
        robust = np.array([rm_accepts(b, sigma, k, t, lv, bound, 0.05, theta) for b in draws_b])
    out = {"robust": float(robust.mean()), "original": float(plain.mean()), "draws": draws}
    out["se"] = float(np.sqrt(0.95 * 0.05 / draws))
    return out


def _timing(restriction: str, l_vec) -> float:
    """Seconds for honest_did at 12 + 12 periods, default M values plus the breakdown search."""
    k = t = 12
    idx = np.arange(k + t)
    sigma = 0.02**2 * (0.5 ** np.abs(idx[:, None] - idx[None, :]) + 0.5)
    rng = np.random.default_rng(1)
    beta = np.concatenate([np.zeros(k), np.full(t, 0.1)]) + rng.multivariate_normal(np.zeros(k + t), sigma)
    start = time.perf_counter()
    honest_did(beta, sigma, k, t, restriction, l_vec=l_vec)
    return time.perf_counter() - start


def main(draws: int = 1000) -> None:
    print(f"mpdta Callaway-Sant'Anna Sigma (3 pre, 4 post), {draws} draws, nominal 0.95, MC se {np.sqrt(.0475 / draws):.4f}")
    for restriction in ("relative_magnitudes", "smoothness"):
        for l_name in (None, "average"):
            for inside in (True, False):
                c = coverage(restriction, inside, draws, seed=7, l_vec=l_name)
                print(f"{restriction:20s} l={l_name or 'first':8s} {'inside ' if inside else 'outside'} bound: "
                      f"robust {c['robust']:.3f} (MC se {np.sqrt(c['robust'] * (1 - c['robust']) / draws):.3f})"
                      f"  original {c['original']:.3f}")
    for restriction in ("relative_magnitudes", "smoothness"):
        for l_name in (None, "average"):
            print(f"12 + 12 periods, {restriction}, default M values + breakdown, l={l_name or 'first'}: "
                  f"{_timing(restriction, l_name):.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
