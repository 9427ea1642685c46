"""The training loop: XOR, batch-size flavours, stopping rules, divergence, history, resume."""

import numpy as np
import pytest

from loomnet import SGD, Adam, Dense, Dropout, EarlyStopping, Sequential, Trainer, TrainingDivergedError, datasets
from loomnet.engine.preprocessing import train_test_split


def test_xor_2_4_1_sigmoid_mse_full_batch_reaches_100_percent():
    data = datasets.xor()
    model = Sequential([Dense(4, "sigmoid"), Dense(1, "sigmoid")], loss="mse", optimizer=SGD(2.0),
                       preprocess=None, dtype="float64", seed=1)
    history = model.fit(data.X, data.y.astype(float), epochs=5000, batch_size="full", shuffle=False)
    assert np.all((model.predict(data.X) > 0.5) == (data.y == 1))
    assert history["loss"][-1] < history["loss"][0]
    assert len(history) == 5000  # full batch: one step per epoch, every epoch recorded


def _blobs(n=300, seed=0):
    d = datasets.make_classification(n_samples=n, n_features=6, n_classes=3, noise=0.5, seed=seed)
    return d.X, d.y


@pytest.mark.parametrize("batch_size,steps,epochs", [("full", 1, 200), (32, 8, 20), (1, 240, 3)])
def test_full_mini_and_stochastic_batches(batch_size, steps, epochs):
    X, y = _blobs()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y)
    model = Sequential([Dense(16, "relu"), Dense(3)], optimizer=Adam(0.01), seed=0)
    trainer = Trainer(model, X_train, y_train, epochs=epochs, batch_size=batch_size)
    assert trainer.steps_per_epoch == steps
    trainer.run()
    assert model.optimizer.iterations == epochs * steps
    assert np.mean(model.predict(X_test) == y_test) > 0.8


def test_loss_threshold_stops_as_soon_as_reached():
    X, y = _blobs()
    model = Sequential([Dense(16, "relu"), Dense(3)], optimizer=Adam(0.01))
    history = model.fit(X, y, epochs=500, batch_size=32, loss_threshold=0.3)
    assert history.stop_reason == "loss_threshold"
    assert history["loss"][-1] <= 0.3 and all(v > 0.3 for v in history["loss"][:-1])


def test_early_stopping_restores_best_weights():
    X, y = _blobs(200)
    model = Sequential([Dense(64, "relu"), Dense(3)], optimizer=Adam(0.05), seed=0)
    history = model.fit(X, y, epochs=200, batch_size=8, validation_split=0.3,
                        early_stopping=EarlyStopping(patience=3, restore_best_weights=True))
    assert history.stop_reason == "early_stopping"
    best = history.best_epoch
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    assert len(history) == best + 3


def test_early_stopping_needs_validation_data():
    X, y = _blobs(50)
    with pytest.raises(ValueError, match="validation"):
        Sequential([Dense(3)]).fit(X, y, epochs=2, early_stopping=2)


def test_history_records_losses_metrics_lr_and_time():
    X, y = _blobs(120)
    history = Sequential([Dense(8, "tanh"), Dense(3)]).fit(X, y, epochs=2, validation_split=0.25)
    record = history.records[-1]
    for key in ("epoch", "loss", "val_loss", "val_accuracy", "lr", "time", "samples_per_s"):
        assert key in record
    assert history["epoch"] == [1, 2]


def test_regression_with_target_scaling_learns_diabetes():
    d = datasets.load("diabetes")
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.2)
    model = Sequential([Dense(32, "relu"), Dense(1)], loss="mse", optimizer=Adam(0.01),
                       target_preprocess="standard")
    model.fit(Xtr, ytr, epochs=40, batch_size=32)
    assert model.evaluate(Xte, yte)["r2"] > 0.3
    assert model.predict(Xte).shape == (len(yte),)


def test_divergence_raises_with_epoch_and_step_and_keeps_finite_params():
    X, y = _blobs(100)
    X = X * 1e3
    model = Sequential([Dense(32, "relu"), Dense(3)], loss="mse", optimizer=SGD(1e3), preprocess=None)
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+, step \d+"):
        model.fit(X, np.eye(3)[y], epochs=50, batch_size=10)
    assert np.isfinite(model.params).all()


def test_binary_cross_entropy_with_string_labels():
    d = datasets.load("breast_cancer")
    labels = np.where(d.y == 1, "benign", "malignant")
    model = Sequential([Dense(16, "relu"), Dense(1)], loss="binary_cross_entropy", optimizer=Adam(0.01))
    model.fit(d.X, labels, epochs=10, batch_size=32)
    proba = model.predict_proba(d.X)
    assert proba.shape == (len(labels), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(model.predict(d.X)) <= {"benign", "malignant"}
    assert np.mean(model.predict(d.X) == labels) > 0.95


def test_class_weights_are_per_sample_weights_of_the_class():
    """class_weight={c: w} gives exactly the run with sample weight w on every row of class c."""
    X, y = _blobs(90)
    weights = {0: 5.0, 1: 1.0, 2: 0.5}
    a = Sequential([Dense(3)], seed=0, dtype="float64")
    a.fit(X, y, epochs=2, batch_size=30, class_weight=weights)
    b = Sequential([Dense(3)], seed=0, dtype="float64")
    b.fit(X, y, epochs=2, batch_size=30, sample_weight=np.array([weights[c] for c in y]))
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)
    c = Sequential([Dense(3)], seed=0, dtype="float64")
    c.fit(X, y, epochs=2, batch_size=30)
    assert np.max(np.abs(a.params - c.params)) > 1e-3  # and they do change the result


