"""``loomnet evaluate``, ``predict`` (chunked), ``inspect`` and ``datasets`` as subprocesses."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from loomnet.io.modelfile import open_model
from loomnet.io.tables import TableEncoder, read_frame
from tests.cli_helpers import TINY, run_cli, write_people_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("predict")
    write_people_csv(path / "people.csv", n=150)
    result = run_cli("train", "people.csv", "--target", "label", *TINY, "-o", "people.loom", cwd=path)
    assert result.returncode == 0, result.stderr
    return path


def _expected(path):
    loom = open_model(path / "people.loom")
    X = TableEncoder.from_dict(loom.extra["input"]).transform(read_frame(str(path / "people.csv")))
    return loom.model.predict(X), loom.model.predict_proba(X)


def test_predict_in_small_chunks_matches_the_python_api(trained):
    labels, proba = _expected(trained)
    result = run_cli("predict", "people.loom", "people.csv", "--proba", "--chunk-rows", "7", "-o", "out.csv",
                     cwd=trained)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader((trained / "out.csv").read_text().splitlines()))
    assert rows[0] == ["prediction", "proba_no", "proba_yes"]
    assert [r[0] for r in rows[1:]] == labels.tolist()
    assert np.allclose(np.array([r[1:] for r in rows[1:]], dtype=float), proba, atol=1e-5)
    assert sorted(p.name for p in trained.iterdir() if p.name.startswith(".")) == []


def test_predict_to_stdout_as_csv_and_as_json_lines(trained):
    labels, _ = _expected(trained)
    plain = run_cli("predict", "people.loom", "people.csv", cwd=trained)
    assert plain.returncode == 0
    assert list(csv.reader(io.StringIO(plain.stdout)))[1:] == [[v] for v in labels.tolist()]
    as_json = run_cli("predict", "people.loom", "people.csv", "--json", "--proba", cwd=trained)
    first = json.loads(as_json.stdout.splitlines()[0])
    assert first["prediction"] == labels[0] and set(first["proba"]) == {"no", "yes"}


def test_predict_ignores_the_target_column_and_accepts_data_without_it(trained):
    text = (trained / "people.csv").read_text().splitlines()
    (trained / "unlabelled.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in text) + "\n")
    with_target = run_cli("predict", "people.loom", "people.csv", cwd=trained)
    without = run_cli("predict", "people.loom", "unlabelled.csv", cwd=trained)
    assert without.returncode == 0 and without.stdout == with_target.stdout


def test_evaluate_prints_metrics_and_draws_a_confusion_matrix(trained):
    result = run_cli("evaluate", "people.loom", "people.csv", "--json", cwd=trained)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_samples"] == 150 and 0 <= report["metrics"]["accuracy"] <= 1
    assert report["confusion_matrix"]["labels"] == ["no", "yes"]
    assert np.sum(report["confusion_matrix"]["matrix"]) == 150
    assert (trained / "people.confusion.png").read_bytes()[:4] == b"\x89PNG"
    table = run_cli("evaluate", "people.loom", "people.csv", "--no-plot", cwd=trained)
    assert table.stdout.splitlines()[0].split() == ["metric", "value"] and "f1_macro" in table.stdout


def test_evaluate_in_chunks_matches_the_python_api_on_the_whole_file(trained):
    loom = open_model(trained / "people.loom")
    frame = read_frame(str(trained / "people.csv"))
    encoder = TableEncoder.from_dict(loom.extra["input"])
    expected = loom.model.evaluate(encoder.transform(frame), encoder.target_values(frame))
    result = run_cli("evaluate", "people.loom", "people.csv", "--chunk-rows", "7", "--no-plot", "--json", cwd=trained)
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics.keys() == expected.keys()
    assert all(metrics[k] == pytest.approx(v, rel=1e-6) for k, v in expected.items())


def test_inspect_shows_architecture_columns_history_and_checksum(trained):
    loom = open_model(trained / "people.loom")
    text = run_cli("inspect", "people.loom", cwd=trained)
    assert text.returncode == 0
    assert loom.header["tensors"]["sha256"] in text.stdout
    for fragment in ("format version 1", "dense", "city: categorical, 3 one-hot columns (Lyon, Oslo, Quito)",
                     "labels (2): no, yes", "training: 3 epochs"):
        assert fragment in text.stdout
    summary = json.loads(run_cli("inspect", "people.loom", "--json", cwd=trained).stdout)
    assert summary["n_params"] == loom.model.n_params and summary["history"]["epochs"] == 3
    assert summary["target"] == "label"


def test_datasets_lists_every_builtin_and_generators_take_sizes(tmp_path):
    listing = json.loads(run_cli("datasets", "--json").stdout)
    names = {entry["name"] for entry in listing}
    assert {"xor", "digits", "iris", "wine", "breast-cancer", "diabetes", "classification", "regression"} <= names
    result = run_cli("train", "builtin:classification:n_samples=50,n_features=3,n_classes=4", *TINY, "--json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert open_model(tmp_path / "model.loom").model.n_features == 3


def test_models_saved_from_python_work_with_the_cli(tmp_path):
    from loomnet import Dense, Sequential, datasets
    from loomnet.io.modelfile import save_model

    data = datasets.load("diabetes")
    model = Sequential([Dense(4, "relu"), Dense(1)], loss="mse", target_preprocess="standard")
    model.fit(data.X, data.y, epochs=2, batch_size=64)
    save_model(model, tmp_path / "py.loom")
    result = run_cli("predict", "py.loom", "builtin:diabetes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = np.array(result.stdout.splitlines()[1:], dtype=np.float32)
    assert np.array_equal(values, model.predict(data.X))  # shortest float32 text, read back exactly
    np.save(tmp_path / "features.npy", data.X)  # no target column: predict takes every column
    from_array = run_cli("predict", "py.loom", "features.npy", cwd=tmp_path)
    assert from_array.returncode == 0 and from_array.stdout == result.stdout
    evaluation = json.loads(run_cli("evaluate", "py.loom", "builtin:diabetes", "--json", cwd=tmp_path).stdout)
    assert set(evaluation["metrics"]) == {"loss", "mse", "mae", "r2"}
    assert "confusion_matrix" not in evaluation


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_predict_memory_stays_flat_on_a_large_csv(tmp_path):
    """A 400,000-row CSV (about 40 MB) is predicted in chunks: peak memory stays far below loading it whole."""
    rng = np.random.default_rng(0)
    with open(tmp_path / "big.csv", "w") as fh:
        fh.write(",".join(f"x{i}" for i in range(10)) + ",y\n")
        for _ in range(8):
            X = rng.normal(size=(50_000, 10))
            np.savetxt(fh, np.column_stack([X, X[:, 0] > 0]), delimiter=",", fmt=["%.6f"] * 10 + ["%d"])
    with open(tmp_path / "big.csv") as src, open(tmp_path / "small.csv", "w") as dst:
        dst.writelines(line for _, line in zip(range(2001), src, strict=False))
    assert run_cli("train", "small.csv", "--target", "y", *TINY, cwd=tmp_path).returncode == 0
    report_peak = """
    import atexit, sys
    from loomnet.search.backends import peak_rss_mb  # VmHWM: ru_maxrss would include pytest's own peak
    atexit.register(lambda: print(f"peak_kb={peak_rss_mb() * 1024:.0f}", file=sys.stderr))
    """
    result = run_cli("predict", "model.loom", "big.csv", "--chunk-rows", "4096", "-o", "out.csv", "--quiet",
                     cwd=tmp_path, prelude=report_peak, timeout=600)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stderr.split("peak_kb=")[1]) / 1024
    assert sum(1 for _ in open(tmp_path / "out.csv")) == 400_001
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"


def test_a_failure_midway_leaves_no_partial_prediction_file(trained):
    (trained / "keep.csv").write_text("old\n")
    fail_on_second_chunk = """
    from loomnet import Sequential
    calls = []
    original = Sequential.predict
    def predict(self, X):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return original(self, X)
    Sequential.predict = predict
    """
    result = run_cli("predict", "people.loom", "people.csv", "--chunk-rows", "50", "-o", "keep.csv", cwd=trained,
                     prelude=fail_on_second_chunk)
    assert result.returncode == 1 and "power cut" in result.stderr
    assert (trained / "keep.csv").read_text() == "old\n"
    assert not [p for p in trained.iterdir() if p.name.startswith(".keep.csv")]


def test_regression_evaluate_says_which_units_its_loss_is_in(tmp_path):
    assert run_cli("train", "builtin:diabetes", *TINY, "-o", "d.loom", cwd=tmp_path).returncode == 0
    result = run_cli("evaluate", "d.loom", "builtin:diabetes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "loss is on the standardised target; the other metrics are in target units" in result.stdout
