"""Training from a :class:`PrefetchLoader`: data that need not fit in memory, e.g. a memory-mapped ``.npy``.

The preprocessing is fitted on a random sample of rows (``sample_rows``), because fitting it
on everything would need the whole matrix; then every batch is read, scaled and cast in the
loader's background thread while the main thread computes the previous step.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..network import StepWorkspace
from ..training import History, TrainingDivergedError
from .loader import PrefetchLoader, open_rows

if TYPE_CHECKING:
    from ..network import Sequential


def fit_stream(
    model: Sequential,
    X: ArrayLike | str | os.PathLike,
    y: ArrayLike,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    sample_rows: int = 10_000,
    depth: int = 4,
    classes: ArrayLike | None = None,
    verbose: bool = False,
) -> History:
    """Train ``model`` on rows streamed from ``X`` (an array, memory map or ``.npy`` path)."""
    source = open_rows(X)
    n = source.shape[0]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, sample_rows), replace=False))
    model.prepare_X(np.array(source[sample]), fit=True)
    y_prepared = model.prepare_y(y, fit=True, classes=classes)
    loader = PrefetchLoader(source, y_prepared, batch_size=batch_size, seed=seed, depth=depth,
                            transform=model.prepare_X)
    params, opt = model.params, model.optimizer
    grad, ws = np.zeros_like(params), StepWorkspace()
    history = History()
    model.history = history
    for epoch in range(epochs):
        t0, loss_sum, seen, waited = time.perf_counter(), 0.0, 0, loader.batches_waited
        for step, (Xb, yb, wb) in enumerate(loader.epoch(epoch)):
            rng_drop = np.random.default_rng([seed, 1, epoch, step]) if model.has_dropout else None
            loss, _ = model.loss_and_grad(params, Xb, yb, wb, grad=grad, rng=rng_drop, ws=ws)
            if not math.isfinite(loss):
                raise TrainingDivergedError(epoch + 1, step + 1, loss)
            opt.step(params, grad, opt.schedule(epoch, opt.iterations))
            loss_sum += loss * len(Xb)
            seen += len(Xb)
        elapsed = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "time": elapsed,
                  "samples_per_s": seen / max(elapsed, 1e-12), "batches_waited": loader.batches_waited - waited}
        history.records.append(record)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  loss {record['loss']:.4f}  "
                  f"{record['samples_per_s']:,.0f} samples/s", flush=True)
    return history
