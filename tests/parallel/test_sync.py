"""Synchronous data-parallel training: same bits for any number of workers, BLAS limits, auto plans."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import loomnet as ln
from loomnet.parallel import auto_plan
from loomnet.training import Callback, Trainer

pytestmark = [pytest.mark.timeout(60), pytest.mark.filterwarnings("ignore:.*workers on.*cores:RuntimeWarning")]


def _data(n=480, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, y[:n] % k


def _model(dropout=0.25, optimizer="adam", l2=1e-3):
    return ln.Sequential([ln.Dense(24, "tanh"), ln.Dropout(dropout), ln.Dense(16, "relu"), ln.Dense(3)],
                         optimizer=optimizer, l2=l2, seed=7)


def test_sync_params_bitwise_identical_for_1_2_3_4_8_workers_with_dropout():
    """At default settings (no micro_batches given): the promise as a user meets it."""
    X, y = _data()
    finals = {}
    for workers in (1, 2, 3, 4, 8):
        model = _model()
        model.fit(X, y, epochs=4, batch_size=480, workers=workers, seed=11)  # 7 slices by default
        finals[workers] = model.params.copy()
    for workers, params in finals.items():
        assert np.array_equal(params, finals[1]), f"workers={workers} differs from workers=1"


def test_sync_bits_do_not_depend_on_the_machines_core_count(monkeypatch):
    import loomnet.parallel.cores as cores

    X, y = _data()
    finals = []
    for n_cores in (1, 2, 16, 64):
        monkeypatch.setattr(cores, "available_cores", lambda n=n_cores: n)
        model = _model()
        trainer = Trainer(model, X, y, epochs=2, batch_size=320, workers=2, seed=11)
        assert (trainer.runner.plan.micro_batches, trainer.runner.plan.blas_threads) == (5, 1)
        trainer.run()
        finals.append(model.params.copy())
    assert all(np.array_equal(finals[0], params) for params in finals[1:])


def test_sync_workers_and_the_plain_loop_draw_the_same_dropout_masks():
    """Masks are a function of (seed, epoch, step, row position): the plain loop and 3 workers over
    8 slices then differ only by the rounding of the slice sums (float64)."""
    X, y = _data()
    finals = []
    for options in ({}, {"workers": 3}):
        model = ln.Sequential([ln.Dense(24, "tanh"), ln.Dropout(0.3), ln.Dense(16, "relu"), ln.Dropout(0.2),
                               ln.Dense(3)], optimizer="sgd", learning_rate=0.05, l2=1e-3, dtype="float64", seed=7)
        model.fit(X, y, epochs=5, batch_size=480, seed=11, **options)
        finals.append(model.params.copy())
    assert np.max(np.abs(finals[0] - finals[1])) <= 1e-9
    other_seed = _model()
    other_seed.fit(X, y, epochs=5, batch_size=50, seed=12)
    assert not np.allclose(other_seed.params, finals[0])  # the masks matter: another seed moves the result


def test_sync_bits_do_not_depend_on_workers_for_matrices_big_enough_for_threaded_blas():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1024, 784)).astype(np.float32), rng.integers(0, 10, 1024)
    finals = []
    for workers in (1, 2):
        model = ln.Sequential([ln.Dense(512, "relu"), ln.Dense(10)], optimizer="sgd", seed=0)
        model.fit(X, y, epochs=1, batch_size=512, workers=workers, micro_batches=4)
        finals.append(model.params.copy())
    assert np.array_equal(finals[0], finals[1])


def _sklearn_optimizer(name, *args, **kwargs):
    pytest.importorskip("sklearn")
    from loomnet.sklearn import conventions

    return getattr(conventions, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [
    lambda: ln.SGD(0.05),
    lambda: ln.SGD(0.05, momentum=0.9),  # the backward pass scales by lr: the update takes lr·g
    lambda: ln.SGD(ln.schedules.StepDecay(0.05, step_size=2, gamma=0.5), momentum=0.9, nesterov=True),
    lambda: ln.Adam(0.01),
    lambda: ln.AdamW(0.01, weight_decay=0.1),
    lambda: ln.RMSprop(0.01),
    lambda: ln.Adagrad(0.05),
    lambda: _sklearn_optimizer("SklearnSGD", 0.05, momentum=0.9, nesterov=True),
    lambda: _sklearn_optimizer("SklearnAdam", 0.01),
], ids=["sgd", "momentum", "nesterov-schedule", "adam", "adamw", "rmsprop", "adagrad", "sklearn-sgd", "sklearn-adam"])
def test_workers_updating_their_chunks_give_the_bits_of_one_worker(make, dtype):
    """Three workers gather their slices and update their chunks of the parameters; one worker
    does all of it: sample weights, L2, dropout, and a last batch of 3 rows cut into 8 slices,
    so that some slices are empty."""
    X, y = _data(n=103)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    finals = []
    for workers in (3, 1):
        model = ln.Sequential([ln.Dense(16, "tanh"), ln.Dropout(0.2), ln.Dense(3)], optimizer=make(), l2=1e-3,
                              dtype=dtype, seed=7)
        Trainer(model, X, y, sample_weight=weights, epochs=3, batch_size=20, workers=workers, micro_batches=8,
                seed=5).run()
        finals.append((model.params.copy(), model.optimizer.state_dict()))
    (p_three, s_three), (p_one, s_one) = finals
    np.testing.assert_array_equal(p_three, p_one)
    assert s_three["iterations"] == s_one["iterations"] == 3 * 6
    for name, state in s_one["arrays"].items():
        np.testing.assert_array_equal(s_three["arrays"][name], state)


def test_clipping_keeps_gradient_then_update_with_the_same_bits():
    """With clip_norm the workers only compute the gradient and the Trainer updates after; a
    clip_norm no gradient reaches changes nothing else, so both paths must agree bit for bit."""
    X, y = _data()
    finals = []
    for clip_norm in (None, 1e30):
        model = _model(optimizer=ln.optimizers.Adam(0.01, clip_norm=clip_norm))
        Trainer(model, X, y, epochs=3, batch_size=50, workers=2, micro_batches=4, seed=5).run()
        finals.append(model.params.copy())
    np.testing.assert_array_equal(finals[0], finals[1])


class _AfterFirstStep(Callback):
    """Runs ``action(trainer)`` once, after the first step; keeps the parameters it saw then."""

    def __init__(self, action):
        self.action, self.params, self.iterations = action, None, None

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        if self.params is None:
            self.params, self.iterations = trainer.model.params.copy(), trainer.model.optimizer.iterations
            self.action(trainer)


def test_a_worker_failing_before_the_update_leaves_the_parameters_and_the_step_count():
    X, y = _data()
    model = _model(dropout=0.0)
    real = model.loss_and_grad
    failing = threading.Event()

    def loss_and_grad(*args, **kwargs):
        if failing.is_set() and threading.current_thread() is not threading.main_thread():
            raise MemoryError("a worker ran out of memory")
        return real(*args, **kwargs)

    model.loss_and_grad = loss_and_grad
    probe = _AfterFirstStep(lambda trainer: failing.set())
    trainer = Trainer(model, X, y, epochs=1, batch_size=48, workers=2, micro_batches=2, callbacks=[probe])
    with pytest.raises(MemoryError, match="a worker ran out of memory"):
        trainer.run()
    np.testing.assert_array_equal(model.params, probe.params)
    assert model.optimizer.iterations == probe.iterations == 1


def test_finite_slice_losses_that_add_up_to_infinity_update_nothing():
    """The workers apply a step only when the Trainer will not call it diverged: the same sum."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    y = np.full((4, 1), 1e154)  # each slice's loss is finite (slice 0's with the L2 term); the sum overflows
    model = ln.Sequential([ln.Dense(1)], loss="mse", optimizer="adam", learning_rate=1e-9, preprocess=None,
                          dtype="float64", seed=0, l2=1e302)
    trainer = Trainer(model, X, y, epochs=1, batch_size=4, shuffle=False, workers=2, micro_batches=4)
    model.params[:model.layout.n_decay] = 1e3
    before = model.params.copy()
    with pytest.raises(ln.TrainingDivergedError):
        trainer.run()
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.iterations == 0
    assert not any(np.any(state) for state in model.optimizer.state_dict()["arrays"].values())


