"""Asynchronous (Hogwild!) training: learns as well as synchronous training, reports its updates."""

import numpy as np
import pytest

import loomnet as ln
from loomnet.training import Trainer

pytestmark = pytest.mark.timeout(120)


def _split(dataset):
    return ln.train_test_split(dataset.X, dataset.y, test_size=0.25, stratify=dataset.y, seed=0)


def _accuracy(mode, X_train, X_test, y_train, y_test, epochs):
    model = ln.Sequential([ln.Dense(64, "relu"), ln.Dense(len(np.unique(y_train)))], optimizer="sgd",
                          learning_rate=0.05, seed=0)
    options = {"micro_batches": 2} if mode == "sync" else {}
    model.fit(X_train, y_train, epochs=epochs, batch_size=32, workers=2, mode=mode, seed=1, **options)
    return float(np.mean(model.predict(X_test) == y_test))


@pytest.mark.parametrize("name, epochs", [("digits", 30), ("synthetic", 15)])
def test_hogwild_accuracy_within_one_point_of_sync(name, epochs):
    dataset = (ln.datasets.load("digits") if name == "digits"
               else ln.datasets.make_classification(3000, 20, n_classes=4, noise=1.5, seed=2))
    parts = _split(dataset)
    sync = _accuracy("sync", *parts, epochs)
    hogwild = _accuracy("hogwild", *parts, epochs)
    assert sync > 0.8
    assert abs(hogwild - sync) <= 0.01 + 1e-9, (sync, hogwild)


@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_each_epoch_reports_updates_per_worker_and_mean_staleness(mode):
    data = ln.datasets.make_classification(1000, 10, seed=0)
    trainer = Trainer(ln.Sequential([ln.Dense(16, "relu"), ln.Dense(3)], seed=0), data.X, data.y,
                      epochs=3, batch_size=20, workers=2, mode=mode)
    history = trainer.run()
    record = history.records[-1]
    shard_steps = [int(np.ceil(len(shard) / 20)) for shard in np.array_split(np.arange(1000), 2)]
    assert record["updates_per_worker"] == shard_steps
    assert 0.0 <= record["mean_staleness"] < 10.0
    assert trainer.model.optimizer.iterations == 3 * sum(shard_steps)
    assert record["loss"] < history.records[0]["loss"]
    assert trainer.lane_stats == {k: record[k] for k in ("updates_per_worker", "mean_staleness")}


def test_hogwild_divergence_restores_the_last_finite_params():
    data = ln.datasets.make_regression(400, 5, seed=0)
    model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(1)], loss="mse", optimizer="sgd", learning_rate=1e6,
                          seed=0)
    with pytest.raises(ln.TrainingDivergedError):
        model.fit(data.X, data.y * 1e3, epochs=20, batch_size=8, workers=2, mode="hogwild")
    assert np.isfinite(model.params).all()


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_one_hogwild_worker_is_the_plain_loop_bit_for_bit_even_with_a_plateau_schedule(optimizer):
    from loomnet.engine.schedules import ReduceOnPlateau

    data = ln.datasets.make_classification(400, 8, seed=0)

    def run(**parallel):
        schedule = ReduceOnPlateau(0.05, factor=0.5, patience=0, min_delta=1e9)  # halves every epoch
        opt = ln.SGD(schedule, momentum=0.9) if optimizer == "momentum" else ln.Adam(schedule)
        model = ln.Sequential([ln.Dense(8, "relu"), ln.Dropout(0.1), ln.Dense(3)], optimizer=opt, seed=0)
        history = model.fit(data.X, data.y, epochs=4, batch_size=32, validation_split=0.25, seed=2, **parallel)
        return model, history

    plain, plain_history = run()
    hogwild, hogwild_history = run(workers=1, mode="hogwild")
    assert hogwild_history["lr"] == plain_history["lr"] and plain_history["lr"][-1] < plain_history["lr"][0]
    assert np.array_equal(hogwild.params, plain.params)
    assert hogwild.optimizer.iterations == plain.optimizer.iterations
