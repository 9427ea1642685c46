"""Shared pieces of the benchmark suite: data, FLOP counting, the machine's sgemm peak, timing, tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray


def synthetic_classification(
    n: int, n_features: int, n_classes: int, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """MNIST-shaped float32 data whose labels a network can learn: y = argmax(X·R) for a random R."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features), dtype=np.float32)
    R = rng.standard_normal((n_features, n_classes), dtype=np.float32)
    y = np.argmax(X @ R, axis=1).astype(np.int64)
    return X, y


def weight_counts(n_features: int, hidden: Sequence[int], n_outputs: int) -> list[int]:
    """Weights (no biases) of each dense layer of an MLP."""
    widths = [n_features, *hidden, n_outputs]
    return [a * b for a, b in zip(widths[:-1], widths[1:], strict=True)]


def training_flops_per_sample(weights: Sequence[int]) -> int:
    """FLOPs of one sample's training step: forward 2·W, weight gradients 2·W, and input gradients
    2·W for every layer but the first (nobody needs dL/dX). Elementwise work is not counted."""
    return 4 * sum(weights) + 2 * sum(weights[1:])


def inference_flops_per_sample(weights: Sequence[int]) -> int:
    return 2 * sum(weights)


def sgemm_peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best float32 matrix-multiply rate NumPy's BLAS reaches here (size³ products, best of several)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(threads):
        np.matmul(a, b, out=out)
        best = min(_time_once(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable in a terminal), columns padded to their widest cell."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) if isinstance(v, (int, float)) else c.ljust(w)
                              for c, v, w in zip(r, row, widths, strict=True)) + " |"
            for r, row in zip(cells, rows, strict=True)]
    return "\n".join([line, rule, *body])


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)
