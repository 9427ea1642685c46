"""How the estimators train: the core Trainer with scikit-learn's batch-level rules, and L-BFGS.

``sklearn_trainer`` hands :class:`loomnet.training.Trainer` two data objects: the epoch order
from scikit-learn's ``shuffle`` on the estimator's ``RandomState`` (so one ``random_state`` gives
the same batches in both libraries), and each batch's L2 strength α/Σw_batch, scikit-learn's
α/(2·n_batch)·ΣW² penalty. ``SklearnBookkeeping`` does scikit-learn's end-of-epoch work: the
fitted attributes, tol/n_iter_no_change stopping, early-stopping scores, invscaling/adaptive
learning rates.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning

from ..engine._validation import user_stacklevel
from ..engine.network import Sequential
from ..engine.params import StepWorkspace
from ..training import BatchL2, Callback, Trainer
from ..training.data import prepare_data

if TYPE_CHECKING:
    from ._base import BaseMLP

Array = NDArray[np.floating]


class SklearnOrder:
    """scikit-learn's order: the previous epoch's order, shuffled again by the estimator's RandomState.

    Drawn once per epoch, so asking twice changes nothing.
    """

    def __init__(self, n: int, random_state: np.random.RandomState):
        self.sample_idx = np.arange(n)
        self.random_state = random_state
        self.epoch = -1

    def __call__(self, epoch: int, n: int) -> NDArray[np.int64]:
        if epoch != self.epoch:
            self.sample_idx = sklearn_shuffle(self.sample_idx, self.random_state)
            self.epoch = epoch
        return self.sample_idx


def sklearn_trainer(model: Sequential, X: Array, y: NDArray, *, alpha: float, random_state: np.random.RandomState,
                    sample_weight: Array | None, shuffle: bool, seed: int | None, classes: NDArray | None,
                    **options: Any) -> Trainer:
    """The core Trainer with scikit-learn's order and its per-batch L2 (α/Σw_batch): data objects
    that every runner honours, asynchronous workers included."""
    data, _ = prepare_data(model, X, y, sample_weight=sample_weight, class_weight=None, validation_data=None,
                           validation_split=0.0, classes=classes, shuffle=shuffle, seed=0 if seed is None else seed)
    data.order = SklearnOrder(data.n_samples, random_state)
    return Trainer(model, data=data, penalty=BatchL2(alpha), seed=seed, **options)


def sklearn_shuffle(order: NDArray[np.int64], random_state: np.random.RandomState) -> NDArray[np.int64]:
    """``sklearn.utils.shuffle(order, random_state=random_state)`` without its per-call argument
    validation (a third of a small network's epoch): the same draws, the same permutation."""
    positions = np.arange(order.shape[0])
    random_state.shuffle(positions)
    return order[positions]


class SklearnBookkeeping(Callback):
    """scikit-learn's end-of-epoch logic (``_fit_stochastic``), writing the estimator's attributes."""

    def __init__(self, estimator: BaseMLP, n_train: int, validation: tuple | None, incremental: bool):
        self.estimator = estimator
        self.n_train = n_train
        self.validation = validation
        self.incremental = incremental

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool:
        est = self.estimator
        est.n_iter_ += 1
        est.loss_ = float(record["loss"])
        est.t_ += self.n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._update_no_improvement_count(trainer.model)
        schedule = trainer.model.optimizer.schedule
        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            schedule.learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.validation else "Training loss"
            msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
            if not (sgd and est.learning_rate == "adaptive") or schedule.learning_rate <= 1e-6:
                if est.verbose:
                    print(msg + " Stopping.")
                return True
            schedule.learning_rate /= 5.0
            est._no_improvement_count = 0
            if est.verbose:
                print(msg + f" Setting learning rate to {schedule.learning_rate:f}")
        if not self.incremental and est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return False

    def _update_no_improvement_count(self, model: Sequential) -> None:
        est = self.estimator
        if self.validation is not None:
            score = est._score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = model.params.copy()
            return
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])


def fit_lbfgs(
    model: Sequential,
    X: Array,
    y: NDArray,
    sample_weight: Array | None,
    *,
    alpha: float,
    max_iter: int,
    max_fun: int,
    tol: float,
) -> tuple[float, int]:
    """Minimise the full-batch loss + α/(2·Σw)·ΣW² with scipy's L-BFGS-B; return (loss, iterations)."""
    total_weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    model.l2 = alpha / total_weight
    ws = StepWorkspace()
    grad = np.empty_like(model.params)
    flat = np.empty_like(model.params)

    def loss_and_grad(x: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        np.copyto(flat, x, casting="unsafe")
        loss, _ = model.loss_and_grad(flat, X, y, sample_weight, grad=grad, training=False, ws=ws)
        return loss, grad.astype(np.float64)

    with np.errstate(over="ignore", invalid="ignore"):
        result = scipy.optimize.minimize(
            loss_and_grad,
            model.params.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
        )
    n_iter = int(min(result.nit, max_iter))
    if result.status != 0:
        warnings.warn(_lbfgs_warning(result, n_iter, max_iter), ConvergenceWarning, stacklevel=user_stacklevel())
    model.set_params(result.x.astype(model.dtype))
    return float(result.fun), n_iter


def _lbfgs_warning(result: Any, n_iter: int, max_iter: int) -> str:
    """scikit-learn's wording for an L-BFGS run that stopped short, so filters written for it match."""
    text = f"lbfgs failed to converge after {n_iter} iteration(s) (status={result.status}):\n{result.message}\n"
    if n_iter == max_iter:
        text += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
    return text + ("\nYou might also want to scale the data as shown in:\n"
                   "    https://scikit-learn.org/stable/modules/preprocessing.html")
