"""The optimiser machinery: the base class, one step's update over any range of the flat arrays
(:class:`StepUpdate`), block sizes and clipping. The update rules are in :mod:`.optimizers`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .schedules import Schedule, get_schedule

Array = NDArray[np.floating]

# Elements per block: parameters, gradient, scratch and up to two state arrays, 256 KiB each in
# float32, fit the 2 MiB L2 cache together. After a backward pass has evicted the caches the
# arrays stream from memory whatever the block, so blocking gains only about 5 % there
# (benchmarks/optimizer_blocks.py: 64k-128k best, 16k pays NumPy's per-call overhead); it also
# keeps the scratch buffer one block long instead of a full copy of the parameters.
BLOCK = 1 << 16
# Block for updates run by worker threads (Hogwild, sync chunks): every NumPy call hands the GIL
# over, and with another thread waiting a hand-over costs more than a cache-sized block's
# arithmetic; 4 MiB of float32 still bounds the scratch buffer each worker keeps.
THREAD_BLOCK = 1 << 20

# What the state arrays mean. 1 (loomnet 0.1): SGD's velocity in gradient units (PyTorch's
# buffer), Adam's m and v as written. 2: SGD's velocity in parameter units, Adam's moments
# divided by (1-β). Older states are converted when loaded (``_upgrade_form_1``).
STATE_FORM = 2


class Optimizer:
    """Base class of the optimisers: ``step(params, grad)`` updates ``params`` in place.

    The parameters and the gradient are the model's flat arrays. A new rule overrides
    ``_update(params, grad, scratch, state, coef)``, which updates one block: ``params``,
    ``grad`` and each array of ``state`` (named by ``_state_names``, zeros at first, saved in
    checkpoints) are views of the same elements, ``scratch`` is free workspace of their length,
    and ``coef`` holds this step's scalars from ``_coefficients(lr)`` (the learning rate by
    default). Because the update is elementwise, threads may update disjoint ranges at once
    (:meth:`begin_step`).

    Parameters
    ----------
    learning_rate : float or Schedule, default 0.01
        The step size, or a schedule of it (``loomnet.engine.schedules``).
    clip_norm : float, optional
        Rescale the gradient so its global L2 norm is at most this before each update.

    Raises
    ------
    ValueError
        If ``clip_norm`` is not positive.

    Examples
    --------
    sign SGD, θ ← θ - lr·sign(g), in four lines:

    >>> import numpy as np
    >>> from loomnet.engine.optimizer_base import Optimizer
    >>> class SignSGD(Optimizer):
    ...     name = "sign_sgd"
    ...     def _update(self, params, grad, scratch, state, coef):
    ...         np.sign(grad, out=scratch)
    ...         scratch *= coef[0]
    ...         params -= scratch
    >>> opt = SignSGD(learning_rate=0.1)
    >>> params = np.array([1.0, -2.0, 3.0])
    >>> opt.step(params, np.array([0.5, -0.1, 0.0]))
    >>> params, opt.iterations
    (array([ 0.9, -1.9,  3. ]), 1)

    Hand it to a model as ``Sequential(layers, optimizer=SignSGD(0.01))``.
    """

    name = "optimizer"
    _state_names: tuple[str, ...] = ()
    takes_scaled_gradient = False  # True: step(grad_scaled=True) accepts lr·g in place of g

    def __init__(self, learning_rate: float | Schedule = 0.01, clip_norm: float | None = None):
        self.schedule = get_schedule(learning_rate)
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive, got {clip_norm}")
        self.clip_norm = clip_norm
        self.iterations = 0
        self._state: dict[str, Array] = {}
        self._scratch: Array | None = None  # one block of workspace (or the whole array if smaller)
        self._prepared_for: tuple | None = None  # (shape, dtype) the state and scratch were made for

    @property
    def learning_rate(self) -> float:
        return self.schedule.learning_rate

    @property
    def folds_learning_rate(self) -> bool:
        """Whether ``step(grad_scaled=True)`` applies: the update is linear in lr·g and no
        clipping needs g's own norm. Training loops then let the backward pass scale by lr."""
        return self.takes_scaled_gradient and self.clip_norm is None

    def step(self, params: Array, grad: Array, lr: float | None = None, epoch: int = 0, *,
             grad_scaled: bool = False, scratch: Array | None = None) -> None:
        """Apply one update; ``grad`` may be rescaled in place by clipping.

        ``grad_scaled``: ``grad`` already holds lr·g for this step's ``lr`` (only optimisers
        with ``takes_scaled_gradient``, and not with ``clip_norm``, which needs g's own norm).
        ``scratch``: workspace whose length sets the block (see :meth:`StepUpdate.apply`).
        """
        if params.ndim != 1:  # the update walks one flat array: take contiguous arrays as flat views
            params, grad = _flat_view(params, "params"), _flat_view(grad, "grad")
        if lr is None:
            lr = self.schedule(epoch, self.iterations)
        if grad_scaled:
            self._check_scaled(grad_scaled)
        if self.clip_norm is not None:
            clip_by_global_norm(grad, self.clip_norm)
        coef = self._next_coefficients(params, lr)
        _apply(self, params, grad, coef, grad_scaled, 0, params.shape[0], self._scratch if scratch is None else scratch)

    def begin_step(self, params: Array, lr: float, *, grad_scaled: bool = False) -> StepUpdate:
        """The once-per-step part of :meth:`step` (iteration count, this step's scalars); the
        returned :class:`StepUpdate` applies the step to any range of the flat arrays.

        Clipping is not part of it: it needs the whole gradient's norm first.
        """
        self._check_scaled(grad_scaled)
        if params.ndim != 1:
            params = _flat_view(params, "params")
        return StepUpdate(self, params, self._next_coefficients(params, lr), grad_scaled)

    def _next_coefficients(self, params: Array, lr: float) -> tuple[np.floating, ...]:
        """Count the step and return its scalars in the parameters' dtype (state made on first use)."""
        if self._prepared_for != (params.shape, params.dtype):
            self._prepare(params)
        self.iterations += 1
        return tuple(map(params.dtype.type, self._coefficients(float(lr))))

    def _check_scaled(self, grad_scaled: bool) -> None:
        if grad_scaled and not self.folds_learning_rate:
            raise ValueError(f"{type(self).__name__}"
                             f"{' with clip_norm' if self.takes_scaled_gradient else ''} needs the unscaled gradient")

    def _prepare(self, params: Array) -> None:
        """State arrays shaped like ``params`` (zeros unless loaded) and one block of scratch."""
        for name in self._state_names:
            state = self._state.get(name)
            if state is None or state.shape != params.shape:
                self._state[name] = np.zeros_like(params)
        self._scratch = np.empty(min(params.shape[0], BLOCK), dtype=params.dtype)
        self._prepared_for = (params.shape, params.dtype)

    def _coefficients(self, lr: float) -> tuple[float, ...]:
        """This step's scalars (learning rate, decay factors, bias corrections), computed once
        per step and handed to every block in the parameters' dtype: NumPy converts a Python
        float on every call, which costs as much as the arithmetic on a cache-sized block."""
        return (lr,)

    def _update(self, params: Array, grad: Array, scratch: Array, state: dict[str, Array],
                coef: tuple[np.floating, ...]) -> None:
        """Update one block: ``params``, ``grad`` and each ``state`` array are views of the same
        elements; ``scratch`` is free workspace of their length; ``coef`` from ``_coefficients``."""
        raise NotImplementedError

    def _update_scaled(self, params: Array, grad: Array, scratch: Array, state: dict[str, Array],
                       coef: tuple[np.floating, ...]) -> None:
        """``_update`` for a block of lr·g (optimisers with ``takes_scaled_gradient``)."""
        raise NotImplementedError

    def _uses_scratch(self, grad_scaled: bool) -> bool:
        """Whether this update writes a temporary: if not, it runs in one block whatever its length."""
        return True

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: iteration count, state arrays, schedule state."""
        return {
            "iterations": self.iterations,
            "arrays": {k: v.copy() for k, v in self._state.items()},
            "schedule": self.schedule.state_dict(),
            "form": STATE_FORM,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        arrays = {k: np.array(v, copy=True) for k, v in state["arrays"].items()}
        if int(state.get("form", 1)) < STATE_FORM:
            arrays = self._upgrade_form_1(arrays)  # may refuse: nothing has been changed yet
        self.schedule.load_state_dict(state.get("schedule", {}))
        self.iterations = int(state["iterations"])
        self._state = arrays
        self._scratch = self._prepared_for = None

    def __setstate__(self, attributes: dict[str, Any]) -> None:
        """Unpickling (scikit-learn estimators are pickled with their optimiser): an object
        pickled by loomnet 0.1 has no ``_prepared_for`` and its state arrays are in form 1."""
        old = "_prepared_for" not in attributes
        self.__dict__.update(attributes)
        if old:
            self._state = self._upgrade_form_1({k: np.array(v, copy=True) for k, v in self._state.items()})
            self._scratch = self._prepared_for = None

    def _upgrade_form_1(self, arrays: dict[str, Array]) -> dict[str, Array]:
        """State saved by loomnet 0.1 (no "form"), in this version's form; unchanged by default."""
        return arrays

    def reset(self) -> None:
        """Forget all state (a fresh fit)."""
        self.iterations = 0
        self._state = {}
        self._scratch = self._prepared_for = None

    def get_config(self) -> dict[str, Any]:
        cfg = {"name": self.name, "learning_rate": self.schedule.get_config(), "clip_norm": self.clip_norm}
        cfg.update(self._hyper())
        return cfg

    def _hyper(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"learning_rate": self.learning_rate, **self._hyper()}.items())
        return f"{type(self).__name__}({args})"


