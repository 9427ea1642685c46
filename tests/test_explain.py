"""Permutation importance and gradient attributions (loomnet.explain) on models whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import loomnet as ln
import loomnet.explain
from loomnet import Dense, Sequential
from loomnet.cli.explain_plots import image_shape, plot_attribution_images, plot_importance
from loomnet.explain import (
    METHODS,
    explain,
    input_gradients,
    integrated_gradients,
    permutation_importance,
)
from loomnet.parallel import available_cores

OFFSETS = np.array([0.0, 5.0, -3.0, 10.0, 2.0, 0.0])


def informative_data(task: str, n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six features with offsets; only features 0 and 3 (centred) decide the target."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 6))
    z0, z3 = Z[:, 0], Z[:, 3]
    if task == "regression":
        y = 2 * z0 - 1.5 * z3 + 0.5 * z0 * z3 + 0.05 * rng.normal(size=n)
    elif task == "binary":
        y = (z0 + z3 > 0).astype(int)
    else:
        y = (z0 > 0).astype(int) + (z3 > 0).astype(int)
    return Z + OFFSETS, y


def trained_model(task: str, activation: str = "relu") -> tuple[Sequential, np.ndarray, np.ndarray]:
    X, y = informative_data(task)
    head = {"regression": (Dense(1), "mse"), "binary": (Dense(1), "binary_cross_entropy"),
            "multiclass": (Dense(3), "cross_entropy")}[task]
    model = Sequential([Dense(16, activation), head[0]], loss=head[1], learning_rate=0.01,
                       target_preprocess="standard" if task == "regression" else None)
    model.fit(X[:700], y[:700], epochs=30, batch_size=32)
    return model, X[700:], y[700:]


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Sequential, np.ndarray, np.ndarray]]:
    return {task: trained_model(task) for task in ("binary", "multiclass", "regression")}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_method_ranks_the_two_informative_features_first(models, task, method):
    model, X, y = models[task]
    result = explain(model, X, y, method=method)
    assert set(result.ranking()[:2].tolist()) == {0, 3}, result.table()
    others = np.delete(result.mean, [0, 3])
    assert min(result.mean[0], result.mean[3]) > 3 * others.max()


@pytest.mark.parametrize("baseline", ["mean", "zero"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_integrated_gradients_sum_to_output_difference_within_one_percent(activation, baseline):
    model, X, _ = trained_model("multiclass", activation)
    X = X[:60]
    attributions, gap = integrated_gradients(model, X, baseline=baseline)
    base = np.zeros_like(X) if baseline == "zero" else np.broadcast_to(X.mean(axis=0), X.shape)
    rows = np.arange(len(X))
    target = model.decision_function(X).argmax(axis=1)
    delta = model.decision_function(X)[rows, target] - model.decision_function(base)[rows, target]
    error = np.abs(attributions.sum(axis=1) - delta)
    assert (error <= 0.01 * np.maximum(np.abs(delta), 1e-3 * np.abs(delta).max()) + 1e-5).all()
    assert gap.max() <= 0.01


def test_integrated_gradients_of_a_linear_model_are_weight_times_displacement():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4)) * [1, 10, 0.1, 3]
    y = X @ [1.0, 0.1, 10.0, -1.0]
    model = Sequential([Dense(1)], loss="mse", dtype="float64", learning_rate=0.05)
    model.fit(X, y, epochs=200, batch_size="full")
    slope = input_gradients(model, X[:1])[1][0]  # d prediction / d raw feature, through the scaler
    attributions, _ = integrated_gradients(model, X[:5], baseline="zero", n_steps=4)
    np.testing.assert_allclose(attributions, slope * X[:5], rtol=1e-9)
    np.testing.assert_allclose(slope, [1.0, 0.1, 10.0, -1.0], rtol=1e-3)


@pytest.mark.parametrize("preprocess", ["standard", "minmax", None])
def test_input_gradients_match_finite_differences_of_predict_on_raw_features(preprocess):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3)) * [1.0, 100.0, 0.01] + [0.0, 500.0, 1.0]
    y = np.sin(X[:, 0]) + np.tanh((X[:, 1] - 500) / 100) * 3 + 50 * (X[:, 2] - 1)
    model = Sequential([Dense(8, "tanh"), Dense(1)], loss="mse", dtype="float64", preprocess=preprocess,
                       target_preprocess="standard", learning_rate=0.01)
    model.fit(X, y, epochs=5, batch_size=32)
    f, grad = input_gradients(model, X[:4])
    np.testing.assert_allclose(f, model.predict(X[:4]), rtol=1e-10)
    for j, h in enumerate([1e-4, 1e-2, 1e-6]):
        step = np.zeros(3)
        step[j] = h
        numeric = (model.predict(X[:4] + step) - model.predict(X[:4] - step)) / (2 * h)
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-5, atol=1e-9)


def test_permutation_importance_does_not_depend_on_the_number_of_threads(models):
    model, X, y = models["multiclass"]
    one = permutation_importance(model, X, y, n_jobs=1, n_repeats=3)
    two = permutation_importance(model, X, y, n_jobs=2, n_repeats=3)
    np.testing.assert_array_equal(one.values, two.values)
    assert two.extra["n_jobs"] == 2 and one.values.shape == (6, 3)


@pytest.mark.timeout(60)
def test_permutation_workers_limit_blas_so_threads_fit_the_cores(models):
    model, X, y = models["binary"]
    seen: list[int] = []

    def accuracy_noting_blas_threads(y_true, y_pred):
        seen.append(max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=0))
        return float(np.mean(y_true == y_pred))

    workers = 2
    permutation_importance(model, X, y, metric=accuracy_noting_blas_threads, n_jobs=workers, n_repeats=1)
    in_workers = seen[1:]  # the first call scores the unshuffled data, before the workers start
    assert len(in_workers) == X.shape[1] and max(in_workers) <= max(1, available_cores() // workers)


@pytest.mark.parametrize("metric", ["loss", "log_loss", "f1", "accuracy"])
def test_importance_means_worse_for_every_metric_direction(models, metric):
    model, X, y = models["multiclass"]
    result = permutation_importance(model, X, y, metric=metric, n_repeats=2)
    assert result.metric == metric
    assert result.mean[0] > 0 and result.mean[3] > 0
    assert set(result.ranking()[:2].tolist()) == {0, 3}


def test_regression_permutation_with_mse_ranks_informative_features(models):
    model, X, y = models["regression"]
    result = permutation_importance(model, X, y, metric="mse", n_repeats=2)
    assert set(result.ranking()[:2].tolist()) == {0, 3} and result.mean[0] > 0


def test_bad_metric_method_and_target_name_the_valid_choices(models):
    model, X, y = models["multiclass"]
    with pytest.raises(ValueError, match="unknown metric 'auc'.*accuracy"):
        permutation_importance(model, X, y, metric="auc")
    with pytest.raises(ValueError, match="metric 'r2' is for regression models"):
        permutation_importance(model, X, y, metric="r2")
    with pytest.raises(ValueError, match="unknown method 'shap'.*integrated-gradients"):
        explain(model, X, y, method="shap")
    with pytest.raises(ValueError, match="needs targets y"):
        explain(model, X, method="permutation")
    with pytest.raises(ValueError, match="target must index the 3 network outputs"):
        integrated_gradients(model, X[:3], target=5)
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(model, X[:3], baseline="median")
    with pytest.raises(ValueError, match="n_steps must be a positive integer, got 0"):
        integrated_gradients(model, X[:3], n_steps=0)
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        permutation_importance(model, X, y, n_repeats=0)


def test_table_and_dict_list_features_most_important_first(models):
    model, X, y = models["regression"]
    model.feature_names = ["a", "b", "c", "d", "e", "f"]
    try:
        result = explain(model, X, method="integrated-gradients")
    finally:
        model.feature_names = None
    lines = result.table(top=3).splitlines()
    assert len(lines) == 4 and {lines[1].split()[1], lines[2].split()[1]} == {"a", "d"}
    summary = result.to_dict(top=2)
    assert [f["rank"] for f in summary["features"]] == [1, 2]
    assert summary["completeness_max_gap"] <= 0.01 and summary["n_samples"] == len(X)


def test_bar_chart_and_heat_map_are_written_as_png(models, tmp_path):
    model, X, y = models["multiclass"]
    result = explain(model, X, y, method="saliency")
    plot_importance(result, tmp_path / "bars.png", top=4)
    images = np.abs(np.random.default_rng(0).normal(size=(3, 64)))
    plot_attribution_images(images, images - 1, tmp_path / "heat.png", labels=["a", "b", "c"])
    for name in ("bars.png", "heat.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_shape_is_read_from_pixel_feature_names():
    assert image_shape([f"pixel_{r}_{c}" for r in range(8) for c in range(8)]) == (8, 8)
    assert image_shape([f"pixel_{r}_{c}" for r in range(2) for c in range(3)]) == (2, 3)
    assert image_shape([f"pixel_{r}_{c}" for c in range(8) for r in range(8)]) is None  # column-major
    assert image_shape(["mean radius", "mean texture"]) is None


def test_input_gradients_in_chunks_equal_one_pass(models):
    model, X, _ = models["multiclass"]
    whole = input_gradients(model, X)
    chunked = input_gradients(model, X, chunk_size=7)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])


def test_multi_label_models_are_explained_per_label():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 5))
    Y = np.stack([X[:, 0] > 0, X[:, 3] > 0], axis=1).astype(int)
    model = Sequential([Dense(8, "relu"), Dense(2)], loss="binary_cross_entropy", learning_rate=0.02)
    model.fit(X, Y, epochs=20)
    assert permutation_importance(model, X, Y, n_repeats=2).ranking()[:2].tolist() in ([0, 3], [3, 0])
    assert np.abs(integrated_gradients(model, X[:20], target=1)[0]).mean(axis=0).argmax() == 3


def test_groups_permute_and_attribute_whole_original_columns():
    """A categorical column's one-hot parts are one feature: shuffled together, attributions added up."""
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 3, 300)
    onehot = np.eye(3)[colour]
    size = rng.normal(size=300)
    X = np.column_stack([size, onehot])
    y = (colour == 1).astype(int)
    model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(2)], seed=0)
    model.fit(X, y, epochs=30, batch_size=32)
    groups = [("size", [0]), ("colour", [1, 2, 3])]
    perm = ln.explain.permutation_importance(model, X, y, groups=groups, n_repeats=3)
    assert perm.feature_names == ["size", "colour"] and perm.mean[1] > 0.2 > abs(perm.mean[0])
    ig = ln.explain.explain(model, X[:20], method="integrated-gradients", groups=groups)
    plain = ln.explain.explain(model, X[:20], method="integrated-gradients")
    np.testing.assert_allclose(ig.values[:, 1], plain.values[:, 1:].sum(axis=1))
    with pytest.raises(ValueError, match="cover each"):
        ln.explain.permutation_importance(model, X, y, groups=[("size", [0])])
