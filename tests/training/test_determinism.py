"""The determinism promise, tested where users meet it: in mode="sync" the fitted parameters do not
depend on the number of workers (1, 2, 3, 4, 8) or on the machine's core count, at default
settings, through the core API, the CLI (--workers) and the estimators (n_workers), with dropout,
L2, sample weights and class weights."""

from __future__ import annotations

import numpy as np
import pytest

import loomnet as ln
from loomnet.io.modelfile import load_model
from tests.cli_helpers import run_cli, write_people_csv

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore:.*workers on.*cores:RuntimeWarning")]
WORKERS = (1, 2, 3, 4, 8)


@pytest.fixture(scope="module")
def digits(digits):
    return digits.X[:600], digits.y[:600]


def _network(dtype="float32", optimizer="adam"):
    return ln.Sequential([ln.Dense(48, "relu"), ln.Dropout(0.2), ln.Dense(24, "tanh"), ln.Dropout(0.1),
                          ln.Dense(10)], optimizer=optimizer, l2=1e-3, dtype=dtype, seed=3)


def test_core_api_at_default_settings_with_dropout_l2_sample_and_class_weights(digits):
    X, y = digits
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(X))
    finals = []
    for workers in WORKERS:
        model = _network()
        model.fit(X, y, epochs=3, batch_size=512, workers=workers, sample_weight=weights, class_weight="balanced",
                  validation_split=0.1, seed=5)  # batches of 512 rows: 8 slices by default
        finals.append(model.params.copy())
    for workers, params in zip(WORKERS, finals, strict=True):
        assert np.array_equal(params, finals[0]), f"workers={workers} differs from workers=1"


def test_plain_loop_and_sync_workers_differ_only_by_rounding_on_digits_float64(digits):
    """Dropout masks are a function of (seed, epoch, step, row position): 5 epochs on digits with
    dropout, float64, plain loop against 4 workers (8 slices a batch)."""
    X, y = digits
    finals = []
    for options in ({}, {"workers": 4}):
        model = _network(dtype="float64", optimizer=ln.SGD(0.05, momentum=0.9))
        model.fit(X, y, epochs=5, batch_size=512, seed=5, **options)
        finals.append(model.params.copy())
    assert np.max(np.abs(finals[0] - finals[1])) <= 1e-9


@pytest.mark.parametrize("mode", ["sync"])
def test_estimator_n_workers_give_the_same_coefficients(digits, mode):
    """The issue's own example: MLPClassifier with dropout through n_workers = 1, 2, 3, 4."""
    pytest.importorskip("sklearn")
    from loomnet.sklearn import MLPClassifier

    X, y = digits
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    fits = []
    for k in (1, 2, 3, 4):
        est = MLPClassifier(hidden_layer_sizes=(64,), solver="sgd", momentum=0.9, learning_rate_init=0.05,
                            batch_size=256, max_iter=5, random_state=3, dropout=0.1, alpha=1e-3, n_workers=k,
                            parallel_mode=mode)
        with pytest.warns(Warning):  # max_iter reached: ConvergenceWarning
            est.fit(X, y, sample_weight=weights)
        fits.append(est)
    for est in fits[1:]:
        for a, b in zip(est.coefs_ + est.intercepts_, fits[0].coefs_ + fits[0].intercepts_, strict=True):
            assert np.array_equal(a, b)


def test_estimator_default_is_the_plain_loop():
    pytest.importorskip("sklearn")
    from loomnet.sklearn import MLPClassifier, MLPRegressor

    assert MLPClassifier().n_workers is None and MLPRegressor().n_workers is None
    assert MLPClassifier().micro_batches is None


def test_estimator_micro_batches_is_honoured(digits):
    pytest.importorskip("sklearn")
    from loomnet.sklearn import MLPClassifier

    X, y = digits
    coefs = []
    for k, m in ((1, 3), (3, 3), (2, 5)):
        est = MLPClassifier(hidden_layer_sizes=(16,), batch_size=50, max_iter=2, random_state=0, dropout=0.2,
                            n_workers=k, micro_batches=m)
        with pytest.warns(Warning):
            est.fit(X, y)
        coefs.append(est.coefs_[0])
    assert np.array_equal(coefs[0], coefs[1])
    assert not np.array_equal(coefs[0], coefs[2])  # another split is another (rounding of the) sum


def test_cli_workers_give_identical_model_files(tmp_path):
    data = write_people_csv(tmp_path / "people.csv", n=200)
    params = []
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}.loom"
        result = run_cli("train", str(data), "--target", "label", "--epochs", "3", "--hidden", "16,8",
                         "--dropout", "0.2", "--l2", "1e-3", "--batch-size", "192", "--workers", str(workers),
                         "--no-plot", "--quiet", "--out", str(out))
        assert result.returncode == 0, result.stderr
        params.append(load_model(out).params.copy())
    assert all(np.array_equal(params[0], p) for p in params[1:])


def test_cli_micro_batches_needs_workers(tmp_path):
    from tests.cli_helpers import assert_user_error

    data = write_people_csv(tmp_path / "people.csv", n=40)
    result = run_cli("train", str(data), "--target", "label", "--micro-batches", "4", "--no-plot", "--quiet",
                     "--out", str(tmp_path / "m.loom"))
    assert_user_error(result, "--micro-batches", "--workers")


def _tabular_network(dtype="float32"):
    return ln.Sequential([ln.CategoricalEmbedding([(0, 8), (16, 8)], dims=[4, 3]), ln.PeriodicEmbedding(4, 2),
                          ln.Dense(32, "relu"), ln.Residual.block(32, 48, dropout=0.2),
                          ln.Residual.block(32, 48),
                          ln.LayerNorm(), ln.Dense(10)], optimizer="adam", dtype=dtype, seed=4)


def test_residual_and_layer_norm_networks_keep_the_promise_in_every_runner(digits, tmp_path):
    """The tabular layers in the plain loop, synchronous threads (same bits for any workers),
    Hogwild and MPI (one process on the serial collective, deterministic reduction), and in .loom files."""
    from loomnet.distributed import DistributedTrainer

    X, y = digits
    sync = []
    for workers in (1, 2, 3):
        model = _tabular_network()
        model.fit(X, y, epochs=2, batch_size=256, workers=workers, seed=1)
        sync.append(model.params.copy())
    assert all(np.array_equal(sync[0], p) for p in sync[1:])
    plain, threads = _tabular_network("float64"), _tabular_network("float64")
    plain.fit(X, y, epochs=3, batch_size=256, seed=1)
    threads.fit(X, y, epochs=3, batch_size=256, workers=2, seed=1)
    assert np.max(np.abs(plain.params - threads.params)) <= 1e-9
    mpi = _tabular_network("float64")
    DistributedTrainer(mpi, X, y, comm="serial", deterministic=True, micro_batches=1, epochs=3, batch_size=256,
                       seed=1).run()
    assert np.max(np.abs(plain.params - mpi.params)) <= 1e-9
    hogwild = _tabular_network()
    history = hogwild.fit(X, y, epochs=3, batch_size=32, workers=2, mode="hogwild", seed=1)
    assert history["loss"][-1] < history["loss"][0]
    hogwild.save(tmp_path / "t.loom")
    np.testing.assert_array_equal(ln.load_model(tmp_path / "t.loom").predict_proba(X), hogwild.predict_proba(X))