class StepUpdate:
    """One optimiser step with its scalars fixed: ``apply`` updates any range of the parameters.

    Why: in synchronous data-parallel training each worker adds up one chunk of the gradient;
    updating that chunk at once, on that worker, spreads the update over the cores while the
    chunk is still in cache. The update is elementwise, so any split gives the same bits.
    Made by :meth:`Optimizer.begin_step`, not by hand.

    Parameters
    ----------
    optimizer : Optimizer
        The optimiser whose state the step updates.
    params : ndarray
        The flat parameters.
    coef : tuple of numpy scalars
        This step's scalars, in the parameters' dtype.
    grad_scaled : bool
        Whether the gradient handed to ``apply`` already holds lr·g.

    Examples
    --------
    Two halves of one SGD step, as two workers would apply them:

    >>> import numpy as np
    >>> import loomnet as ln
    >>> params, grad = np.zeros(4), np.ones(4)
    >>> update = ln.SGD(0.5).begin_step(params, lr=0.5)
    >>> update.apply(grad, 0, 2)
    >>> update.apply(grad, 2, 4)
    >>> params
    array([-0.5, -0.5, -0.5, -0.5])
    """

    __slots__ = ("optimizer", "params", "coef", "grad_scaled", "applied")

    def __init__(self, optimizer: Optimizer, params: Array, coef: tuple[np.floating, ...], grad_scaled: bool):
        self.optimizer, self.params, self.coef, self.grad_scaled = optimizer, params, coef, grad_scaled
        self.applied = False  # set by the first apply: from then on the step has (partly) happened

    def apply(self, grad: Array, lo: int = 0, hi: int | None = None, scratch: Array | None = None) -> None:
        """Update ``params[lo:hi]`` from ``grad[lo:hi]`` (flat, as the parameters) in blocks as
        long as ``scratch`` (by default the optimiser's own: ``min(BLOCK, n)``; one block when the
        update needs no temporary, see ``_uses_scratch``). Calls on disjoint ranges may run at
        once in several threads, each with its own scratch. Threads want long blocks: every NumPy
        call hands the GIL over, and a hand-over costs more than a short block's arithmetic."""
        self.applied = True
        opt, params = self.optimizer, self.params
        if grad.shape != params.shape:
            grad = _flat_view(grad, "grad")
        _apply(opt, params, grad, self.coef, self.grad_scaled, lo, params.shape[0] if hi is None else hi,
               opt._scratch if scratch is None else scratch)

    def cancel(self) -> None:
        """The step was not applied (its loss diverged, a worker failed): the iteration count
        goes back. Refused once any range has been updated."""
        if self.applied:
            raise RuntimeError("this step has been applied (in part): it cannot be cancelled")
        self.optimizer.iterations -= 1


