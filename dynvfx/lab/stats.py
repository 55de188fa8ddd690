"""The benchmarks' statistics: shares come with a 95 % Wilson interval (:func:`wilson`), means with a 95 %
bootstrap interval (:func:`bootstrap`), and two variants on the same pairs with a paired difference."""

from __future__ import annotations

import numpy as np


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(values: list[float], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its 95 % bootstrap interval."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if len(v) == 0:
        return float("inf"), float("inf"), float("inf")
    means = np.random.default_rng(seed).choice(v, (reps, len(v))).mean(1)
    return float(v.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired_difference(a: list[dict], b: list[dict], key: str = "success") -> tuple[float, float, float, int, int]:
    """``a`` minus ``b`` on the same pairs: the difference of the shares whose ``key`` holds, its 95 % bootstrap
    interval over pairs, and how many pairs only ``a`` / only ``b`` gets right (the discordant pairs)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} against {len(b)} rows; both must score the same pairs")
    d = [float(x[key]) - float(y[key]) for x, y in zip(a, b)]
    mean, lo, hi = bootstrap(d)
    return mean, lo, hi, sum(x > 0 for x in d), sum(x < 0 for x in d)


def share(rows: list[dict], key: str) -> str:
    """Share of ``rows`` whose ``key`` is true, with its 95 % interval, as text ("40% [17%, 69%]")."""
    return cell(rows, key)[1]


def cell(results: list[dict], key: str) -> tuple[float, str]:
    """Share of ``results`` whose check ``key`` holds, and that share with its 95 % interval as text."""
    hits = sum(bool(r[key]) for r in results)
    lo, hi = wilson(hits, len(results))
    share = hits / max(len(results), 1)
    return share, f"{share:.0%} [{lo:.0%}, {hi:.0%}]"
