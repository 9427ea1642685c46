"""The overfitting warning (OverfittingMonitor, installed in every Trainer) and the learning-curve marks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from loomnet import Dense, EarlyStopping, History, OverfittingMonitor, OverfittingWarning, Sequential, Trainer
from loomnet.cli import plots


def overfitting_setup() -> tuple[Sequential, dict]:
    """40 noisy training rows, 30 features, 64 hidden units: validation loss turns up by epoch ~10."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 30))
    y = (X[:, 0] + rng.normal(scale=2, size=40) > 0).astype(int)
    Xv = rng.normal(size=(200, 30))
    yv = (Xv[:, 0] > 0).astype(int)
    model = Sequential([Dense(64, "relu"), Dense(2)], loss="cross_entropy", learning_rate=0.01)
    return model, {"X": X, "y": y, "batch_size": "full", "validation_data": (Xv, yv)}


def train(model: Sequential, data: dict, **kwargs) -> tuple[History, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = Trainer(model, data["X"], data["y"], batch_size=data["batch_size"],
                          validation_data=data["validation_data"], **kwargs).run()
    return history, [w for w in caught if issubclass(w.category, OverfittingWarning)]


def rising_streak_end(history: History, k: int) -> int | None:
    """First epoch that ends k epochs of rising val_loss with falling loss (computed independently)."""
    val, loss = history["val_loss"], history["loss"]
    for end in range(k, len(val)):
        if all(val[i] > val[i - 1] and loss[i] < loss[i - 1] for i in range(end - k + 1, end + 1)):
            return end + 1
    return None


def test_warns_once_when_validation_loss_rises_k_epochs_while_training_loss_falls():
    model, data = overfitting_setup()
    history, caught = train(model, data, epochs=40)
    expected = rising_streak_end(history, 5)
    assert expected is not None
    assert history.overfit_epoch == expected
    assert len(caught) == len(history.notes) == 1  # once for the streak, however long it runs on
    assert "validation loss rose 5 epochs in a row" in str(caught[0].message)
    assert history.notes[0].startswith(f"epoch {expected}: possible overfitting")


@pytest.mark.parametrize("k", [2, 8])
def test_patience_k_is_configurable_and_none_switches_it_off(k):
    model, data = overfitting_setup()
    history, caught = train(model, data, epochs=30, callbacks=[OverfittingMonitor(k)])
    assert history.overfit_epoch == rising_streak_end(history, k)
    model, data = overfitting_setup()
    history, caught = train(model, data, epochs=30, callbacks=[OverfittingMonitor(None)])
    assert caught == [] and history.overfit_epoch is None and history.notes == []


def test_no_warning_while_validation_loss_improves_or_without_validation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] > 0).astype(int)
    model = Sequential([Dense(8, "relu"), Dense(2)], loss="cross_entropy", learning_rate=0.01)
    history, caught = train(model, {"X": X[:300], "y": y[:300], "batch_size": 32,
                                    "validation_data": (X[300:], y[300:])}, epochs=15)
    assert caught == [] and history.overfit_epoch is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", OverfittingWarning)
        Sequential([Dense(2)]).fit(X, y, epochs=5)


def test_bad_patience_is_refused_with_the_value():
    with pytest.raises(ValueError, match="patience must be an integer >= 1 or None, got 0"):
        OverfittingMonitor(0)


def test_resumed_training_warns_at_the_same_epoch_and_history_round_trips():
    model, data = overfitting_setup()
    full, _ = train(model, data, epochs=25)
    assert full.overfit_epoch is not None

    first, data = overfitting_setup()
    trainer = Trainer(first, data["X"], data["y"], epochs=25, batch_size="full",
                      validation_data=data["validation_data"])
    trainer.epochs = full.overfit_epoch - 2  # stop inside the rising streak
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverfittingWarning)
        trainer.run()
    state, params = trainer.state_dict(), first.params.copy()

    resumed, data = overfitting_setup()
    t2 = Trainer(resumed, data["X"], data["y"], epochs=25, batch_size="full", validation_data=data["validation_data"])
    t2.load_state_dict(state)
    resumed.set_params(params)
    with pytest.warns(OverfittingWarning):
        history = t2.run()
    assert history.overfit_epoch == full.overfit_epoch
    again = History.from_dict(history.to_dict())
    assert again.overfit_epoch == full.overfit_epoch and again.notes == history.notes


def test_learning_curve_marks_early_stopping_point_and_overfitting(monkeypatch, tmp_path):
    model, data = overfitting_setup()
    history, _ = train(model, data, epochs=60, early_stopping=EarlyStopping(patience=12))
    assert history.stop_reason == "early_stopping" and history.best_epoch < history.overfit_epoch
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure))
    plots.plot_history(history.records, tmp_path / "curves.png", best_epoch=history.best_epoch,
                       overfit_epoch=history.overfit_epoch)
    loss_axes = drawn[0].axes[0]
    vertical = {line.get_xdata()[0] for line in loss_axes.lines if len(set(line.get_xdata())) == 1}
    assert {history.best_epoch, history.overfit_epoch} <= vertical
    labels = [text.get_text() for text in loss_axes.get_legend().get_texts()]
    assert f"early stopping: best epoch {history.best_epoch}" in labels
    assert f"overfitting warning (epoch {history.overfit_epoch})" in labels


def test_learning_curve_png_is_written(tmp_path):
    model, data = overfitting_setup()
    history, _ = train(model, data, epochs=12, early_stopping=3)
    plots.plot_history(history.records, tmp_path / "curves.png", best_epoch=history.best_epoch)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_warnings_point_at_the_users_line():
    import warnings as w

    import loomnet as ln

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with w.catch_warnings(record=True) as caught:
        w.simplefilter("always")
        ln.Sequential([ln.Dense(2)]).fit(X, y, epochs=1, workers=8)  # more workers than cores
    assert caught and all(item.filename == __file__ for item in caught)
