"""Soak: a thousand consecutive fits in one process leak neither memory nor threads."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from loomnet import Dense, Dropout, EarlyStopping, Sequential

from .conftest import blobs, live_threads, os_threads, rss_mb

# (workers, mode): the plain loop and the threaded runners
WORKERS = [(None, None), (2, "sync"), (2, "hogwild")]


def soak(n_fits: int, fit_once) -> tuple[float, float, int, int, int, int]:
    """Run ``fit_once(i)`` n_fits times; RSS and thread counts measured after a warm-up of 20 fits."""
    for i in range(20):
        fit_once(i)
    gc.collect()
    rss0, py0, os0 = rss_mb(), live_threads(), os_threads()
    for i in range(20, n_fits):
        fit_once(i)
    gc.collect()
    return rss0, rss_mb(), py0, live_threads(), os0, os_threads()


def report_and_check(name: str, result) -> None:
    rss0, rss1, py0, py1, os0, os1 = result
    print(f"\n{name}: RSS {rss0:.1f} -> {rss1:.1f} MiB (+{rss1 - rss0:.1f}), "
          f"python threads {py0} -> {py1}, OS threads {os0} -> {os1}")
    assert rss1 - rss0 < 20, f"RSS grew by {rss1 - rss0:.1f} MiB over the soak"
    assert py1 == py0, "a thread outlived fit"
    assert os1 <= os0, "OS-level threads accumulated"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers,mode", WORKERS)
def test_a_thousand_small_fits_leak_no_memory_or_threads(workers, mode):
    X, y = blobs(n=96, n_features=8)
    extra = {} if workers is None else {"workers": workers, "mode": mode}

    def fit_once(i: int) -> None:
        model = Sequential([Dense(16, "relu"), Dense(3)], seed=i)
        model.fit(X, y, epochs=2, batch_size=32, **extra)
        assert np.isfinite(model.params).all()

    report_and_check(f"1000 fits (workers={workers}, mode={mode})", soak(1000, fit_once))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("workers,mode", WORKERS)
def test_a_thousand_realistic_fits_with_validation_dropout_and_prediction(workers, mode):
    X, y = blobs(n=1500, n_features=32, n_classes=5)
    extra = {} if workers is None else {"workers": workers, "mode": mode}

    def fit_once(i: int) -> None:
        model = Sequential([Dense(64, "relu"), Dropout(0.2), Dense(32, "relu"), Dense(5)], seed=i)
        model.fit(X, y, epochs=3, batch_size=64, validation_split=0.2,
                  early_stopping=EarlyStopping(patience=2), **extra)
        model.predict_proba(X[:200])
        model.evaluate(X[:200], y[:200])

    report_and_check(f"1000 realistic fits (workers={workers}, mode={mode})", soak(1000, fit_once))
