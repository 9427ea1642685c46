"""Concurrent model search: grid and random search, k-fold cross-validation and bagged ensembles.

Every job trains one model on rows of ONE shared float32 copy of the data: each job's trainer
gathers its batches by row index, so a thread-pool search holds the data once whatever the
number of models. Standardisation is fitted per job on that job's training rows only (column
moments computed in chunks) and applied to each gathered batch, so a held-out fold never leaks
into the scaling it is scored with; the trained model carries its scaler and predicts on raw X.
``backend="processes"`` runs the same jobs in worker
processes over a shared-memory copy instead. ``build(**params)`` makes each model; the
default :func:`mlp` takes ``hidden``, ``activation``, ``dropout``, ``optimizer``,
``learning_rate``, ``l2`` and ``loss`` (a process backend needs a module-level ``build``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine._validation import check_array
from ..engine.layers import Dense, Dropout
from ..engine.metrics import r2_score
from ..engine.network import Sequential
from ..engine.preprocessing import StandardScaler, column_moments
from ..training import Trainer, TrainingData
from .backends import Job, JobResult, peak_rss_mb, run_jobs

_SCORE_CHUNK = 4096


def mlp(hidden: Sequence[int] = (64,), activation: str = "relu", dropout: float = 0.0, optimizer: str = "adam",
        learning_rate: float | None = None, l2: float = 0.0, loss: str = "cross_entropy",
        n_outputs: int = 2, seed: int = 0) -> Sequential:
    """A multilayer perceptron on prepared (already standardised) inputs."""
    layers: list[Any] = []
    for units in hidden:
        layers.append(Dense(units, activation))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(n_outputs))
    return Sequential(layers, loss=loss, optimizer=optimizer, learning_rate=learning_rate, l2=l2,
                      preprocess=None, seed=seed)


class RowScaler:
    """A job's standardisation, applied in place to each gathered block of rows (fitted on the job's rows)."""

    def __init__(self, scaler: StandardScaler, dtype: np.dtype):
        self._shift = scaler.mean_.astype(dtype)
        self._inv_scale = (1.0 / scaler.scale_).astype(dtype)

    def __call__(self, block: NDArray) -> NDArray:
        block -= self._shift
        block *= self._inv_scale
        return block


def fit_scaler_on_rows(X: NDArray, rows: NDArray[np.int64], chunk: int = 512) -> StandardScaler:
    """StandardScaler of X[rows] without copying those rows at once."""
    return StandardScaler.from_moments(*column_moments(X, rows, chunk))


def train_job(job: Job, X: NDArray, y: NDArray, *, build: Callable[..., Sequential], n_outputs: int,
              fit_options: Mapping[str, Any]) -> JobResult:
    """Build, train on ``job.train_rows`` and score on ``job.score_rows``; runs in a thread or a process."""
    t0 = time.perf_counter()
    params = dict(job.params)
    params.setdefault("seed", job.seed)
    if build is mlp:
        params.setdefault("n_outputs", n_outputs)
    model = build(**params)
    scaler = fit_scaler_on_rows(X, job.train_rows)
    options = dict(fit_options)
    # every job trains on its rows of the ONE shared matrix, chosen by index and scaled batch by batch
    standardise = RowScaler(scaler, X.dtype)
    data = TrainingData(model.prepare_X(X, fit=True), model.prepare_y(y, fit=True), rows=job.train_rows,
                        transform=standardise, shuffle=options.pop("shuffle", True), seed=job.seed)
    history = Trainer(model, data=data, seed=job.seed, **options).run()
    model.preprocess = scaler  # from here on the model takes raw inputs, like any fitted Sequential
    score = None if job.score_rows is None else _score(model, standardise, X, y, job.score_rows)
    return JobResult(job.params, job.fold, score, time.perf_counter() - t0, peak_rss_mb(),
                     model if job.keep_model else None, {"loss": history["loss"]})


def _score(model: Sequential, standardise: RowScaler, X: NDArray, y: NDArray, rows: NDArray[np.int64]) -> float:
    """Accuracy for classification, R² for regression; rows are scored in chunks (no full copy)."""
    outputs = [model._raw_output(standardise(X[rows[i:i + _SCORE_CHUNK]]))
               for i in range(0, len(rows), _SCORE_CHUNK)]
    out = np.concatenate(outputs)
    truth = model.prepare_y(y[rows])
    if model.loss.task == "regression":
        return float(r2_score(truth, out))
    return float(np.mean(model.loss_predictions(out) == truth.reshape(-1)))


# ----------------------------------------------------------------- candidates and folds
def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in a fixed order."""
    keys = sorted(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def parameter_samples(distributions: Mapping[str, Any], n_iter: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n_iter`` random candidates: each value drawn from a list (uniformly) or a callable(rng)."""
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(n_iter):
        candidate = {}
        for key in sorted(distributions):
            source = distributions[key]
            candidate[key] = source(rng) if callable(source) else source[int(rng.integers(len(source)))]
        candidates.append(candidate)
    return candidates


def kfold_rows(n: int, k: int, seed: int = 0) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """(train rows, held-out rows) for each of k shuffled folds."""
    if not 2 <= k <= n:
        raise ValueError(f"cv must be an integer in [2, n_samples={n}], got {k}")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(folds[i])) for i in range(k)]


# ----------------------------------------------------------------- results
@dataclass
class SearchResult:
    """What a search found: one row per job, the mean score per candidate, the best candidate.

    Returned by :func:`~loomnet.grid_search`, :func:`~loomnet.random_search` and
    :func:`~loomnet.cross_validate`.

    Parameters
    ----------
    results : list of JobResult
        One per (candidate, fold): ``params``, ``fold``, ``score``, ``fit_time``,
        ``peak_rss_mb``, the ``pid`` that trained it, and the model when kept.
    wall_time : float
        Seconds the whole search took.
    backend : str
        Where the jobs ran: 'threads', 'processes' or 'mpi'.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> result = ln.grid_search({"hidden": [(8,), (16,)]}, iris.X, iris.y, cv=2, epochs=5, n_jobs=2)
    >>> [sorted(params) for params, score in result.candidates()]
    [['hidden'], ['hidden']]
    >>> result.best_score == max(score for _, score in result.candidates())
    True
    """

    results: list[JobResult]
    wall_time: float
    backend: str

    def candidates(self) -> list[tuple[dict[str, Any], float]]:
        """(params, mean score over folds) per candidate, best first."""
        groups: dict[str, tuple[dict[str, Any], list[float]]] = {}
        for r in self.results:
            groups.setdefault(repr(sorted(r.params.items())), (r.params, []))[1].append(r.score)
        means = [(params, float(np.mean(scores))) for params, scores in groups.values()]
        return sorted(means, key=lambda item: -item[1])

    @property
    def best_params(self) -> dict[str, Any]:
        return self.candidates()[0][0]

    @property
    def best_score(self) -> float:
        return self.candidates()[0][1]

    @property
    def peak_rss_mb(self) -> float:
        """Largest peak resident memory any job's process reported (threads: this process)."""
        return max(r.peak_rss_mb for r in self.results)


# ----------------------------------------------------------------- the searches
def prepare_rows(X: ArrayLike, y: ArrayLike) -> tuple[NDArray, NDArray, int]:
    """The shared float32 copy of X (one conversion, no scaling) and the outputs a classifier needs."""
    X_arr = np.asarray(X)
    if X_arr.ndim != 2 or len(X_arr) != len(np.asarray(y)):
        raise ValueError(f"X must be 2-D with one row per target, got X {X_arr.shape} and {len(np.asarray(y))} targets")
    X_shared = check_array(X_arr, name="X", dtype=np.float32)
    X_shared = np.ascontiguousarray(X_shared)
    y_arr = np.asarray(y)
    classify = y_arr.ndim == 1 and y_arr.dtype.kind not in "fc"
    return X_shared, y_arr, len(np.unique(y_arr)) if classify else 1


def run_search(candidates: Iterable[dict[str, Any]], X: ArrayLike, y: ArrayLike, *, cv: int = 3,
               build: Callable[..., Sequential] = mlp, backend: str = "threads", n_jobs: int | None = None,
               seed: int = 0, **fit_options: Any) -> SearchResult:
    """Cross-validate every candidate (each fold a job) on a pool; ``fit_options`` go to the Trainer.

    Parameters
    ----------
    candidates : iterable of dict
        Keyword arguments of ``build`` (for :func:`mlp`: hidden, activation, dropout, optimizer,
        learning_rate, l2, loss).
    X, y : array-like
        All rows; each job reads its fold's rows from this one copy and standardises them with a
        scaler fitted on its own training rows (no leakage across folds).
    cv : int
        Number of folds.
    build : callable
        Makes a model from a candidate's parameters (default :func:`mlp`).
    backend : {'threads', 'processes', 'mpi'}
        Where jobs run: threads share the data for free; processes map it from shared memory.
    n_jobs : int, optional
        Jobs at a time (default: the cores); BLAS threads are split between them.
    seed : int
        Seed of the folds and of every job.
    **fit_options
        Trainer options (epochs, batch_size, early_stopping, ...).

    Returns
    -------
    SearchResult
        Every job's score and fit time; ``candidates()``, ``best_params``, ``best_score``.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.search.jobs import run_search
    >>> iris = ln.datasets.load("iris")
    >>> result = run_search([{"hidden": (8,)}, {"hidden": (4, 4)}], iris.X, iris.y, cv=2, epochs=3)
    >>> [r.fold for r in result.results]
    [0, 1, 0, 1]
    """
    X_shared, y_arr, n_outputs = prepare_rows(X, y)
    folds = kfold_rows(len(X_shared), cv, seed)
    jobs = [Job(params, train, held_out, seed, fold)
            for params in candidates for fold, (train, held_out) in enumerate(folds)]
    run_one = partial(train_job, build=build, n_outputs=n_outputs, fit_options=fit_options)
    t0 = time.perf_counter()
    results = run_jobs(run_one, jobs, X_shared, y_arr, backend=backend, n_jobs=n_jobs)
    return SearchResult(results, time.perf_counter() - t0, backend)


def grid_search(param_grid: Mapping[str, Sequence[Any]], X: ArrayLike, y: ArrayLike, **options: Any) -> SearchResult:
    """Every combination of ``param_grid``, k-fold cross-validated concurrently.

    Parameters
    ----------
    param_grid : mapping of str to sequence
        The values to try for each parameter of the model builder.
    X, y : array-like
        Training rows and targets.
    **options
        ``cv``, ``backend``, ``n_jobs``, ``seed``, ``build`` and Trainer options (see :func:`run_search`).

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> result = ln.grid_search({"hidden": [(8,), (16,)], "learning_rate": [0.01]}, iris.X, iris.y,
    ...                         cv=2, epochs=5, backend="threads", n_jobs=2)
    >>> len(result.results), sorted(result.best_params)
    (4, ['hidden', 'learning_rate'])
    """
    return run_search(parameter_grid(param_grid), X, y, **options)


def random_search(distributions: Mapping[str, Any], X: ArrayLike, y: ArrayLike, *, n_iter: int = 10,
                  **options: Any) -> SearchResult:
    """``n_iter`` random candidates, k-fold cross-validated concurrently.

    Parameters
    ----------
    distributions : mapping of str to sequence or callable
        Per parameter, a list to choose from or ``f(rng) -> value``.
    X, y : array-like
        Training rows and targets.
    n_iter : int
        Number of candidates drawn (from ``seed``).
    **options
        As for :func:`grid_search`.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> result = ln.random_search({"hidden": [(8,), (16,)], "l2": lambda rng: 10 ** rng.uniform(-5, -2)},
    ...                           iris.X, iris.y, n_iter=2, cv=2, epochs=3)
    >>> len(result.candidates())
    2
    """
    return run_search(parameter_samples(distributions, n_iter, options.get("seed", 0)), X, y, **options)


def cross_validate(params: Mapping[str, Any], X: ArrayLike, y: ArrayLike, **options: Any) -> list[float]:
    """Held-out score of each of ``cv`` folds for one set of hyperparameters, folds trained concurrently.

    Parameters
    ----------
    params : mapping
        Keyword arguments of the model builder.
    X, y : array-like
        Training rows and targets.
    **options
        As for :func:`grid_search`.

    Returns
    -------
    list of float
        Accuracy (classification) or R² (regression) of each fold.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> len(ln.cross_validate({"hidden": (8,)}, iris.X, iris.y, cv=3, epochs=3))
    3
    """
    return [r.score for r in run_search([dict(params)], X, y, **options).results]
