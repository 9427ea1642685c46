"""The tabular recipe and what it relies on: robust scaling (its gradient checked), the CLI's use of it."""

from __future__ import annotations

import numpy as np
import pytest

import loomnet as ln
from loomnet.engine.preprocessing import RobustScaler, scaler_from_dict
from loomnet.io.modelfile import open_model
from loomnet.recipes import tabular_recipe
from tests.cli_helpers import run_cli, write_people_csv


def test_robust_scaling_is_median_and_quantile_range_then_a_smooth_clip():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.lognormal(size=500), rng.integers(0, 2, 500), np.full(500, 3.0)])
    scaler = RobustScaler().fit(X)
    q25, q50, q75 = np.quantile(X[:, 0], [0.25, 0.5, 0.75])
    z = (X[:, 0] - q50) / (q75 - q25)
    np.testing.assert_allclose(scaler.transform(X)[:, 0], z / np.sqrt(1 + (z / 3) ** 2), rtol=1e-12)
    assert np.all(np.abs(scaler.transform(X * 1e6)) < 3)  # outliers pulled in below 3
    assert np.all(scaler.transform(X)[:, 2] == 0)  # a constant column maps to 0
    again = scaler_from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_robust_scaling_slope_matches_finite_differences():
    rng = np.random.default_rng(1)
    X = rng.lognormal(size=(50, 3)) * [1, 10, 100]
    scaler = RobustScaler().fit(X)
    h = 1e-6 * np.abs(X).max(axis=0)
    numeric = (scaler.transform(X + h) - scaler.transform(X - h)) / (2 * h)
    np.testing.assert_allclose(scaler.slope(X), numeric, rtol=1e-6)