def test_a_data_transform_runs_on_each_workers_slice_of_the_batch():
    seen = []

    def centre(block):
        seen.append(len(block))
        block -= 0.0

    X, y = _data()
    model = _model()
    base = Trainer(model, X, y, epochs=1)  # prepares the data once
    data = ln.training.TrainingData(base.data.X, base.data.y, transform=centre, seed=3)
    Trainer(model, data=data, epochs=1, batch_size=48, workers=2, micro_batches=4).run()
    assert set(seen) == {12}


def test_a_diverging_step_in_the_workers_leaves_the_parameters_and_the_step_count():
    X, y = _data()
    model = _model(dropout=0.0, optimizer="sgd")

    def poison(trainer):
        trainer.data.X[50, 3] = np.nan  # a row of the next batch: its loss is NaN

    probe = _AfterFirstStep(poison)
    trainer = Trainer(model, X, y, epochs=1, batch_size=48, workers=2, micro_batches=2, shuffle=False,
                      callbacks=[probe])
    with pytest.raises(ln.TrainingDivergedError, match="step 2"):
        trainer.run()
    np.testing.assert_array_equal(model.params, probe.params)
    assert model.optimizer.iterations == probe.iterations == 1


def test_micro_batch_gradients_add_up_to_the_batch_gradient():
    X, y = _data()
    model = _model(dropout=0.0)
    trainer = Trainer(model, X, y, batch_size=64, workers=2, micro_batches=5)
    idx = np.arange(64)
    with trainer.runner.session(trainer) as lanes:
        batch = trainer.step_def.batch(lanes[0], 0, 0, idx, lr=1.0, fold=False)
        loss = trainer.runner.gradient(trainer.step_def, batch, lanes[0], None)
    Xb, yb = trainer.data.X[idx], trainer.data.y[idx]
    expected_loss, expected = model.loss_and_grad(model.params, Xb, yb, grad=np.empty_like(model.params))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_allclose(trainer.grad, expected, rtol=1e-4, atol=1e-6)


