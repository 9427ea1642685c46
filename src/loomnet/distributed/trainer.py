"""Data-parallel training across MPI ranks: the one training loop with an :class:`~.runner.MPIRunner`.

:func:`DistributedTrainer` reads this rank's rows (only those), fits the preprocessing on all
ranks' shards together, and returns a :class:`~loomnet.training.Trainer` whose data is the
rank's :class:`~.data.ShardedData` and whose runner shares every step with the other ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine._validation import check_array, check_positive
from ..engine.preprocessing import train_test_split
from ..training import Callback, EarlyStopping, OverfittingMonitor, Trainer
from ..training.data import check_weights, combine_weights
from .comm import Collective, agree_on_errors, get_collective, plan_threads
from .data import ShardedData, ShardPlan, fit_scaler_on_shards, open_rows, read_rows, row_chunks
from .runner import MPIRunner

if TYPE_CHECKING:
    from ..engine.network import Sequential

Array = NDArray[np.floating]
DETERMINISTIC_SHARDS = 8  # default shard count of the deterministic reduction: the same bits on 1..8 ranks


def DistributedTrainer(  # noqa: N802 - reads as the class it was: a Trainer shared by MPI ranks
    model: Sequential,
    X: ArrayLike | str,
    y: ArrayLike,
    *,
    comm: Any = None,
    deterministic: bool = False,
    micro_batches: int | None = None,
    threads: int = 1,
    blas_threads: int | None = None,
    timeout: float | None = None,
    epochs: int = 100,
    batch_size: int | str | None = 32,
    validation_data: tuple[ArrayLike | str, ArrayLike] | None = None,
    validation_split: float = 0.0,
    sample_weight: ArrayLike | None = None,
    class_weight: dict[Any, float] | str | None = None,
    shuffle: bool = True,
    loss_threshold: float | None = None,
    early_stopping: EarlyStopping | int | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: bool = False,
    seed: int | None = None,
    classes: ArrayLike | None = None,
    runner_class: Callable[..., MPIRunner] = MPIRunner,
) -> Trainer:
    """A :class:`~loomnet.training.Trainer` whose every step is shared by the ranks of an MPI communicator.

    Each rank copies only its own rows of ``X``, the preprocessing is fitted on all ranks'
    shards together, and every step's gradient is summed over the ranks before the one update
    they all apply. Rank 0 alone runs the callbacks and prints; stopping decisions are agreed by
    all ranks. A callback must not change the parameters or the optimiser (only rank 0 would):
    the ranks compare a parameter checksum after every epoch and raise if they differ.

    Parameters
    ----------
    model : Sequential
        The network, the same on every rank.
    X : array-like, memory map or str
        The full training matrix, or a ``.npy`` path (memory-mapped): a rank reads its own rows.
    y : array-like
        Targets of every row (read whole).
    comm : None, 'serial' or mpi4py communicator
        Where the ranks are (see :func:`~loomnet.distributed.get_collective`): ``None`` is
        ``MPI.COMM_WORLD``, or one process without mpi4py.
    deterministic : bool
        Reduce the gradient shard by shard in a fixed order, so the fitted parameters are the
        same bits on any number of ranks up to ``micro_batches``.
    micro_batches : int or None
        Number of fixed data shards (default: the number of ranks, or at least 8 when
        deterministic).
    threads : int
        Worker threads per rank, splitting the rank's rows.
    blas_threads : int or None
        BLAS threads per worker thread (default: the node's cores over ranks × threads); ranks ×
        threads × BLAS threads per node never exceeds its cores (``ValueError`` otherwise).
    timeout : float or None
        Seconds a rank waits for the others in a step before it aborts the job (default: wait).
    epochs, batch_size, validation_data, validation_split, sample_weight, class_weight, shuffle : see Trainer
        As for :class:`~loomnet.training.Trainer`; ``validation_data`` may be a ``.npy`` path
        too, and ``sample_weight`` holds one value per row of the full matrix.
    loss_threshold, early_stopping, callbacks, verbose, seed, classes : see Trainer
        As for :class:`~loomnet.training.Trainer`; ``callbacks`` and ``verbose`` act on rank 0.
    runner_class : callable
        Builds the runner from the collective and the shard plan (default
        :class:`~loomnet.distributed.runner.MPIRunner`).

    Returns
    -------
    Trainer
        Call ``.run()`` on every rank. ``trainer.runner`` is the :class:`MPIRunner`
        (``collective``, ``is_root``, ``blas_threads``).

    Raises
    ------
    ValueError
        For bad options or data, on every rank at once (a failure on one rank is agreed first,
        so no rank is left waiting).

    Examples
    --------
    One process (``comm="serial"``); under ``mpiexec -n 4`` the same code shares each step by four:

    >>> import loomnet as ln
    >>> from loomnet.distributed import DistributedTrainer
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(3)], seed=0)
    >>> trainer = DistributedTrainer(model, iris.X, iris.y, comm="serial", deterministic=True, epochs=3)
    >>> [record["epoch"] for record in trainer.run().records]
    [1, 2, 3]
    """
    collective: Collective = get_collective(comm)
    if timeout is not None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        collective.timeout = float(timeout)
    rank, size = collective.rank, collective.size
    threads = check_positive(threads, "threads", integer=True)
    if micro_batches is None:
        micro_batches = max(size, DETERMINISTIC_SHARDS) if deterministic else size
    micro_batches = check_positive(micro_batches, "micro_batches", integer=True)
    blas = plan_threads(collective, threads, blas_threads)
    if seed is None:
        seed = model.seed if model.seed is not None else collective.bcast(int(np.random.SeedSequence().entropy % 2**63))
    seed = int(seed)

    # Each phase is local to a rank; failures are agreed before the next collective.
    shards = _agreed(collective, _read_shards, "loading the data shards", model, collective, X, y, validation_data,
                     validation_split, sample_weight, micro_batches, seed)
    plan = shards["plan"]
    if model.preprocess is not None and not getattr(model.preprocess, "fitted_", False):
        fit_scaler_on_shards(model.preprocess, [shards["X"][s] for s in plan.local_slices()], collective)
    data, val = _agreed(collective, _prepare_shards, "preparing the data shards", model, shards, class_weight,
                        classes, shuffle, seed)
    runner = runner_class(collective, plan, micro_batches=micro_batches, deterministic=bool(deterministic),
                          threads=threads, blas_threads=blas, val_counts=shards["val_counts"])
    root = rank == 0
    return Trainer(model, data=data, validation=val, epochs=epochs, batch_size=batch_size,
                   loss_threshold=loss_threshold, early_stopping=early_stopping,
                   callbacks=list(callbacks) if root else [OverfittingMonitor(None)],
                   verbose=bool(verbose) and root, seed=seed, runner=runner)


def _agreed(collective: Collective, phase: Callable[..., Any], what: str, *args: Any) -> Any:
    """Run a local phase on every rank; if any rank fails, every rank raises (none is left waiting)."""
    result, error = None, None
    try:
        result = phase(*args)
    except Exception as exc:
        error = exc
    agree_on_errors(collective, error, what)
    return result


def _read_shards(model: Sequential, collective: Collective, X: Any, y: Any, validation_data: Any,
                 validation_split: float, sample_weight: Any, micro_batches: int, seed: int) -> dict[str, Any]:
    """Read this rank's training rows and validation rows; labels and weights are read whole."""
    rank, size = collective.rank, collective.size
    rows_source = open_rows(X)
    if rows_source.ndim != 2:
        raise ValueError(f"X must be 2-D (samples × features), got shape {rows_source.shape}")
    y_all = np.asarray(y)
    n_all = rows_source.shape[0]
    if y_all.shape[0] != n_all:
        raise ValueError(f"X has {n_all} samples but y has {y_all.shape[0]}")
    w_all = None if sample_weight is None else check_weights(sample_weight, n_all)
    train_rows: NDArray[np.int64] | None = None
    val_raw, y_val, val_counts = None, None, []
    if validation_data is None and validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        classify = model.loss.task != "regression" and y_all.ndim == 1
        train_rows, val_rows = train_test_split(
            np.arange(n_all), test_size=validation_split, seed=seed,
            stratify=y_all if classify else None)
        val_source, y_val = rows_source, y_all[val_rows]
        y_all = y_all[train_rows]
        w_all = None if w_all is None else w_all[train_rows]
    elif validation_data is not None:
        val_source, y_val = open_rows(validation_data[0]), np.asarray(validation_data[1])
        val_rows = np.arange(val_source.shape[0])
        if y_val.shape[0] != val_source.shape[0]:
            raise ValueError(f"validation X has {val_source.shape[0]} samples but validation y has "
                             f"{y_val.shape[0]}")
    if y_val is not None:
        cuts = [r * len(val_rows) // size for r in range(size + 1)]
        val_counts = [cuts[r + 1] - cuts[r] for r in range(size)]
        val_raw = read_rows(val_source, val_rows[cuts[rank]:cuts[rank + 1]])

    plan = ShardPlan.make(len(y_all), micro_batches, rank, size)
    lo, hi = plan.row_start, plan.row_stop
    local_raw = read_rows(rows_source, slice(lo, hi) if train_rows is None else train_rows[lo:hi])
    if len(local_raw):  # a rank may own no rows when there are more ranks than rows
        _check_rows(local_raw, lo if train_rows is None else train_rows[lo:hi], rank)
    if not model.built:
        model.build(rows_source.shape[1])
    return {"X": local_raw, "y": y_all, "w": w_all, "val_X": val_raw, "val_y": y_val, "val_counts": val_counts,
            "plan": plan}


def _prepare_shards(model: Sequential, shards: dict[str, Any], class_weight: Any, classes: Any, shuffle: bool,
                    seed: int) -> tuple[ShardedData, tuple | None]:
    """Scale and encode this rank's rows the way the one-process Trainer would."""
    y = model.prepare_y(shards["y"], fit=True, classes=classes)
    weights = combine_weights(model, shards["w"], class_weight, y)
    plan: ShardPlan = shards["plan"]
    data = ShardedData(_prepare_rows(model, shards["X"]), y, weights, row_start=plan.row_start,
                       n_samples=len(shards["y"]), shuffle=shuffle, seed=seed)
    y_val = shards["val_y"]
    val = None if y_val is None else (_prepare_rows(model, shards["val_X"]), model.prepare_y(y_val), y_val)
    return data, val


def _prepare_rows(model: Sequential, raw: NDArray) -> Array:
    """Scale rows into the model dtype a chunk at a time (the float64 temporaries stay small)."""
    prepared = np.empty((len(raw), model.n_features), dtype=model.dtype)
    for chunk in row_chunks(raw):
        prepared[chunk] = model.prepare_X(raw[chunk])
    return prepared


def _check_rows(rows: NDArray, global_index: int | NDArray[np.int64], rank: int) -> None:
    """Validate a rank's rows; a NaN or infinity is reported at its row number in the whole X."""
    for chunk in row_chunks(rows) if rows.dtype.kind == "f" else ():
        bad = np.argwhere(~np.isfinite(rows[chunk]))
        if len(bad):
            local_row, column = chunk.start + int(bad[0][0]), int(bad[0][1])
            row = global_index + local_row if isinstance(global_index, int) else int(global_index[local_row])
            raise ValueError(f"X contains NaN or infinity (first at row {row}, column {column}; "
                             f"in the shard of rank {rank})")
    for chunk in row_chunks(rows):
        check_array(rows[chunk], name=f"X (the shard of rank {rank})")
