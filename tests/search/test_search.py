"""Concurrent model search on threads (one shared copy of the data) and on processes (shared memory)."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import loomnet as ln
from loomnet.search import jobs as search

pytestmark = pytest.mark.timeout(120)
GRID = {"hidden": [(16,), (32,)], "learning_rate": [0.003, 0.01]}


def test_grid_search_scores_every_candidate_on_every_fold(digits):
    before = set(threading.enumerate())
    result = search.grid_search(GRID, digits.X, digits.y, cv=3, epochs=3, batch_size=64, n_jobs=2)
    assert len(result.results) == 4 * 3
    assert {(tuple(sorted(r.params.items())), r.fold) for r in result.results} == {
        (tuple(sorted(p.items())), f) for p in search.parameter_grid(GRID) for f in range(3)}
    assert result.best_score == max(score for _, score in result.candidates())
    assert result.best_score > 0.8
    assert set(threading.enumerate()) == before


def test_thread_search_gives_the_scores_of_a_serial_search(digits):
    threaded = search.grid_search(GRID, digits.X, digits.y, cv=2, epochs=2, n_jobs=2)
    serial = search.grid_search(GRID, digits.X, digits.y, cv=2, epochs=2, n_jobs=1)
    assert [r.score for r in threaded.results] == [r.score for r in serial.results]


def test_process_backend_gives_the_thread_backends_scores(digits):
    options = {"cv": 2, "epochs": 2, "batch_size": 64, "n_jobs": 2}
    threads = search.grid_search({"hidden": [(16,)]}, digits.X, digits.y, backend="threads", **options)
    processes = search.grid_search({"hidden": [(16,)]}, digits.X, digits.y, backend="processes", **options)
    assert [r.score for r in processes.results] == [r.score for r in threads.results]


def test_random_search_draws_n_iter_candidates_reproducibly(digits):
    space = {"hidden": [(8,), (16,), (32,)], "learning_rate": lambda rng: float(10 ** rng.uniform(-3, -2))}
    assert search.parameter_samples(space, 5, seed=1) == search.parameter_samples(space, 5, seed=1)
    result = search.random_search(space, digits.X, digits.y, n_iter=3, cv=2, epochs=1)
    assert len(result.results) == 6


def test_cross_validate_returns_one_held_out_score_per_fold(digits):
    scores = search.cross_validate({"hidden": (32,)}, digits.X, digits.y, cv=4, epochs=3)
    assert len(scores) == 4 and all(0.7 < s <= 1 for s in scores)


def test_kfold_rows_partition_the_data():
    folds = search.kfold_rows(103, 5)
    held_out = np.concatenate([test for _, test in folds])
    assert sorted(held_out) == list(range(103))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 103


def test_bagged_ensemble_predicts_at_least_as_well_as_its_typical_member(digits):
    X_train, X_test, y_train, y_test = ln.train_test_split(digits.X, digits.y, test_size=0.3, seed=0)
    ensemble = ln.bagging({"hidden": (32,)}, X_train, y_train, n_estimators=4, epochs=5)
    accuracy = np.mean(ensemble.predict(X_test) == y_test)
    members = [np.mean(m.predict(X_test) == y_test) for m in ensemble.models]
    assert accuracy >= np.median(members) - 0.01
    assert accuracy > 0.85


def test_bad_backend_is_refused_with_the_valid_ones(digits):
    with pytest.raises(ValueError, match="'threads', 'processes'"):
        search.grid_search(GRID, digits.X, digits.y, backend="gpu")


# A thread search must not copy the data per model: the peak memory for 8 models is that for 2.
_PEAK_FOR_MODELS = textwrap.dedent("""
    import sys
    import numpy as np
    from loomnet.search import jobs as search

    n_models = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 200)).astype(np.float32)   # 32 MB
    y = (X[:, 0] > 0).astype(int)
    search.grid_search({"seed": list(range(2))}, X[:2000], y[:2000], cv=2, epochs=1)  # warm up
    from loomnet.search.backends import peak_rss_mb  # VmHWM: ru_maxrss would start at pytest's peak
    base = peak_rss_mb()
    search.run_search([{"seed": s, "hidden": (8,)} for s in range(n_models // 2)], X, y, cv=2, epochs=1,
                      batch_size=256, n_jobs=n_models)
    print(peak_rss_mb() - base)
""")


def test_thread_search_holds_one_copy_of_the_data_whatever_the_number_of_models():
    growth = {}
    for n_models in (2, 8):
        out = subprocess.run([sys.executable, "-c", _PEAK_FOR_MODELS, str(n_models)], capture_output=True,
                             text=True, timeout=100)
        assert out.returncode == 0, out.stderr
        growth[n_models] = float(out.stdout.split()[-1])
    data_mb = 40_000 * 200 * 4 / 2**20
    assert growth[8] < growth[2] + data_mb, growth   # 6 more copies would add 6 × 30 MB


@pytest.mark.parametrize("backend", ["threads", "processes"])
def test_an_error_in_a_job_reaches_the_caller(backend, digits):
    with pytest.raises(ValueError, match="Dense units must be a positive integer"):
        search.grid_search({"hidden": [(16,), (-1,)]}, digits.X[:200], digits.y[:200], cv=2, epochs=1,
                           backend=backend, n_jobs=2)


def test_each_fold_is_standardised_with_its_training_rows_only():
    """No leakage: a held-out fold's rows never enter the scaler its model is scored with."""
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(60, 3))
    X[40:] += 100.0  # the last rows sit far away: any fold holding them out sees a very different mean
    rows = np.arange(40)
    scaler = search.fit_scaler_on_rows(X.astype(np.float32), rows, chunk=7)
    np.testing.assert_allclose(scaler.mean_, X[:40].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scaler.scale_, X[:40].std(axis=0), rtol=1e-5)
    result = search.run_search([{"hidden": (8,)}], X, (X[:, 0] > 50).astype(int), cv=3, epochs=1)
    assert len(result.results) == 3
