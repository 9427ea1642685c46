"""``workers="auto"``: pick the mode and the split from the batch and layer sizes.

What the measurements on 2 cores showed (see the README): with small batches the matrix
products are too small for BLAS threads to pay off and a synchronous split only adds
hand-offs, so independent Hogwild workers win (1.9× at batch 32). From batch 64 up, each
core can take a slice of the batch big enough to keep its BLAS busy, and the synchronous
split keeps the single-worker result; too small a slice and BLAS threads alone are faster.
Between those (batch > 32, slices big enough), which of the two wins depends on the machine
and its load, so ``measure_plans`` times one gradient step of each and keeps the faster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .cores import available_cores

HOGWILD_MAX_BATCH = 32   # at or below: asynchronous workers
MIN_SLICE_ROWS = 32      # a synchronous micro-batch smaller than this leaves BLAS idle
MIN_SLICE_FLOPS = 2e6    # ... and so does one whose matrix products are tiny


@dataclass(frozen=True)
class ParallelPlan:
    """How training runs: mode, number of workers, micro-batches and BLAS threads per worker."""

    mode: str
    workers: int
    micro_batches: int
    blas_threads: int
    reason: str = ""

    def describe(self) -> str:
        split = f", {self.micro_batches} micro-batches" if self.mode == "sync" else ""
        text = f"mode={self.mode}, workers={self.workers}{split}, {self.blas_threads} BLAS thread(s) per worker"
        return f"{text} ({self.reason})" if self.reason else text


def auto_plan(batch_size: int, layer_widths: list[int], cores: int | None = None) -> ParallelPlan:
    """Choose a plan for ``batch_size`` on a network with these widths (inputs first), from the shapes alone."""
    cores = available_cores() if cores is None else cores
    if cores == 1:
        return ParallelPlan("sync", 1, 1, 1, "one core: nothing to split")
    flops_per_row = 6 * sum(a * b for a, b in zip(layer_widths, layer_widths[1:], strict=False))
    if batch_size <= HOGWILD_MAX_BATCH:
        return ParallelPlan("hogwild", cores, 1, 1,
                            f"batch {batch_size} <= {HOGWILD_MAX_BATCH}: too small to split, workers run async")
    rows = batch_size // cores
    if rows >= MIN_SLICE_ROWS and rows * flops_per_row >= MIN_SLICE_FLOPS:
        return ParallelPlan("sync", cores, cores, 1,
                            f"batch {batch_size} gives each of {cores} cores {rows} rows")
    return ParallelPlan("sync", 1, 1, cores,
                        f"slices of {rows} rows are too small: one worker, {cores} BLAS threads")


def candidate_plans(plan: ParallelPlan, cores: int) -> list[ParallelPlan]:
    """The plans worth timing against ``plan``: a synchronous split against BLAS threads alone."""
    if plan.mode != "sync" or cores == 1 or plan.workers == 1:
        return [plan]
    return [plan, ParallelPlan("sync", 1, 1, cores)]


def measure_plans(trainer, plans: list[ParallelPlan], repeats: int = 3) -> ParallelPlan:  # noqa: ANN001
    """The plan whose synchronous gradient step on the trainer's first batch is fastest (best of ``repeats``).

    Only gradients are computed (into ``trainer.grad``); the parameters are not touched.
    """
    from .cores import blas_limits
    from .pool import WorkerPool
    from .sync import SyncGradient

    idx = trainer.epoch_order(0)[:trainer.batch_size]
    Xb, yb, wb = trainer.gather(idx)
    timings = []
    for plan in plans:
        with blas_limits(plan.blas_threads), WorkerPool(plan.workers) as pool:
            step = SyncGradient(trainer, plan.micro_batches, pool)
            best = float("inf")
            for _ in range(repeats + 1):  # the first call warms buffers up
                t0 = time.perf_counter()
                step.compute_gradient(Xb, yb, wb, 0, 0)
                best = min(best, time.perf_counter() - t0)
            timings.append(best)
    fastest = min(range(len(plans)), key=timings.__getitem__)
    plan = plans[fastest]
    others = ", ".join(f"{p.workers}×{p.blas_threads} {t * 1e3:.2f} ms" for p, t in zip(plans, timings, strict=True))
    return ParallelPlan(plan.mode, plan.workers, plan.micro_batches, plan.blas_threads,
                        f"measured a step (workers×BLAS threads: {others})")
