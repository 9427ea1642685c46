"""``workers="auto"``: pick the mode and the split from the batch and layer sizes.

What the measurements on 2 cores showed (see the README): with small batches the matrix
products are too small for BLAS threads to pay off and a synchronous split only adds
hand-offs, so independent Hogwild workers win (1.9× at batch 32). From batch 64 up, each
core can take a slice of the batch big enough to keep its BLAS busy, and the synchronous
split keeps the single-worker result; too small a slice and BLAS threads alone are faster.
"""

from __future__ import annotations

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
    """Choose a plan for ``batch_size`` on a network with these widths (inputs first)."""
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
