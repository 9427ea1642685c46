"""BatchNorm: population statistics after every epoch, the same bits for any number of synchronous
workers, every runner, model files and hostile configurations. Gradients: tests/engine/test_gradients.py."""

import numpy as np
import pytest

import loomnet as ln
from loomnet.engine.batchnorm import STATISTICS_ROWS, statistics_rows
from loomnet.engine.layer_registry import layer_from_config


def _network(dtype="float32", dropout=0.2):
    return ln.Sequential([ln.Dense(32), ln.BatchNorm(), ln.ActivationLayer("relu"), ln.Dropout(dropout),
                          ln.Residual([ln.BatchNorm(), ln.Dense(32, "tanh")]), ln.Dense(10)],
                         dtype=dtype, seed=2)


def _inputs_of(model, layer_index, X):
    """The prepared inputs that reach top-level layer ``layer_index`` at inference."""
    h = model.prepare_X(X)
    for layer, views in zip(model.layers[:layer_index], model.layer_params[:layer_index], strict=True):
        h, _ = layer.forward(views, h, training=False, rng=None, ws=None, key=0)
    return h.astype(np.float64)


def test_running_statistics_are_the_population_statistics_of_the_training_rows(digits):
    X, y = digits.X, digits.y
    model = _network("float64")
    model.fit(X, y, epochs=2, batch_size=128)
    h = _inputs_of(model, 1, X)
    stats = model.layer_params[1]
    np.testing.assert_allclose(stats["running_mean"], h.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats["running_var"], h.var(axis=0), rtol=1e-10, atol=1e-12)
    # the BatchNorm inside the residual block is measured with the first one's statistics in place
    inner = model.layers[4]._split(model.layer_params[4])[0]
    h4 = _inputs_of(model, 4, X)
    np.testing.assert_allclose(inner["running_mean"], h4.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(inner["running_var"], h4.var(axis=0), rtol=1e-10, atol=1e-12)


def test_validation_rows_are_never_measured(digits):
    X, y = digits.X, digits.y
    model = ln.Sequential([ln.BatchNorm(), ln.Dense(10)], preprocess=None, dtype="float64", seed=0)
    X_train, X_val = X[:1000], X[1000:] + 100.0  # validation rows far from the training rows
    model.fit(X_train, y[:1000], validation_data=(X_val, y[1000:]), epochs=1)
    np.testing.assert_allclose(model.layer_params[0]["running_mean"], X_train.mean(axis=0), atol=1e-10)


def test_sync_workers_give_the_same_bits_at_default_settings(digits):
    X, y = digits.X, digits.y
    fitted = []
    for workers in (1, 2, 3):
        model = _network()
        with pytest.warns(RuntimeWarning) if workers > 2 else _no_warning():
            model.fit(X, y, epochs=2, batch_size=256, workers=workers, validation_split=0.1)
        fitted.append(model.params.copy())
    assert all(np.array_equal(fitted[0], p) for p in fitted[1:])


def test_every_runner_trains_and_files_keep_the_statistics(digits, tmp_path):
    from loomnet.distributed import DistributedTrainer

    X, y = digits.X, digits.y
    hogwild = _network()
    history = hogwild.fit(X, y, epochs=3, batch_size=32, workers=2, mode="hogwild")
    assert history["loss"][-1] < history["loss"][0]
    mpi = _network("float64")
    history = DistributedTrainer(mpi, X, y, comm="serial", deterministic=True, micro_batches=4, epochs=3,
                                 batch_size=128).run()
    assert history["loss"][-1] < history["loss"][0]
    hogwild.save(tmp_path / "bn.loom")
    loaded = ln.load_model(tmp_path / "bn.loom")
    np.testing.assert_array_equal(loaded.params, hogwild.params)
    np.testing.assert_array_equal(loaded.predict_proba(X), hogwild.predict_proba(X))


def test_restoring_the_best_epoch_restores_its_statistics(digits):
    X, y = digits.X, digits.y
    model = _network(dropout=0.0)
    seen = {}

    class Snapshot(ln.Callback):
        def on_epoch_end(self, trainer, record):
            seen[record["epoch"]] = trainer.model.params.copy()

    history = model.fit(X, y, epochs=12, batch_size=64, validation_split=0.2, callbacks=[Snapshot()],
                        early_stopping=ln.EarlyStopping(patience=2, min_delta=0.05, restore_best_weights=True))
    np.testing.assert_array_equal(model.params, seen[history.best_epoch])


def test_statistics_rows_are_a_fixed_evenly_spaced_subset():
    rows = np.random.default_rng(0).permutation(50_000)
    chosen = statistics_rows(rows)
    assert len(chosen) == STATISTICS_ROWS and chosen[0] == 0 and chosen[-1] == 49_999
    assert np.array_equal(chosen, statistics_rows(np.sort(rows)))  # whatever the epoch's order
    assert np.all(np.diff(chosen) > 0)


@pytest.mark.parametrize("config", [{"kind": "batch_norm", "epsilon": 0}, {"kind": "batch_norm", "epsilon": -1.0},
                                    {"kind": "batch_norm", "momentum": 0.1}])
def test_bad_configurations_are_refused(config):
    with pytest.raises((ValueError, TypeError)):
        layer_from_config(config)


def _no_warning():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def ctx():
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            yield

    return ctx()


def test_streaming_from_disk_measures_the_rows_on_disk(digits, tmp_path):
    X, y = digits.X, digits.y
    np.save(tmp_path / "X.npy", X)
    model = ln.Sequential([ln.Dense(16), ln.BatchNorm(), ln.Dense(10)], dtype="float64", seed=0)
    ln.fit_stream(model, str(tmp_path / "X.npy"), y, epochs=2, batch_size=128)
    h = _inputs_of(model, 1, X)
    np.testing.assert_allclose(model.layer_params[1]["running_mean"], h.mean(axis=0), rtol=1e-10, atol=1e-12)


def test_a_model_file_with_a_negative_running_variance_is_refused(digits, tmp_path):
    from loomnet.io.modelfile import read_container, write_container

    model = ln.Sequential([ln.Dense(8), ln.BatchNorm(), ln.Dense(10)], seed=0)
    model.fit(digits.X, digits.y, epochs=1)
    model.save(tmp_path / "ok.loom")
    header, tensors = read_container(tmp_path / "ok.loom")
    params = tensors["params"].copy()
    offset = next(o for i, name, _, o, _ in model.layout.entries if i == 1 and name == "running_var")
    params[offset] = -1.0
    write_container(tmp_path / "bad.loom", {k: v for k, v in header.items()
                                             if k not in ("format", "format_version", "tensors_sha256",
                                                          "tensors_bytes")}, {"params": params})
    with pytest.raises(ln.ModelFileError, match="running variance"):
        ln.load_model(tmp_path / "bad.loom")
