"""``workers="auto"``: pick the mode and the split from the batch and layer sizes.

What the measurements on 2 cores showed (see the README): with small batches the matrix
products are too small for BLAS threads to pay off and a synchronous split only adds
hand-offs, so independent Hogwild workers win (1.2-1.5x the single worker at batch 32, about
what two processes sharing nothing reach). From batch 64 up, each core can take a slice of the
batch big enough to keep its BLAS busy, and the synchronous split keeps the single-worker
result; too small a slice and BLAS threads alone are faster.
That is :func:`auto_plan`, from the shapes alone. But which wins depends on the machine and
its load (on a loaded machine, multi-threaded BLAS collapses), so ``workers="auto"`` times a
few gradient steps of each candidate with :func:`measure_plans` and keeps the fastest.
"""

from __future__ import annotations

import copy
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from ..network import StepWorkspace
from ..optimizers import THREAD_BLOCK
from .cores import available_cores

HOGWILD_MAX_BATCH = 32   # at or below: asynchronous workers
MIN_SLICE_ROWS = 32      # a synchronous micro-batch smaller than this leaves BLAS idle
MIN_SLICE_FLOPS = 2e6    # ... and so does one whose matrix products are tiny
HOGWILD_MARGIN = 1.2     # measured: Hogwild must be this much faster than sync to be chosen
PRIOR_MARGIN = 0.9       # the shapes' choice stands if it measures within 10% of the fastest
MEASURE_S, MIN_STEPS = 0.15, 3  # per candidate: at least this long and this many steps


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


def candidate_plans(batch_size: int, cores: int) -> list[ParallelPlan]:
    """The plans ``workers="auto"`` times: a synchronous split, BLAS threads alone, Hogwild, and
    asynchronous workers with serialised updates ("locked": on 2 cores it beat lock-free Hogwild
    at every batch size of a benchmarks/threads.py run, 1.06-1.20x the single worker against
    0.95-1.07x: one worker's memory-bound update overlaps the other's matrix products instead of
    another update)."""
    if cores == 1:
        return [ParallelPlan("sync", 1, 1, 1, "one core: nothing to split")]
    plans = [ParallelPlan("sync", 1, 1, cores)]
    if batch_size >= cores:
        plans.insert(0, ParallelPlan("sync", cores, cores, 1))
    return plans + [ParallelPlan("hogwild", cores, 1, 1), ParallelPlan("locked", cores, 1, 1)]


def measure_plans(trainer, plans: list[ParallelPlan], prior: ParallelPlan | None = None,  # noqa: ANN001
                  budget_s: float = MEASURE_S) -> ParallelPlan:
    """The plan with the most samples/s over ``budget_s`` of training steps on the trainer's first batch.

    Synchronous plans time batch steps; Hogwild times its workers each taking a step at once.
    The steps update scratch copies: the model's parameters and optimiser are not touched.
    The faster asynchronous plan (Hogwild or locked) must beat the best synchronous plan by
    ``HOGWILD_MARGIN`` to be chosen, because it gives up the exact, reproducible result. The
    ``prior`` (the shapes' choice) is kept when it is within ``PRIOR_MARGIN`` of the winner,
    so timing noise does not flip it.
    """
    if len(plans) == 1:
        return plans[0]
    idx = trainer.epoch_order(0)[:trainer.batch_size]
    Xb, yb, wb = trainer.gather(idx)
    Xb, yb = Xb.copy(), yb.copy()
    rates = [_samples_per_s(trainer, plan, idx, Xb, yb, wb, budget_s) for plan in plans]
    best_sync = max(range(len(plans)), key=lambda i: rates[i] if plans[i].mode == "sync" else -1.0)
    chosen = best_sync
    asynchronous = [i for i, plan in enumerate(plans) if plan.mode != "sync"]
    if asynchronous:
        best_async = max(asynchronous, key=lambda i: rates[i])
        if rates[best_async] > HOGWILD_MARGIN * rates[best_sync]:
            chosen = best_async
    for i, plan in enumerate(plans):
        if prior is not None and _same(plan, prior) and rates[i] >= PRIOR_MARGIN * rates[chosen]:
            chosen = i
    plan = plans[chosen]
    timed = ", ".join(f"{p.mode} {p.workers}×{p.blas_threads} {r:,.0f}" for p, r in zip(plans, rates, strict=True))
    return ParallelPlan(plan.mode, plan.workers, plan.micro_batches, plan.blas_threads,
                        f"measured samples/s, mode workers×BLAS threads: {timed}")


