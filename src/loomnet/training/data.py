"""The data a run trains on, as objects handed to the loop: which rows, in what order, how a batch is gathered,
and how strong each batch's L2 is.

A :class:`TrainingData` is what the Trainer subclasses of earlier versions changed by overriding
methods: model search trains on a subset of the rows of one shared matrix and standardises each
gathered batch (``rows``, ``transform``); the scikit-learn estimators draw their order from a
``RandomState`` (``order``) and scale L2 per batch (:class:`BatchL2`); MPI ranks hold only their
own rows (:class:`loomnet.distributed.data.ShardedData`). ``gather`` writes into the caller's
buffers and treats rows independently, so workers may gather their slices of a batch at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine._validation import check_array
from .streams import epoch_permutation

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from ..engine.params import StepWorkspace

Array = NDArray[np.floating]
Order = Callable[[int, int], NDArray[np.int64]]  # (epoch, n) -> positions 0..n-1 in the epoch's order


class TrainingData:
    """Prepared training rows (model dtype, encoded targets) and how batches of them are drawn.

    Parameters
    ----------
    X, y : arrays
        Prepared inputs and targets (``Sequential.prepare_X`` / ``prepare_y``).
    sample_weight : array or None
        One weight per row of ``X`` (class weights folded in).
    rows : int array or None
        Train on these rows of ``X`` only (no copy); ``None`` is every row.
    transform : callable or None
        Applied in place to each gathered block of inputs, row by row (e.g. a scaler fitted on ``rows``).
    order : callable or None
        ``order(epoch, n)``: positions of the epoch's batches; default, a permutation from (seed, epoch).
    shuffle : bool
        ``False`` keeps the rows in their order every epoch.
    seed : int
        Seed of the default order.

    Examples
    --------
    Train on the first 100 rows only, with no copy of X, visiting them in order:

    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.training import TrainingData
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0).build(4)
    >>> data = TrainingData(model.prepare_X(iris.X), model.prepare_y(iris.y, fit=True),
    ...                     rows=np.arange(100), shuffle=False)
    >>> data.n_samples, data.epoch_order(0)[:3].tolist()
    (100, [0, 1, 2])
    >>> ln.Trainer(model, data=data, epochs=2).run().stop_reason
    'max_epochs'
    """

    def __init__(self, X: Array, y: NDArray, sample_weight: Array | None = None, *,
                 rows: NDArray[np.int64] | None = None, transform: Callable[[Array], Any] | None = None,
                 order: Order | None = None, shuffle: bool = True, seed: int = 0):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.transform, self.order, self.shuffle, self.seed = transform, order, bool(shuffle), int(seed)

    @property
    def n_samples(self) -> int:
        """How many rows an epoch visits."""
        return self.X.shape[0] if self.rows is None else len(self.rows)

    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """Row indices of ``X`` in the order the epoch visits them."""
        n = self.n_samples
        if not self.shuffle:
            positions = np.arange(n)
        elif self.order is not None:
            positions = self.order(epoch, n)
        else:
            positions = epoch_permutation(self.seed, epoch, n)
        return positions if self.rows is None else self.rows[positions]

    def gather(self, idx: NDArray[np.int64], ws: StepWorkspace) -> tuple[Array, NDArray, Array | None]:
        """Copy the rows ``idx`` into the workspace's buffers (no allocation once shapes repeat).

        ``mode="clip"``: with the default mode NumPy stages ``out`` in a temporary copy; the
        indices come from ``epoch_order`` and are always in range.
        """
        X, y = self.X, self.y
        Xb = X.take(idx, axis=0, mode="clip", out=ws.get("Xb", (len(idx), X.shape[1]), X.dtype))
        yb = y.take(idx, axis=0, mode="clip", out=ws.get("yb", (len(idx),) + y.shape[1:], y.dtype))
        wb = None
        if self.sample_weight is not None:
            w = self.sample_weight
            wb = w.take(idx, mode="clip", out=ws.get("wb", (len(idx),), w.dtype))
        if self.transform is not None:
            self.transform(Xb)
        return Xb, yb, wb

    def held_rows(self) -> NDArray[np.int64]:
        """The training rows this process holds (all an epoch visits): what BatchNorm measures.

        The set, not an epoch's order: drawing an order may advance a caller's random state."""
        return np.arange(self.X.shape[0]) if self.rows is None else self.rows

    def inputs(self, idx: NDArray[np.int64], ws: StepWorkspace) -> Array:
        """The prepared inputs of any of :meth:`held_rows` (the measuring pass of BatchNorm)."""
        return self.gather(idx, ws)[0]

    def batch_weight(self, idx: NDArray[np.int64]) -> float:
        """The batch's normaliser: its row count, or its total sample weight."""
        if self.sample_weight is None:
            return float(len(idx))
        return float(self.sample_weight.take(idx).sum())


