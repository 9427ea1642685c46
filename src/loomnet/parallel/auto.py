"""``workers="auto"``: pick the mode and the split from the batch and layer sizes.

What the measurements on 2 cores showed (see the README): with small batches the matrix
products are too small for BLAS threads to pay off and a synchronous split only adds
hand-offs, so independent Hogwild workers win (1.2-1.5x the single worker at batch 32, about
what two processes sharing nothing reach). From batch 64 up, each core can take a slice of the
batch big enough to keep its BLAS busy, and the synchronous split keeps the single-worker
result; too small a slice and BLAS threads alone are faster.
With the GIL off (free-threaded CPython), the Python bookkeeping between those products runs on
every core as well, so a synchronous split pays off with slices four times smaller
(``FREE_THREADED_SLICE_FACTOR``), and a batch too small to split still runs Hogwild.
That is :func:`auto_plan`, from the shapes alone. But which wins depends on the machine and
its load (on a loaded machine, multi-threaded BLAS collapses), so ``workers="auto"`` times a
few training steps of each candidate (:func:`loomnet.parallel.runners.measure_plans`, through the one
epoch loop, on a scratch copy of the model) and keeps the fastest (:func:`choose_plan`).
"""

from __future__ import annotations

from .cores import available_cores, gil_enabled
from .plan import ParallelPlan

HOGWILD_MAX_BATCH = 32   # at or below: asynchronous workers
MIN_SLICE_ROWS = 32      # a synchronous micro-batch smaller than this leaves BLAS idle
MIN_SLICE_FLOPS = 2e6    # ... and so does one whose matrix products are tiny
HOGWILD_MARGIN = 1.2     # measured: Hogwild must be this much faster than sync to be chosen
PRIOR_MARGIN = 0.9       # the shapes' choice stands if it measures within 10% of the fastest of its kind
FREE_THREADED_SLICE_FACTOR = 4  # without the GIL, slices this many times smaller still pay off


def auto_plan(batch_size: int, layer_widths: list[int], cores: int | None = None,
              gil: bool | None = None) -> ParallelPlan:
    """Choose a plan for ``batch_size`` on a network with these widths, from the shapes alone.

    Batches of at most 32 rows go to Hogwild workers; larger ones are split over the cores when
    each slice is big enough to keep BLAS busy, else one worker runs every BLAS thread. This
    is the prior that ``workers="auto"`` then checks by timing a few steps of each candidate.

    Parameters
    ----------
    batch_size : int
        Rows per batch.
    layer_widths : list of int
        Units per layer, the inputs first.
    cores : int, optional
        The core budget; :func:`available_cores` by default.
    gil : bool, optional
        Whether the GIL is enabled; this interpreter's state by default. Without it, slices four
        times smaller still pay off.

    Returns
    -------
    ParallelPlan
        With its ``reason``.

    Examples
    --------
    >>> from loomnet.parallel import auto_plan
    >>> auto_plan(256, [784, 512, 256, 10], cores=2, gil=True).describe()
    'mode=sync, workers=2, 2 micro-batches, 1 BLAS thread(s) per worker (batch 256 gives each of 2 cores 128 rows)'
    >>> auto_plan(32, [64, 32, 10], cores=2, gil=True).mode
    'hogwild'
    """
    cores = available_cores() if cores is None else cores
    gil = gil_enabled() if gil is None else gil
    shrink = 1 if gil else FREE_THREADED_SLICE_FACTOR
    where = "" if gil else ", GIL off"
    if cores == 1:
        return ParallelPlan("sync", 1, 1, 1, "one core: nothing to split")
    flops_per_row = 6 * sum(a * b for a, b in zip(layer_widths, layer_widths[1:], strict=False))
    if batch_size <= HOGWILD_MAX_BATCH:
        return ParallelPlan("hogwild", cores, 1, 1,
                            f"batch {batch_size} <= {HOGWILD_MAX_BATCH}: too small to split, workers run async{where}")
    rows = batch_size // cores
    if rows >= MIN_SLICE_ROWS / shrink and rows * flops_per_row >= MIN_SLICE_FLOPS / shrink:
        return ParallelPlan("sync", cores, cores, 1,
                            f"batch {batch_size} gives each of {cores} cores {rows} rows{where}")
    return ParallelPlan("sync", 1, 1, cores,
                        f"slices of {rows} rows are too small: one worker, {cores} BLAS threads{where}")


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


def choose_plan(plans: list[ParallelPlan], rates: list[float], prior: ParallelPlan | None = None) -> ParallelPlan:
    """The plan to train with, given each plan's measured samples/s.

    The faster asynchronous plan (Hogwild or locked) must beat the best synchronous plan by
    ``HOGWILD_MARGIN`` to be chosen, because it gives up the exact, reproducible result. The
    ``prior`` (the shapes' choice) is kept when it is of the winner's kind (synchronous or
    asynchronous) and within ``PRIOR_MARGIN`` of it, so timing noise does not flip the choice
    within a kind; between kinds the margin alone decides (an asynchronous prior that measured
    slower than the synchronous winner once won "within 10 %" and then trained 27 % slower).
    The reason names every measured rate.

    Examples
    --------
    >>> from loomnet.parallel.auto import candidate_plans, choose_plan
    >>> plans = candidate_plans(32, 2)              # sync 2×1, sync 1×2, hogwild 2×1, locked 2×1
    >>> hogwild = plans[2]
    >>> choose_plan(plans, [18_000, 44_000, 40_600, 32_900], prior=hogwild).mode   # within 10 %, other kind
    'sync'
    >>> choose_plan(plans, [18_000, 30_000, 40_600, 42_000], prior=hogwild).mode   # same kind, within 10 %
    'hogwild'
    """
    best_sync = max(range(len(plans)), key=lambda i: rates[i] if plans[i].mode == "sync" else -1.0)
    chosen = best_sync
    asynchronous = [i for i, plan in enumerate(plans) if plan.mode != "sync"]
    if asynchronous:
        best_async = max(asynchronous, key=lambda i: rates[i])
        if rates[best_async] > HOGWILD_MARGIN * rates[best_sync]:
            chosen = best_async
    for i, plan in enumerate(plans):
        same_kind = (plan.mode == "sync") == (plans[chosen].mode == "sync")
        if prior is not None and plan.same_as(prior) and same_kind and rates[i] >= PRIOR_MARGIN * rates[chosen]:
            chosen = i
    plan = plans[chosen]
    timed = ", ".join(f"{p.mode} {p.workers}×{p.blas_threads} {r:,.0f}" for p, r in zip(plans, rates, strict=True))
    return ParallelPlan(plan.mode, plan.workers, plan.micro_batches, plan.blas_threads,
                        f"measured samples/s, mode workers×BLAS threads: {timed}")