def _apply(opt: Optimizer, params: Array, grad: Array, coef: tuple[np.floating, ...], grad_scaled: bool,
           lo: int, hi: int, scratch: Array) -> None:
    """The update of ``params[lo:hi]``, in blocks as long as ``scratch`` (one block when the
    update writes no temporary)."""
    update = opt._update_scaled if grad_scaled else opt._update
    n = params.shape[0]
    block = scratch.shape[0] if opt._uses_scratch(grad_scaled) else max(hi - lo, 1)
    if lo == 0 and hi == n <= block:  # one block: no slicing at all
        update(params, grad, scratch if scratch.shape[0] == n else scratch[:n], opt._state, coef)
        return
    for start in range(lo, hi, block):
        stop = min(start + block, hi)
        state = {name: arr[start:stop] for name, arr in opt._state.items()}
        update(params[start:stop], grad[start:stop], scratch[: stop - start], state, coef)


def _flat_view(array: Array, name: str) -> Array:
    """A 1-D view of a C-contiguous array (a reshaped copy would not receive the update)."""
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be one flat array or a C-contiguous one, got a non-contiguous "
                         f"array of shape {array.shape}")
    return array.reshape(-1)


def clip_by_global_norm(grad: Array, max_norm: float) -> float:
    """Scale ``grad`` in place so that its L2 norm is at most ``max_norm``.

    Parameters
    ----------
    grad : ndarray of shape (n,)
        The flat gradient; rescaled in place when its norm is above ``max_norm``.
    max_norm : float
        The largest norm allowed.

    Returns
    -------
    float
        The norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.engine.optimizer_base import clip_by_global_norm
    >>> grad = np.array([3.0, 4.0])
    >>> clip_by_global_norm(grad, 1.0), grad
    (5.0, array([0.6, 0.8]))
    """
    norm = math.sqrt(float(np.dot(grad, grad)))
    if norm > max_norm:
        grad *= max_norm / norm
    return norm