def test_balanced_class_weights_are_n_over_k_times_the_class_count():
    X, y = _blobs(90)
    y = np.where(np.arange(90) < 60, 0, y % 2 + 1)  # 60 rows of class 0, 15 each of 1 and 2
    counts = np.bincount(y)
    expected = len(y) / (3 * counts)
    a = Sequential([Dense(3)], seed=0, dtype="float64")
    a.fit(X, y, epochs=2, batch_size=30, class_weight="balanced")
    b = Sequential([Dense(3)], seed=0, dtype="float64")
    b.fit(X, y, epochs=2, batch_size=30, sample_weight=expected[y])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)


def test_same_seed_same_parameters_and_resume_is_bit_exact():
    X, y = _blobs(200)

    def make():
        return Sequential([Dense(16, "relu"), Dropout(0.2), Dense(3)], optimizer=Adam(0.01), seed=5)

    full = make()
    Trainer(full, X, y, epochs=3, batch_size=16).run()

    first = make()
    trainer = Trainer(first, X, y, epochs=3, batch_size=16)

    class StopMidEpoch:
        def on_train_begin(self, t): ...
        def on_batch_end(self, t, epoch, step, n, loss):
            if epoch == 1 and step == 4:
                t.stop_requested = True
        def on_epoch_end(self, t, record): ...
        def on_train_end(self, t): ...

    trainer.callbacks.append(StopMidEpoch())
    trainer.run()
    state, params = trainer.state_dict(), first.params.copy()
    assert (state["epoch"], state["step"]) == (1, 5)

    resumed = make()
    t2 = Trainer(resumed, X, y, epochs=3, batch_size=16)
    t2.load_state_dict(state)
    resumed.set_params(params)
    t2.run()
    np.testing.assert_array_equal(resumed.params, full.params)
    assert t2.history["loss"] == full.history["loss"]


def test_fit_continues_from_current_parameters():
    X, y = _blobs(100)
    model = Sequential([Dense(3)], optimizer=Adam(0.01))
    model.fit(X, y, epochs=1)
    before = model.params.copy()
    mean_before = model.preprocess.mean_.copy()
    model.fit(X[:50] + 10, y[:50], epochs=1)
    assert not np.array_equal(before, model.params)
    np.testing.assert_array_equal(model.preprocess.mean_, mean_before)  # scaler not refitted


def test_dropout_is_inactive_at_inference():
    X, y = _blobs(60)
    model = Sequential([Dense(8, "relu"), Dropout(0.5), Dense(3)])
    model.fit(X, y, epochs=1)
    # inference is the network without dropout: compare with the forward pass written out by hand
    first, last = model.layer_params[0], model.layer_params[2]
    hidden = np.maximum(model.prepare_X(X) @ first["W"] + first["b"], 0)
    logits = hidden @ last["W"] + last["b"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_digits_reaches_97_percent():
    from loomnet.engine.schedules import CosineDecay

    X, y = datasets.load_digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, seed=0)
    model = Sequential([Dense(256, "relu"), Dropout(0.3), Dense(128, "relu"), Dropout(0.3), Dense(10)],
                       optimizer=Adam(CosineDecay(2e-3, epochs=40)), l2=1e-3, seed=0)
    model.fit(Xtr, ytr, epochs=40, batch_size=32)
    assert np.mean(model.predict(Xte) == yte) >= 0.97


def test_summary_is_a_readable_table_and_save_round_trips(tmp_path):
    from loomnet import load_model

    X, y = _blobs(60)
    model = Sequential([Dense(8, "relu"), Dropout(0.2), Dense(3, "softmax")])
    model.fit(X, y, epochs=1)
    lines = model.summary().splitlines()
    assert lines[0].split() == ["layer", "output", "activation", "params"]
    assert lines[1].split() == ["dense", "(None,", "8)", "relu", str(X.shape[1] * 8 + 8)]
    assert lines[2].split() == ["dropout", "(None,", "8)", "rate", "0.2", "0"]
    assert "softmax applied by the loss" in lines[-1]
    model.save(tmp_path / "m.loom")
    np.testing.assert_array_equal(load_model(tmp_path / "m.loom").predict_proba(X), model.predict_proba(X))


def test_fit_shows_its_options_in_its_signature_and_docstring():
    import inspect

    parameters = inspect.signature(Sequential.fit).parameters
    for name in ("epochs", "batch_size", "validation_split", "early_stopping", "workers", "micro_batches", "callbacks"):
        assert name in parameters
    assert "runner" not in parameters and "early_stopping : EarlyStopping" in Sequential.fit.__doc__