def test_sync_training_reaches_the_plain_loops_loss():
    X, y = _data()
    plain = _model(dropout=0.0)
    plain.fit(X, y, epochs=5, batch_size=32, seed=3)
    synced = _model(dropout=0.0)
    synced.fit(X, y, epochs=5, batch_size=32, seed=3, workers=2, micro_batches=2)
    assert synced.history["loss"][-1] == pytest.approx(plain.history["loss"][-1], rel=1e-3)


class _BlasThreads(Callback):
    def __init__(self):
        self.seen = set()

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        self.seen.update(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


# mode="sync" always runs one BLAS thread per worker: another thread count could sum in another order
@pytest.mark.parametrize("workers, micro_batches, blas_threads", [(1, 1, 1), (1, 2, 1), (2, 2, 1)])
def test_workers_times_blas_threads_stay_within_the_cores(workers, micro_batches, blas_threads, monkeypatch):
    import loomnet.parallel.cores as cores

    monkeypatch.setattr(cores, "available_cores", lambda: 2)
    X, y = _data()
    probe = _BlasThreads()
    _model().fit(X, y, epochs=1, batch_size=64, workers=workers, micro_batches=micro_batches, callbacks=[probe])
    if not any(info["user_api"] == "blas" for info in threadpool_info()):
        pytest.skip("no BLAS library visible to threadpoolctl")
    assert probe.seen == {blas_threads}


def test_sync_workers_are_joined_when_fit_returns():
    before = set(threading.enumerate())
    X, y = _data()
    _model().fit(X, y, epochs=2, batch_size=40, workers=3, micro_batches=3)
    assert set(threading.enumerate()) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 0}, "workers must be"),
    ({"workers": "many"}, "workers must be"),
    ({"workers": 2, "mode": "async"}, "mode must be one of"),
    ({"workers": 4, "micro_batches": 2}, "fewer than workers"),
    ({"workers": "auto", "micro_batches": 2}, "chosen by workers='auto'"),
])
def test_bad_parallel_options_are_refused_with_the_valid_values(kwargs, message):
    X, y = _data()
    with pytest.raises(ValueError, match=message):
        Trainer(_model(), X, y, **kwargs)


def test_auto_picks_hogwild_for_small_batches_and_sync_for_large_ones():
    widths = [784, 512, 256, 10]
    assert auto_plan(32, widths, cores=2, gil=True).mode == "hogwild"
    big = auto_plan(256, widths, cores=2, gil=True)
    assert (big.mode, big.workers, big.micro_batches) == ("sync", 2, 2)
    tiny_net = auto_plan(64, [4, 8, 2], cores=2, gil=True)
    assert (tiny_net.mode, tiny_net.workers, tiny_net.blas_threads) == ("sync", 1, 2)
    assert auto_plan(256, widths, cores=1, gil=True).workers == 1


def test_auto_splits_smaller_batches_when_the_gil_is_off():
    small_net = [64, 32, 10]  # batch 128: 64-row slices of a small network
    with_gil = auto_plan(128, small_net, cores=2, gil=True)
    assert (with_gil.workers, with_gil.blas_threads) == (1, 2)
    free = auto_plan(128, small_net, cores=2, gil=False)
    assert (free.mode, free.workers, free.micro_batches, free.blas_threads) == ("sync", 2, 2, 1)
    assert "GIL off" in free.reason and "GIL" not in with_gil.reason
    assert auto_plan(32, small_net, cores=2, gil=False).mode == "hogwild"
    assert auto_plan(128, small_net, cores=1, gil=False).workers == 1


def test_auto_follows_this_interpreters_gil(monkeypatch):
    import sys

    from loomnet.parallel import cores

    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert cores.gil_enabled() is False
    assert "GIL off" in auto_plan(128, [64, 32, 10], cores=2).reason
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert cores.gil_enabled() is True
    assert "GIL" not in auto_plan(128, [64, 32, 10], cores=2).reason


