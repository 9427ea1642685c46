"""``loomnet explain`` on model files written by ``loomnet train``, run as a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli_helpers import assert_user_error, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def write_informative_csv(path, n=600, seed=0):
    """Columns a..f; only a and d decide the label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) + [0, 5, -3, 10, 2, 0]
    label = np.where(X[:, 0] + (X[:, 3] - 10) > 0, "up", "down")
    rows = ["a,b,c,d,e,f,label"] + [",".join(f"{v:.4f}" for v in x) + f",{t}" for x, t in zip(X, label, strict=True)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    write_informative_csv(folder / "train.csv", seed=0)
    write_informative_csv(folder / "test.csv", n=300, seed=1)
    result = run_cli("train", "train.csv", "--target", "label", "--epochs", "20", "--hidden", "16", "--no-plot",
                     "--quiet", "-o", "m.loom", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.parametrize("method", ["permutation", "integrated-gradients", "saliency"])
def test_explain_ranks_the_informative_columns_first_and_draws_a_bar_chart(csv_model, method):
    result = run_cli("explain", "m.loom", "test.csv", "--method", method, "--json", "--plot", f"{method}.png",
                     cwd=csv_model)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["method"] == method and summary["n_samples"] == 300
    assert {f["feature"] for f in summary["features"][:2]} == {"a", "d"}
    assert (csv_model / f"{method}.png").read_bytes()[:8] == PNG
    assert "heatmap" not in summary  # tabular data: no image heat map


def test_explain_prints_a_ranked_table_with_top_rows(csv_model):
    result = run_cli("explain", "m.loom", "test.csv", "--top", "3", "--no-plot", cwd=csv_model)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("permutation importance: drop in accuracy")
    assert lines[1].split()[:2] == ["rank", "feature"] and len(lines) == 5
    assert {lines[2].split()[1], lines[3].split()[1]} == {"a", "d"}


def test_explain_digits_writes_bar_chart_and_attribution_heat_map(tmp_path):
    trained = run_cli("train", "builtin:digits", "--epochs", "3", "--hidden", "16", "--no-plot", "--quiet",
                      "-o", "digits.loom", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    result = run_cli("explain", "digits.loom", "builtin:digits", "--method", "integrated-gradients",
                     "--max-samples", "200", "--top", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pixel_" in result.stdout and "completeness" in result.stdout
    assert (tmp_path / "digits.importance.png").read_bytes()[:8] == PNG
    assert (tmp_path / "digits.attributions.png").read_bytes()[:8] == PNG


def test_explain_mistakes_exit_2_with_one_line(csv_model, tmp_path):
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("a,b,c,d,e,f\n" + "1,2,3,4,5,6\n" * 5)
    assert_user_error(run_cli("explain", str(csv_model / "m.loom"), str(no_label), "--no-plot"),
                      "needs the target column")
    assert_user_error(run_cli("explain", str(csv_model / "m.loom"), str(csv_model / "test.csv"), "--metric", "auc",
                              "--no-plot"), "invalid choice: 'auc'")
    assert_user_error(run_cli("explain", str(csv_model / "m.loom"), str(csv_model / "test.csv"),
                              "--image-shape", "2x2", "--no-plot"), "--image-shape 2x2")


def test_a_table_model_is_explained_by_its_original_columns(tmp_path):
    from tests.cli_helpers import TINY, write_people_csv

    write_people_csv(tmp_path / "people.csv", n=150)
    assert run_cli("train", "people.csv", "--target", "label", *TINY, "-o", "p.loom", cwd=tmp_path).returncode == 0
    result = run_cli("explain", "p.loom", "people.csv", "--no-plot", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    features = {f["feature"] for f in json.loads(result.stdout)["features"]}
    assert features == {"age", "city", "income"}  # city is one feature, not city=Lyon, city=Oslo, ...
