"""Stress tests of the thread engine's shared state: what would break if a worker raced another.

They matter most on free-threaded CPython (``make test-ft``), where nothing serialises Python code
between threads. On a GIL build the switch interval is cut to a microsecond for each test, so the
GIL changes hands between almost every bytecode and the same interleavings become likely.
Audited shared state, and where it is protected:

- the epoch's loss/sample counters, step numbers and per-batch callbacks: ``Trainer._batch_done``
  under the bookkeeping lock, or per-lane sums added after the workers joined;
- the update count and staleness: ``UpdateClock.tick`` under its lock;
- dropout's noise: ``BatchNoise`` draws once per batch and layer under its lock, slices only read;
- parameter/gradient view caches and activation buffers: one ``StepWorkspace`` per thread;
- optimiser state: one copy per asynchronous lane; synchronous workers update disjoint ranges;
- the history: written by the epoch loop on the calling thread only;
- ``predict``: a fresh workspace per call, nothing stored on the model.
"""

from __future__ import annotations

import sys
import sysconfig
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import loomnet as ln
from loomnet import search
from loomnet.training import Callback, Trainer
from loomnet.training.streams import BatchNoise

pytestmark = [pytest.mark.timeout(180), pytest.mark.filterwarnings("ignore:.*workers on.*cores:RuntimeWarning")]
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.fixture(autouse=True)
def tiny_switch_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _model(dropout: float = 0.1, seed: int = 1) -> ln.Sequential:
    return ln.Sequential([ln.Dense(8, "tanh"), ln.Dropout(dropout), ln.Dense(3)], optimizer=ln.SGD(0.05, momentum=0.9),
                         seed=seed)


class _Ledger(Callback):
    """Counts with plain Python arithmetic (``+=`` on attributes, list appends): exactly what a
    lost update under a race would corrupt."""

    def __init__(self):
        self.batches, self.rows, self.seen = 0, 0, []

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        self.batches += 1
        self.rows += batch_size
        self.seen.append((epoch, step))


@pytest.mark.parametrize("mode", ["hogwild", "locked"])
@pytest.mark.parametrize("workers", [2, 4])
def test_asynchronous_lanes_lose_no_batch_row_or_update(three_classes, mode, workers):
    X, y = three_classes.X[:400], three_classes.y[:400]
    ledger = _Ledger()
    epochs, batch = 6, 4  # 600 tiny steps: the bookkeeping, not the arithmetic, dominates
    trainer = Trainer(_model(), X, y, epochs=epochs, batch_size=batch, workers=workers, mode=mode, callbacks=[ledger])
    history = trainer.run()
    steps = epochs * sum(-(-len(shard) // batch) for shard in np.array_split(np.arange(len(X)), workers))
    assert ledger.batches == steps and ledger.rows == epochs * len(X)
    assert len(set(ledger.seen)) == steps  # every (epoch, step) reported once
    assert trainer.model.optimizer.iterations == steps
    for record in history.records:
        assert sum(record["updates_per_worker"]) == steps // epochs
        assert record["samples_per_s"] > 0 and np.isfinite(record["loss"])


@pytest.mark.parametrize("workers", [2, 4])
def test_asynchronous_lanes_without_callbacks_count_every_update(three_classes, workers):
    X, y = three_classes.X[:400], three_classes.y[:400]
    trainer = Trainer(_model(), X, y, epochs=5, batch_size=4, workers=workers, mode="hogwild")
    history = trainer.run()
    per_epoch = sum(-(-len(s) // 4) for s in np.array_split(np.arange(len(X)), workers))
    assert trainer.model.optimizer.iterations == 5 * per_epoch
    assert [sum(r["updates_per_worker"]) for r in history.records] == [per_epoch] * 5


def test_synchronous_workers_under_contention_keep_the_serial_bits(three_classes):
    X, y = three_classes.X, three_classes.y
    serial = _model(seed=2)
    Trainer(serial, X, y, epochs=3, batch_size=64, micro_batches=8, workers=1).run()
    for workers in (2, 3, 4, 8):
        model = _model(seed=2)
        Trainer(model, X, y, epochs=3, batch_size=64, micro_batches=8, workers=workers).run()
        np.testing.assert_array_equal(model.params, serial.params)


def test_batch_noise_is_drawn_once_however_many_threads_ask():
    noise = BatchNoise(seed=3)
    noise.begin(epoch=0, step=0, n_rows=256)
    start = threading.Barrier(8)

    def ask(_):
        start.wait()
        return noise.uniform(0, 16, np.dtype(np.float64))

    with ThreadPoolExecutor(8) as pool:
        drawn = list(pool.map(ask, range(8)))
    assert all(d is drawn[0] for d in drawn)  # one array: nobody drew a second, different mask
    alone = BatchNoise(seed=3)
    alone.begin(0, 0, 256)
    np.testing.assert_array_equal(drawn[0], alone.uniform(0, 16, np.dtype(np.float64)))


def test_concurrent_predict_matches_serial_predict(digits):
    model = ln.Sequential([ln.Dense(32, "relu"), ln.Dropout(0.2), ln.LayerNorm(), ln.Dense(10)], seed=0)
    model.fit(digits.X, digits.y, epochs=2, batch_size=64)
    chunks = np.array_split(np.arange(len(digits.X)), 16)
    expected = [model.predict_proba(digits.X[c]) for c in chunks]
    start = threading.Barrier(4)

    def predict(i):
        if i < 4:
            start.wait()
        return model.predict_proba(digits.X[chunks[i % 16]])

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(predict, range(64)))
    for i, proba in enumerate(got):
        np.testing.assert_array_equal(proba, expected[i % 16])


def test_thread_parallel_search_matches_one_thread(three_classes):
    X, y = three_classes.X[:400], three_classes.y[:400]
    grid = {"hidden": [(8,), (16,)], "learning_rate": [0.01, 0.03]}
    one = search.grid_search(grid, X, y, cv=2, epochs=2, batch_size=16, backend="threads", n_jobs=1)
    two = search.grid_search(grid, X, y, cv=2, epochs=2, batch_size=16, backend="threads", n_jobs=4)
    key = lambda r: (repr(sorted(r.params.items())), r.fold)  # noqa: E731
    assert [(key(r), r.score) for r in sorted(one.results, key=key)] == \
        [(key(r), r.score) for r in sorted(two.results, key=key)]


@pytest.mark.skipif(not FREE_THREADED, reason="needs free-threaded CPython (make test-ft)")
def test_the_gil_stays_off_after_importing_loomnet_and_its_dependencies():
    import os
    import subprocess

    code = (
        "import importlib, pkgutil, sys\n"
        "import loomnet\n"
        "for m in pkgutil.walk_packages(loomnet.__path__, 'loomnet.'):\n"
        "    if not m.name.startswith('loomnet.distributed.') and not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "for name in ('numpy', 'threadpoolctl', 'sklearn', 'scipy', 'matplotlib', 'tqdm', 'onnx', 'onnxruntime'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "print(sys._is_gil_enabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stderr