def test_auto_reports_its_choice_in_the_history():
    X, y = _data()
    history = _model().fit(X, y, epochs=1, batch_size=16, workers="auto")
    assert any(note.startswith("parallel: mode=") for note in history.notes)


def test_auto_times_sync_split_blas_threads_and_hogwild_without_training(monkeypatch):
    import loomnet.parallel.runners as runners

    monkeypatch.setattr(runners, "available_cores", lambda: 2)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(512, 256)).astype(np.float32), rng.integers(0, 4, 512)
    model = ln.Sequential([ln.Dense(256, "relu"), ln.Dense(4)], seed=0)
    trainer = Trainer(model, X, y, epochs=1, batch_size=256, workers="auto")
    reason = trainer.runner.plan.reason
    assert "measured samples/s" in reason
    assert all(f"{mode} {split}" in reason for mode, split in
               [("sync", "2×1"), ("sync", "1×2"), ("hogwild", "2×1"), ("locked", "2×1")])
    assert np.array_equal(model.params, ln.Sequential([ln.Dense(256, "relu"), ln.Dense(4)], seed=0)
                          .build(256).params)  # timing did not train


@pytest.mark.parametrize("rates, chosen", [
    ({"sync2": 100, "sync1": 110, "hogwild": 125, "locked": 140}, ("locked", 2)),   # 140 > 1.2 × 110
    ({"sync2": 100, "sync1": 110, "hogwild": 140, "locked": 125}, ("hogwild", 2)),  # the faster async plan
    ({"sync2": 100, "sync1": 110, "hogwild": 125, "locked": 130}, ("sync", 1)),     # async gives up exactness
])
def test_auto_takes_the_faster_asynchronous_plan_only_by_a_margin(rates, chosen):
    import loomnet.parallel.auto as auto

    plans = auto.candidate_plans(64, 2)
    measured = [rates[plan.mode if plan.mode != "sync" else f"sync{plan.workers}"] for plan in plans]
    plan = auto.choose_plan(plans, measured)
    assert (plan.mode, plan.workers) == chosen


def test_default_path_has_no_parallel_engine():
    X, y = _data()
    trainer = Trainer(_model(), X, y, epochs=1)
    assert trainer.parallel is None
    assert type(trainer.runner) is ln.training.SerialRunner


@pytest.mark.slow
def test_sync_bits_identical_for_1_2_3_4_8_workers_on_the_benchmark_mlp_with_dropout():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2048, 784)).astype(np.float32), rng.integers(0, 10, 2048)
    finals = []
    for workers in (1, 2, 3, 4, 8):
        model = ln.Sequential([ln.Dense(512, "relu"), ln.Dropout(0.2), ln.Dense(256, "relu"), ln.Dense(10)],
                              optimizer=ln.SGD(0.01, momentum=0.9), seed=0)
        model.fit(X, y, epochs=2, batch_size=128, workers=workers, seed=5)
        finals.append(model.params.copy())
    assert all(np.array_equal(finals[0], params) for params in finals[1:])


def test_default_micro_batches_follow_the_batch_size_only():
    from loomnet.parallel import default_micro_batches

    assert [default_micro_batches(b) for b in (1, 63, 64, 128, 200, 511, 512, 4096)] == [1, 1, 1, 2, 3, 7, 8, 8]
    X, y = _data()
    trainer = Trainer(_model(), X, y, epochs=1, batch_size=128, workers=4)  # more workers than slices
    assert trainer.runner.plan.micro_batches == 2
    trainer.run()
    assert np.isfinite(trainer.model.params).all()


@pytest.mark.parametrize("rates, chosen", [
    ({"sync2": 18, "sync1": 44, "hogwild": 40.6, "locked": 33}, ("sync", 1)),     # async prior, sync winner
    ({"sync2": 18, "sync1": 30, "hogwild": 40.6, "locked": 42}, ("hogwild", 2)),  # within 10 % of its kind
    ({"sync2": 18, "sync1": 30, "hogwild": 30, "locked": 45}, ("locked", 2)),     # beyond 10 %: the measurement wins
])
def test_the_shapes_choice_stands_only_against_a_winner_of_its_kind(rates, chosen):
    import loomnet.parallel.auto as auto

    plans = auto.candidate_plans(32, 2)
    measured = [rates[plan.mode if plan.mode != "sync" else f"sync{plan.workers}"] for plan in plans]
    prior = next(plan for plan in plans if plan.mode == "hogwild")
    plan = auto.choose_plan(plans, measured, prior=prior)
    assert (plan.mode, plan.workers) == chosen