def _same(a: ParallelPlan, b: ParallelPlan) -> bool:
    return (a.mode, a.workers, a.micro_batches, a.blas_threads) == (b.mode, b.workers, b.micro_batches, b.blas_threads)


def _samples_per_s(trainer, plan: ParallelPlan, idx, Xb, yb, wb, budget_s: float) -> float:  # noqa: ANN001
    """Sustained samples/s of training steps (gradient and update) under ``plan``, for ``budget_s``.

    The updates go to a copy of the parameters with copies of the optimiser: the model is not
    trained. Sustained, not best-of: a BLAS thread pool can be fast for one call and collapse
    over many on a loaded machine.
    """
    from .cores import blas_limits
    from .pool import WorkerPool
    from .sync import SyncWorkers

    model = trainer.model
    scratch = model.params.copy()
    optimizers = [copy.deepcopy(model.optimizer) for _ in range(plan.workers)]
    lr = model.optimizer.schedule(0, 0)
    with blas_limits(plan.blas_threads), WorkerPool(plan.workers) as pool:
        if plan.mode == "sync":
            sync = SyncWorkers(trainer, plan.micro_batches, pool)
            opt = optimizers[0]
            fold = opt.folds_learning_rate

            def run() -> None:
                if trainer._whole_steps_allowed(opt):  # the path Trainer.train_step will take
                    sync.train_step(idx, 0, 0, lr if fold else 1.0, opt.begin_step(scratch, lr, grad_scaled=fold))
                else:
                    sync.compute_gradient(Xb, yb, wb, 0, 0)
                    opt.step(scratch, trainer.grad, lr)

            run()  # warm-up: buffers, views, caches
            steps, t0 = 0, time.perf_counter()
            while steps < MIN_STEPS or time.perf_counter() - t0 < budget_s:
                run()
                steps += 1
            return len(Xb) * steps / (time.perf_counter() - t0)

        # Asynchronous workers run free, as in training: stepping them in lockstep would hide
        # how their phases drift apart (one updating while the other multiplies matrices).
        grads = [np.zeros_like(scratch) for _ in range(plan.workers)]
        blocks = [np.empty(min(scratch.size, THREAD_BLOCK), scratch.dtype) for _ in range(plan.workers)]
        workspaces = [StepWorkspace() for _ in range(plan.workers)]
        guard = threading.Lock() if plan.mode == "locked" else nullcontext()
        fold = model.optimizer.folds_learning_rate  # as HogwildEpochs
        counts = [0] * plan.workers
        deadline = [0.0]

        def one_step(t: int) -> None:
            rng = trainer.dropout_rng(0, 0, t)
            model.loss_and_grad(scratch, Xb, yb, wb, grad=grads[t], rng=rng, ws=workspaces[t],
                                grad_scale=lr if fold else 1.0)
            with guard:
                optimizers[t].step(scratch, grads[t], lr, grad_scaled=fold, scratch=blocks[t])

        def free_run(t: int) -> None:
            count = 0
            while count < MIN_STEPS or time.perf_counter() < deadline[0]:
                one_step(t)
                count += 1
            counts[t] = count

        pool.run(one_step)  # warm-up
        t0 = time.perf_counter()
        deadline[0] = t0 + budget_s
        pool.run(free_run)
        return len(Xb) * sum(counts) / (time.perf_counter() - t0)
