"""Training set-ups shared by the MPI worker and the one-process side of tests/test_distributed.py."""

from __future__ import annotations

import os

import numpy as np

from loomnet import datasets
from loomnet.engine.batchnorm import BatchNorm
from loomnet.engine.layers import ActivationLayer, Dense, Dropout
from loomnet.engine.network import Sequential
from loomnet.training import EarlyStopping

_WEIGHTS = np.random.default_rng(3).uniform(0.5, 2.0, size=1797)

CASES = {
    # Allreduce path: weights, validation split, early stopping, data from a memory-mapped .npy.
    "default": {
        "model": {"dropout": 0.0},
        "train": {"epochs": 8, "batch_size": 50, "seed": 7, "validation_split": 0.2, "sample_weight": _WEIGHTS,
                  "early_stopping": EarlyStopping(patience=1, min_delta=0.25, restore_best_weights=True)},
        "memmap": True,
    },
    # Deterministic reduction over 4 fixed shards, with dropout: the same bits on any number of ranks.
    "deterministic": {
        "model": {"dropout": 0.2},
        "train": {"epochs": 4, "batch_size": 64, "seed": 3, "deterministic": True, "micro_batches": 4},
    },
    # All ranks stop together at the loss threshold.
    "threshold": {
        "model": {"dropout": 0.0},
        "train": {"epochs": 30, "batch_size": 128, "seed": 1, "loss_threshold": 0.5, "class_weight": "balanced"},
    },
    # BatchNorm over 4 fixed shards: batch statistics per shard, population statistics summed over ranks.
    "batch_norm": {
        "model": {"batch_norm": True},
        "train": {"epochs": 3, "batch_size": 64, "seed": 5, "deterministic": True, "micro_batches": 4,
                  "validation_split": 0.2},
    },
}
RESUME_CASE = "deterministic"


def make_model(dropout: float = 0.0, batch_norm: bool = False, **options) -> Sequential:
    hidden = [Dense(32), BatchNorm(), ActivationLayer("relu")] if batch_norm else [Dense(32, activation="relu")]
    layers = hidden + ([Dropout(dropout)] if dropout else []) + [Dense(10)]
    return Sequential(layers, loss="softmax_cross_entropy", seed=11, **options)


def make_data(out_dir: str, case: dict):
    """Digits; as a .npy path (memory-mapped by each rank) when the case asks for it."""
    data = datasets.load("digits")
    if not case.get("memmap"):
        return data.X, data.y
    path = os.path.join(out_dir, "digits_X.npy")
    if not os.path.exists(path):  # the test writes it before launching; atomic in case two ranks race
        partial = f"{path}.{os.getpid()}.npy"
        np.save(partial, data.X)
        os.replace(partial, path)
    return path, data.y


def tiny_run(comm) -> np.ndarray:
    """Five samples, one validation row, deterministic over 8 shards: most ranks own few or no rows."""
    from loomnet.distributed import DistributedTrainer

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0, 1])
    model = Sequential([Dense(4, activation="tanh"), Dense(1)], loss="binary_cross_entropy", seed=0)
    DistributedTrainer(model, X, y, comm=comm, epochs=3, batch_size=2, validation_data=(X[:1], y[:1]),
                       deterministic=True).run()
    return model.params.copy()