def test_input_gradients_through_robust_scaling_match_finite_differences():
    from loomnet.explain import input_gradients

    rng = np.random.default_rng(2)
    X = rng.lognormal(size=(120, 4))
    y = (X[:, 0] > 1).astype(int)
    model = ln.Sequential([ln.Dense(8, "tanh"), ln.Dense(2)], preprocess="robust", dtype="float64", seed=0)
    model.fit(X, y, epochs=5, batch_size=16)
    f, grad = input_gradients(model, X[:10], target=1)
    h = 1e-6
    for j in range(4):
        step = np.zeros(4)
        step[j] = h
        up = input_gradients(model, X[:10] + step, target=1)[0]
        down = input_gradients(model, X[:10] - step, target=1)[0]
        np.testing.assert_allclose(grad[:, j], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("rows, hidden", [(300, (128, 128)), (5000, (256, 256)), (50_000, (256, 256, 256))])
def test_the_recipe_grows_with_the_data(rows, hidden):
    recipe = tabular_recipe(rows, 12, "classify", 3)
    assert recipe.hidden == hidden
    assert 40 <= recipe.epochs <= 400 and recipe.patience >= 12
    model = recipe.build_model(3)
    assert model.optimizer.name == "adamw" and model.preprocess.kind == "robust"
    regression = tabular_recipe(rows, 12, "regress").build_model(1)
    assert regression.target_preprocess.kind == "standard" and regression.loss.name == "mse"


def test_the_cli_prints_and_stores_its_recipe_and_options_override_it(tmp_path):
    write_people_csv(tmp_path / "people.csv", n=200)
    result = run_cli("train", "people.csv", "--target", "label", "--no-plot", "-o", "p.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "recipe: 2 hidden layers 128-128" in result.stderr
    loom = open_model(tmp_path / "p.loom")
    assert loom.extra["recipe"]["hidden"] == [128, 128] and loom.model.optimizer.name == "adamw"
    assert loom.model.history.stop_reason in ("early_stopping", "max_epochs")
    mine = run_cli("train", "people.csv", "--target", "label", "--hidden", "8", "--optimizer", "sgd", "--epochs", "3",
                   "--no-plot", "-o", "q.loom", cwd=tmp_path)
    assert mine.returncode == 0, mine.stderr
    loom = open_model(tmp_path / "q.loom")
    model = loom.model
    assert [layer.n_out for layer in model.layers if hasattr(layer, "units")] == [8, 2]
    assert model.optimizer.name == "sgd" and len(model.history.records) == 3
    # what is printed and stored is the recipe as trained, naming the options that replaced its choices
    assert "recipe: 1 hidden layer 8 " in mine.stderr and "over 3 epochs" in mine.stderr
    assert "(given: --hidden, --optimizer, --epochs)" in mine.stderr
    assert loom.extra["recipe"]["hidden"] == [8] and loom.extra["recipe"]["epochs"] == 3
    plain = run_cli("train", "people.csv", "--target", "label", "--recipe", "none", "--epochs", "2", "--no-plot",
                    "-o", "r.loom", cwd=tmp_path)
    assert plain.returncode == 0 and "recipe:" not in plain.stderr
    assert open_model(tmp_path / "r.loom").extra["recipe"] is None


def test_input_gradients_through_periodic_embeddings_match_finite_differences():
    from loomnet.explain import input_gradients

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    model = ln.Sequential([ln.PeriodicEmbedding(3, 4, sigma=0.5), ln.Dense(6, "tanh"), ln.Dense(2)],
                          preprocess=None, dtype="float64", seed=0)
    model.fit(X, (X[:, 0] > 0).astype(int), epochs=3, batch_size=8)
    _, grad = input_gradients(model, X[:6], target=1)
    h = 1e-6
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        numeric = (input_gradients(model, X[:6] + step, target=1)[0]
                   - input_gradients(model, X[:6] - step, target=1)[0]) / (2 * h)
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-5, atol=1e-8)


def test_wide_categorical_columns_get_an_embedding_from_the_cli(tmp_path):
    """A categorical column with at least EMBED_MIN_WIDTH categories is embedded first (its one-hot
    block, found by the table encoder); narrow ones stay one-hot into the first Dense."""
    from loomnet.recipes import EMBED_MIN_WIDTH

    rng = np.random.default_rng(0)
    shops = [f"shop{i:02d}" for i in range(12)]
    lines = ["size,shop,colour,price"]
    for _ in range(300):
        shop, colour, size = shops[rng.integers(0, 12)], ["red", "blue"][rng.integers(0, 2)], rng.normal()
        lines.append(f"{size:.3f},{shop},{colour},{2 * size + int(shop[-2:]) / 4 + rng.normal(0, 0.1):.3f}")
    (tmp_path / "shops.csv").write_text("\n".join(lines) + "\n")
    result = run_cli("train", "shops.csv", "--target", "price", "--epochs", "5", "--no-plot", "-o", "s.loom",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "embeddings of 1 categorical column(s)" in result.stderr
    loom = open_model(tmp_path / "s.loom")
    first = loom.model.layers[0]
    assert isinstance(first, ln.CategoricalEmbedding) and first.blocks == [(1, 12)] and 12 >= EMBED_MIN_WIDTH
    assert loom.extra["recipe"]["embeddings"] == [[1, 12]]
    assert np.isfinite(loom.model.predict(np.zeros((2, loom.model.n_features)))).all()
    evaluated = run_cli("evaluate", "s.loom", "shops.csv", "--no-plot", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr


def test_the_encoder_names_each_categorical_block():
    from loomnet.io.encoder import TableEncoder
    from loomnet.io.frames import Frame

    values = {"a": np.array(["x", "y", "z", "x"], dtype=object), "b": np.array([1.0, 2.0, np.nan, 4.0]),
              "c": np.array(["p", "q", "p", "q"], dtype=object), "t": np.array([0.0, 1.0, 0.0, 1.0])}
    encoder = TableEncoder("t").fit(Frame("test", list(values), values))
    assert encoder.categorical_blocks() == [(0, 3), (5, 2)]  # a: 3 one-hot; b: value + missing indicator; c: 2
    assert encoder.categorical_blocks(min_width=3) == [(0, 3)]
