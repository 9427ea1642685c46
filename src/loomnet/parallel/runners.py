"""Building the thread runners: a fixed plan's runner, and ``workers="auto"``'s measured choice."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from ..training import Callback, OverfittingMonitor, Trainer
from .auto import auto_plan, candidate_plans, choose_plan
from .cores import available_cores
from .hogwild import AsyncThreadRunner
from .plan import ParallelPlan, check_options, fixed_plan
from .sync import SyncThreadRunner

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from .threads import ThreadRunner

MEASURE_S, MIN_STEPS = 0.15, 3  # per candidate: at least this long and this many steps


def runner_for(plan: ParallelPlan) -> ThreadRunner:
    """The runner that carries out ``plan``."""
    if plan.mode == "sync":
        return SyncThreadRunner(plan)
    return AsyncThreadRunner(plan, locked=plan.mode == "locked")


def make_runner(trainer: Trainer, workers: int | str, mode: str, micro_batches: int | None) -> ThreadRunner:
    """``Trainer(workers=..., mode=..., micro_batches=...)``: check the options and build the runner."""
    if workers != "auto":
        return runner_for(fixed_plan(workers, mode, micro_batches, trainer.batch_size))
    check_options(workers, mode, micro_batches)
    widths = [trainer.model.n_features] + [layer.n_out for layer in trainer.model.layers]
    cores = available_cores()
    return runner_for(measure_plans(trainer, candidate_plans(trainer.batch_size, cores),
                                    auto_plan(trainer.batch_size, widths, cores)))


def measure_plans(trainer: Trainer, plans: list[ParallelPlan], prior: ParallelPlan | None = None,
                  budget_s: float = MEASURE_S) -> ParallelPlan:
    """The plan with the most samples/s over ``budget_s`` of training steps (see :func:`choose_plan`).

    Each plan trains a scratch copy of the model (its own parameters and optimiser: the model is
    not touched) through the same epoch loop and step as training, on the trainer's data.
    """
    if len(plans) == 1:
        return plans[0]
    return choose_plan(plans, [samples_per_s(trainer, plan, budget_s) for plan in plans], prior)


class _StepTimer(Callback):
    """Counts samples after a first warm-up step; stops the run once ``budget_s`` and ``MIN_STEPS`` are met."""

    def __init__(self, budget_s: float):
        self.budget_s, self.started, self.samples, self.steps, self.elapsed = budget_s, None, 0, 0, 0.0

    def on_batch_end(self, trainer: Any, epoch: int, step: int, batch_size: int, loss: float) -> None:
        now = time.perf_counter()
        if self.started is None:  # warm-up: buffers, views, caches
            self.started = now
            return
        self.samples += batch_size
        self.steps += 1
        self.elapsed = now - self.started
        if self.steps >= MIN_STEPS and self.elapsed >= self.budget_s:
            trainer.stop_requested = True


def scratch_model(model: Sequential) -> Sequential:
    """A model sharing ``model``'s layers and fitted preprocessing, with its own parameters and optimiser."""
    scratch = copy.copy(model)
    scratch.params = model.params.copy()
    scratch.layer_params = model.layout.views(scratch.params)
    scratch.optimizer = copy.deepcopy(model.optimizer)
    scratch.history = None
    return scratch


def samples_per_s(trainer: Trainer, plan: ParallelPlan, budget_s: float = MEASURE_S) -> float:
    """Sustained samples/s of training steps (gradient and update) under ``plan``, for ``budget_s``.

    Sustained, not best-of: a BLAS thread pool can be fast for one call and collapse over many
    on a loaded machine. Asynchronous workers run free, as in training.
    """
    data = copy.copy(trainer.data)
    data.order = None  # a custom order may draw from the caller's RandomState: timing must not
    timer = _StepTimer(budget_s)
    scratch = Trainer(scratch_model(trainer.model), data=data, penalty=trainer.step_def.penalty,
                      epochs=10_000, batch_size=trainer.batch_size, seed=trainer.seed,
                      callbacks=[timer, OverfittingMonitor(None)], runner=runner_for(plan))
    scratch.run()
    return timer.samples / max(timer.elapsed, 1e-12)
