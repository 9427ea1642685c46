"""Training checkpoints: parameters plus ``Trainer.state_dict()``, so a resumed run is bit-identical.

A checkpoint is a loom container (see :mod:`loomnet.io.modelfile`) of kind ``"checkpoint"``: the
arrays (parameters, optimiser moments, best and last-finite parameters) go into safetensors,
the scalars (epoch, step, seed, epoch accumulators, history, stopping state) into the JSON
header, whose floats round-trip exactly. ``settings`` lets the caller refuse to resume a run
that was started with different options or data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .modelfile import ModelFileError, read_container, write_container

CHECKPOINT_NAME = "checkpoint.loom"
_OPT_PREFIX = "optimizer/"


def checkpoint_path(directory: str | os.PathLike) -> Path:
    """The checkpoint file inside a checkpoint directory (one file, replaced atomically)."""
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(trainer: Any, path: str | os.PathLike, *, settings: dict[str, Any] | None = None) -> dict:
    """Write the trainer's full state and its model's parameters to ``path`` atomically."""
    from .._version import __version__

    state = trainer.state_dict()
    optimizer = dict(state.pop("optimizer"))
    tensors = {"params": trainer.model.params, "last_finite": state.pop("last_finite")}
    best_params = state.pop("best_params")
    if best_params is not None:
        tensors["best_params"] = best_params
    for name, array in optimizer.pop("arrays").items():
        tensors[_OPT_PREFIX + name] = array
    header = {
        "kind": "checkpoint",
        "loomnet_version": __version__,
        "trainer": state,
        "optimizer": optimizer,
        "settings": settings or {},
    }
    written = write_container(path, header, tensors)
    # A process killed mid-write leaves its temporary file behind; the new checkpoint supersedes it.
    for stale in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        stale.unlink(missing_ok=True)
    return written


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint written by ``loomnet train --checkpoint-dir`` (or :func:`save_checkpoint`).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    header : dict
        The trainer's state (epoch, step, random streams, settings) and versions.
    tensors : dict of str to ndarray
        The parameters, the optimiser's moments and the best parameters so far.

    Raises
    ------
    ModelFileError
        If the file is not a checkpoint, or is damaged.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.io import read_checkpoint
    >>> from loomnet.io.checkpoint import save_checkpoint
    >>> iris = ln.datasets.load("iris")
    >>> trainer = ln.Trainer(ln.Sequential([ln.Dense(3)], seed=0), iris.X, iris.y, epochs=2)
    >>> _ = trainer.run()
    >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
    >>> _ = save_checkpoint(trainer, path)
    >>> header, tensors = read_checkpoint(path)
    >>> header["kind"], header["trainer"]["epoch"], sorted(tensors)
    ('checkpoint', 2, ['last_finite', 'optimizer/m', 'optimizer/v', 'params'])
    """
    header, tensors = read_container(path)
    if header.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: is a loomnet {header.get('kind')!r} file, not a checkpoint")
    return header, tensors


def restore_checkpoint(trainer: Any, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """Put a trainer (built with the same model, data and options) back into the saved state."""
    state = dict(header["trainer"])
    optimizer = dict(header["optimizer"])
    optimizer["arrays"] = {name[len(_OPT_PREFIX):]: array for name, array in tensors.items()
                           if name.startswith(_OPT_PREFIX)}
    state["optimizer"] = optimizer
    state["last_finite"] = tensors["last_finite"]
    state["best_params"] = tensors.get("best_params")
    if tensors["params"].shape != trainer.model.params.shape:
        raise ModelFileError(f"the checkpoint holds {tensors['params'].size} parameters but the network has "
                             f"{trainer.model.params.size}: it was written for a different architecture")
    trainer.load_state_dict(state)
    trainer.model.set_params(tensors["params"])
