"""Concurrent load: many threads predict on one model while another thread saves it.

Every concurrent result must equal the serial result bit for bit (the forward pass keeps its
intermediates in the call, never on the model), no call may raise, and memory must stay flat.
The CI variant runs a few seconds; the 60-second variant is marked slow.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from loomnet import Sequential

from .conftest import blobs, rss_mb
from .modelio import load_model, save_model

N_THREADS = 32


def hammer(model: Sequential, seconds: float, save_path) -> dict:
    """Run N_THREADS predicting threads and one saving thread for ``seconds``; return what happened."""
    X, _ = blobs(n=400)
    slices = [X[i * 10:(i * 10) + 10 + 7 * i] for i in range(N_THREADS)]   # different batch shapes per thread
    expected_proba = [model.predict_proba(s) for s in slices]
    expected_labels = [model.predict(s) for s in slices]
    errors: list[BaseException] = []
    mismatches: list[int] = []
    calls = [0] * N_THREADS
    saves = [0]
    stop = threading.Event()
    start = threading.Barrier(N_THREADS + 2)

    def predictor(i: int) -> None:
        try:
            start.wait()
            while not stop.is_set():
                proba = model.predict_proba(slices[i])
                labels = model.predict(slices[i])
                if not (np.array_equal(proba, expected_proba[i]) and np.array_equal(labels, expected_labels[i])):
                    mismatches.append(i)
                calls[i] += 1
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the test
            errors.append(exc)

    def saver() -> None:
        try:
            start.wait()
            while not stop.is_set():
                save_model(model, save_path)
                saves[0] += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=predictor, args=(i,), name=f"predict-{i}") for i in range(N_THREADS)]
    threads.append(threading.Thread(target=saver, name="saver"))
    for t in threads:
        t.start()
    rss_start = rss_mb()
    start.wait()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    rss_end = rss_mb()
    return {"errors": errors, "mismatches": mismatches, "calls": sum(calls), "min_calls": min(calls),
            "saves": saves[0], "alive": [t.name for t in threads if t.is_alive()],
            "rss_start": rss_start, "rss_end": rss_end}


def check(result: dict, model: Sequential, save_path) -> None:
    print(f"\n{N_THREADS} threads: {result['calls']} predict calls, {result['saves']} saves, "
          f"RSS {result['rss_start']:.1f} -> {result['rss_end']:.1f} MiB")
    assert not result["alive"], f"threads still running: {result['alive']}"
    assert not result["errors"], result["errors"][:3]
    assert not result["mismatches"], f"{len(result['mismatches'])} concurrent results differed from serial"
    assert result["min_calls"] > 0 and result["saves"] > 0
    assert result["rss_end"] - result["rss_start"] < 30, "memory grew under concurrent load"
    reloaded = load_model(save_path)
    np.testing.assert_array_equal(reloaded.params, model.params)
    X, _ = blobs(n=50)
    np.testing.assert_array_equal(reloaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.timeout(120)
def test_32_threads_predicting_while_saving_match_serial_results(trained_model, tmp_path):
    path = tmp_path / "model.loom"
    check(hammer(trained_model, 4.0, path), trained_model, path)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_32_threads_predicting_for_60_seconds_while_saving(trained_model, tmp_path):
    path = tmp_path / "model.loom"
    check(hammer(trained_model, 60.0, path), trained_model, path)
