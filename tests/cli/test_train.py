"""``loomnet train`` end to end as a subprocess: built-in, CSV (categorical, imputation), NumPy data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loomnet.io.modelfile import open_model
from tests.cli_helpers import TINY, run_cli, write_people_csv


def test_train_builtin_writes_model_plot_and_json_summary(tmp_path):
    result = run_cli("train", "builtin:iris", "--epochs", "4", "--hidden", "8", "--json", "-o", "iris.loom",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 4 and summary["model"] == "iris.loom"
    assert (tmp_path / "iris.loom").exists()
    assert (tmp_path / "iris.history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loom = open_model(tmp_path / "iris.loom")
    assert loom.header["tensors"]["sha256"] == summary["sha256"]
    assert loom.extra["settings"]["hidden"] == [8] and loom.extra["input"]["target"] == "target"
    assert len(loom.model.history.records) == 4
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(loom.model.history.records[-1])


def test_progress_goes_to_stderr_and_quiet_silences_it(tmp_path):
    loud = run_cli("train", "builtin:xor", "--epochs", "2", "--no-plot", cwd=tmp_path)
    assert loud.returncode == 0
    assert "epoch 2/2" in loud.stderr and "saved model.loom" in loud.stdout
    quiet = run_cli("train", "builtin:xor", "--epochs", "2", "--no-plot", "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_python_dash_m_and_default_digits_data(tmp_path):
    result = run_cli("train", "--epochs", "1", "--hidden", "8", "--no-plot", "--quiet", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    loom = open_model(tmp_path / "model.loom")
    assert loom.model.n_features == 64 and len(loom.model.classes_) == 10


def test_csv_with_text_columns_is_one_hot_encoded_and_labels_kept(tmp_path):
    write_people_csv(tmp_path / "people.csv", n=200)
    result = run_cli("train", "people.csv", "--target", "label", "--epochs", "40", "--hidden", "16", "--lr", "0.01",
                     "--no-plot", "--quiet", "--json", "-o", "p.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    loom = open_model(tmp_path / "p.loom")
    assert loom.model.classes_.tolist() == ["no", "yes"]
    assert loom.model.feature_names == ["age", "city=Lyon", "city=Oslo", "city=Quito", "income"]
    city = next(c for c in loom.extra["input"]["columns"] if c["name"] == "city")
    assert city == {"name": "city", "kind": "categorical", "categories": ["Lyon", "Oslo", "Quito"], "other": False,
                    "fill": None}
    evaluation = run_cli("evaluate", "p.loom", "people.csv", "--json", "--no-plot", cwd=tmp_path)
    assert json.loads(evaluation.stdout)["metrics"]["accuracy"] > 0.8


def test_impute_fills_missing_values_with_training_statistics(tmp_path):
    write_people_csv(tmp_path / "gappy.csv", missing=True)
    result = run_cli("train", "gappy.csv", "--target", "label", "--impute", "median", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    age = open_model(tmp_path / "model.loom").extra["input"]["columns"][0]
    assert age["name"] == "age" and age["fill"] is not None and 18 <= age["fill"] <= 80


def test_regression_on_diabetes_reports_r2(tmp_path):
    result = run_cli("train", "builtin:diabetes", "--epochs", "5", "--hidden", "16", "--no-plot", "--quiet",
                     "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"r2", "val_r2"} <= set(json.loads(result.stdout)["final"])
    assert open_model(tmp_path / "model.loom").model.loss.name == "mse"


def test_npz_and_npy_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    assert run_cli("train", "d.npz", *TINY, "-o", "z.loom", cwd=tmp_path).returncode == 0
    result = run_cli("train", "d.npy", "--task", "classify", *TINY, "-o", "y.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert open_model(tmp_path / "y.loom").extra["input"]["target"] == "x3"


def test_parquet_data_when_pyarrow_is_installed(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    table = pa.table({"x": x, "colour": ["red", "blue"] * 30, "y": (x > 0).astype(int)})
    pq.write_table(table, tmp_path / "d.parquet")
    result = run_cli("train", "d.parquet", "--target", "y", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = run_cli("predict", "model.loom", "d.parquet", cwd=tmp_path)
    assert predicted.returncode == 0 and len(predicted.stdout.splitlines()) == 61


def test_locked_mode_is_offered_by_the_command(tmp_path):
    result = run_cli("train", "builtin:xor", "--epochs", "2", "--workers", "2", "--mode", "locked", "--no-plot",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_workers_and_mode_reach_the_trainer_or_warn(tmp_path):
    import inspect

    from loomnet.training import Trainer

    result = run_cli("train", "builtin:xor", "--epochs", "2", "--workers", "2", "--mode", "sync", "--no-plot",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if "workers" in inspect.signature(Trainer).parameters:
        assert "warning" not in result.stderr
    else:
        assert "--workers is ignored" in result.stderr


def test_log_csv_writes_a_line_per_epoch(tmp_path):
    import csv

    result = run_cli("train", "builtin:iris", *TINY, "--log-csv", "log.csv", "-o", "i.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "log.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(float(r["loss"]) > 0 and "val_loss" in r and "accuracy" in r for r in rows)


def test_help_shows_the_defaults():
    result = run_cli("train", "--help")
    text = " ".join(result.stdout.split())
    for fragment in ("(default: 0.0)", "(default: float32)", "(default: 0)", "(default median)", "(default: 1)"):
        assert fragment in text, fragment
