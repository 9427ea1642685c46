"""Shared probes for the reliability tests: resident memory, live threads, a small trained model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from loomnet import Dense, Dropout, Sequential


def rss_mb() -> float:
    """Current resident set size of this process in MiB (from /proc, Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def live_threads() -> int:
    """Threads Python knows about (threading.enumerate) — what 'no thread outlives fit' means."""
    return len(threading.enumerate())


def os_threads() -> int:
    """Threads the kernel counts for this process, including BLAS and C-level threads."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("Threads not found in /proc/self/status")


def blobs(n: int = 600, n_features: int = 16, n_classes: int = 3, seed: int = 0):
    """Separable Gaussian blobs: a classification task every model learns in a few epochs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = np.arange(n) % n_classes
    X = centers[y] + rng.normal(size=(n, n_features))
    return X, y


@pytest.fixture(scope="module")
def trained_model() -> Sequential:
    X, y = blobs()
    model = Sequential([Dense(64, "relu"), Dropout(0.1), Dense(32, "tanh"), Dense(3)], seed=3)
    model.fit(X, y, epochs=5, batch_size=32)
    return model