class BatchL2:
    """scikit-learn's L2: α/(2·Σw_batch)·ΣW² on every batch, i.e. the strength α/Σw_batch.

    Handed to the Trainer as ``penalty``, it applies in every runner, asynchronous workers included.

    Parameters
    ----------
    alpha : float
        scikit-learn's ``alpha``.

    Examples
    --------
    >>> from loomnet.training import BatchL2
    >>> penalty = BatchL2(0.5)
    >>> penalty(10.0), penalty(0.0)                     # a batch of total weight 10; an empty one
    (0.05, 0.0)
    """

    def __init__(self, alpha: float):
        self.alpha = float(alpha)

    def __call__(self, batch_weight: float) -> float:
        return self.alpha / batch_weight if batch_weight > 0 else 0.0


def prepare_data(model: Sequential, X: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None,
                 class_weight: dict[Any, float] | str | None, validation_data: tuple[ArrayLike, ArrayLike] | None,
                 validation_split: float, classes: ArrayLike | None, shuffle: bool,
                 seed: int) -> tuple[TrainingData, tuple[Array, NDArray, NDArray] | None]:
    """Validate (X, y), carve out the validation rows, fit the preprocessing on the training rows
    only (validation data never leaks in) and encode both parts; return (data, validation)."""
    from ..engine._validation import check_consistent_length
    from ..engine.preprocessing import train_test_split

    X_arr = check_array(X, name="X")
    y_arr = np.asarray(y)
    check_consistent_length(X_arr, y_arr)
    w_arr = None if sample_weight is None else check_weights(sample_weight, X_arr.shape[0])
    if validation_data is None and validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        classify = model.loss.task != "regression" and y_arr.ndim == 1
        if classify and classes is None:
            classes = np.unique(y_arr)  # every class the data has, even one whose rows all land in validation
        parts = train_test_split(X_arr, y_arr, np.arange(len(y_arr)), test_size=validation_split,
                                 stratify=y_arr if classify else None, seed=seed)
        X_arr, Xv, y_arr, yv, tr_idx, _ = parts
        w_arr = None if w_arr is None else w_arr[tr_idx]
        validation_data = (Xv, yv)
    X_p = model.prepare_X(X_arr, fit=True)
    y_p = model.prepare_y(y_arr, fit=True, classes=classes)
    weights = combine_weights(model, w_arr, class_weight, y_p)
    val = None
    if validation_data is not None:
        Xv, yv = validation_data
        Xv_p, yv_p = model.prepare_X(Xv), model.prepare_y(yv)
        check_consistent_length(Xv_p, yv_p, "validation y")
        val = (Xv_p, yv_p, np.asarray(yv))
    return TrainingData(X_p, y_p, weights, shuffle=shuffle, seed=seed), val


def check_weights(sample_weight: ArrayLike, n: int) -> Array:
    """Sample weights as float64: one per row, non-negative, with a positive sum."""
    w = check_array(sample_weight, name="sample_weight", ndim=1).astype(np.float64)
    if w.shape[0] != n:
        raise ValueError(f"sample_weight has {w.shape[0]} entries but X has {n} samples")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be non-negative with a positive sum")
    return w


def combine_weights(model: Sequential, w: Array | None, class_weight: Any, y_enc: NDArray) -> Array | None:
    """Per-sample weights times class weights ('balanced' = n / (k · count))."""
    if class_weight is None:
        return None if w is None else w.astype(model.dtype)
    if model.classes_ is None:
        raise ValueError("class_weight needs a classification loss with class labels")
    codes = y_enc.reshape(-1).astype(np.int64)
    k = len(model.classes_)
    if class_weight == "balanced":
        counts = np.bincount(codes, minlength=k).astype(np.float64)
        per_class = np.where(counts > 0, len(codes) / (k * np.maximum(counts, 1)), 0.0)
    elif isinstance(class_weight, dict):
        unknown = set(class_weight) - set(model.classes_.tolist())
        if unknown:
            raise ValueError(f"class_weight names unknown classes {sorted(map(str, unknown))}; "
                             f"classes are {model.classes_.tolist()}")
        per_class = np.array([float(class_weight.get(c, 1.0)) for c in model.classes_.tolist()])
        if (per_class < 0).any():
            raise ValueError("class weights must be non-negative")
    else:
        raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
    combined = per_class[codes] * (1.0 if w is None else w)
    return combined.astype(model.dtype)


