"""Safety of parallel training: errors and Ctrl-C reach the caller fast, no thread outlives fit,
concurrent prediction equals serial prediction."""

import os
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import loomnet as ln
from loomnet.engine.layers import Dense
from loomnet.parallel import WorkerPool
from loomnet.training import Callback, Trainer

pytestmark = pytest.mark.timeout(60)
MODES = [("sync", {"micro_batches": 2}), ("hogwild", {}), ("locked", {})]


def _data(n=2000, d=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


class FailingInWorker(Dense):
    """A Dense layer that raises once it runs in a worker thread (not the caller's)."""

    def forward(self, params, x, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            raise ArithmeticError("boom in a worker")
        return super().forward(params, x, **kwargs)


class _Steps(Callback):
    def __init__(self):
        self.count = 0

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        self.count += 1


@pytest.mark.parametrize("mode, options", MODES)
def test_worker_exception_reaches_the_caller_at_once_with_its_traceback(mode, options):
    X, y = _data()
    model = ln.Sequential([FailingInWorker(8, "relu"), ln.Dense(2)], seed=0)
    before = set(threading.enumerate())
    steps = _Steps()
    with pytest.raises(ArithmeticError, match="boom in a worker") as info:
        model.fit(X, y, epochs=50, batch_size=32, workers=2, mode=mode, callbacks=[steps], **options)
    # the failing worker never completes a step; the other lane stops at its next step boundary once
    # the failure is raised: within the first of the 50 epochs (a lane may run ahead before the
    # failing thread is even scheduled)
    assert steps.count < len(X) // 32
    frames = "".join(traceback.format_tb(info.value.__traceback__))
    assert "in forward" in frames and "raise ArithmeticError" in frames
    assert set(threading.enumerate()) == before


def test_pool_stops_the_other_workers_when_one_fails():
    stop = threading.Event()
    finished = []

    def task(index):
        if index == 1:
            raise KeyError("worker 1 failed")
        while not stop.wait(0.01):
            pass
        finished.append(index)

    with WorkerPool(3) as pool:
        with pytest.raises(KeyError, match="worker 1 failed"):
            pool.run(task, on_error=stop.set)  # without on_error the others would wait forever (test timeout)
    assert sorted(finished) == [0, 2]


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler for the test. A process started in the background of a
    script (``cmd &``) inherits SIGINT ignored, and then the signal these tests send would not
    arrive at all: they would test the shell, not loomnet."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class _Interrupt(Callback):
    """Sends SIGINT to the process from another thread after a few steps; records when."""

    def __init__(self, after_steps=5):
        self.after_steps, self.steps = after_steps, 0

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        self.steps += 1
        if self.steps == self.after_steps:
            threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT)).start()


@pytest.mark.parametrize("mode, options", MODES)
def test_keyboard_interrupt_stops_training_within_a_second_with_consistent_params(mode, options, ctrl_c_raises):
    X, y = _data()
    model = ln.Sequential([ln.Dense(32, "relu"), ln.Dense(2)], optimizer="sgd", seed=0)
    before = set(threading.enumerate())
    interrupt = _Interrupt()  # per-batch callbacks run in every mode, asynchronous workers included
    trainer = Trainer(model, X, y, epochs=10_000, batch_size=32, workers=2, mode=mode, callbacks=[interrupt],
                      **options)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    # stopped at a step boundary soon after the signal, not after the 10,000 epochs asked for
    assert interrupt.steps - interrupt.after_steps < trainer.steps_per_epoch
    assert trainer.history.stop_reason == "interrupted"
    assert np.isfinite(model.params).all()
    # every completed step is one optimiser update, and none is half done
    steps_done = trainer.epoch * trainer.steps_per_epoch + trainer.step
    assert model.optimizer.iterations == steps_done
    time.sleep(0.05)
    assert set(threading.enumerate()) == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # the stopped trainer is intact: its state can be saved and training goes on
    trainer.load_state_dict(trainer.state_dict())
    trainer.stop_requested = False
    trainer.epochs = trainer.epoch + 1
    trainer.run()


@pytest.mark.parametrize("mode, options", MODES)
def test_no_thread_outlives_fit(mode, options):
    X, y = _data(600)
    before = set(threading.enumerate())
    ln.Sequential([ln.Dense(8, "relu"), ln.Dense(2)], seed=0).fit(
        X, y, epochs=3, batch_size=32, workers=2, mode=mode, **options)
    assert set(threading.enumerate()) == before


def test_concurrent_predict_equals_serial_predict():
    X, y = _data()
    model = ln.Sequential([ln.Dense(32, "relu"), ln.Dropout(0.2), ln.Dense(2)], seed=0)
    model.fit(X, y, epochs=2, batch_size=64)
    chunks = np.array_split(np.random.default_rng(1).normal(size=(4000, 16)), 16)
    serial = [model.predict_proba(chunk) for chunk in chunks]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            concurrent = list(pool.map(model.predict_proba, chunks))
            for a, b in zip(serial, concurrent, strict=True):
                assert np.array_equal(a, b)
