"""Real data is not bad input: missing values, categories never seen in training, identifier columns,
rows without a target, an ID column carried through predictions, every inferred column shown."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from loomnet.io.modelfile import open_model
from tests.cli_helpers import TINY, run_cli, write_people_csv

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def messy(tmp_path):
    """Numbers with gaps, a category with gaps, an identifier column, a row without a target."""
    rng = np.random.default_rng(0)
    rows = ["id,age,city,income,label"]
    for i in range(160):
        age = "" if i % 7 == 3 else str(int(rng.integers(18, 80)))
        city = "" if i % 11 == 5 else ["Lyon", "Oslo", "Quito"][i % 3]
        income = rng.normal(50, 15)
        label = "" if i == 17 else ("yes" if (income > 50) ^ (city == "Oslo") else "no")
        rows.append(f"user{i:04d},{age},{city},{income:.2f},{label}")
    (tmp_path / "messy.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_missing_values_identifiers_and_target_gaps_train_by_default(messy):
    result = run_cli("train", "messy.csv", "--target", "label", "--epochs", "3", "--hidden", "8", "--no-plot",
                     "-o", "m.loom", cwd=messy)
    assert result.returncode == 0, result.stderr
    assert "1 of 160 rows have no target value and were left out" in result.stderr
    assert "'id' dropped" in result.stderr
    columns = {c["name"]: c for c in open_model(messy / "m.loom").extra["input"]["columns"]}
    assert columns["id"]["kind"] == "dropped"
    assert columns["age"]["indicator"] and columns["age"]["fill"] is not None
    assert not columns["income"]["indicator"] and columns["income"]["fill"] is not None  # every column has a fill
    assert "(missing)" in columns["city"]["categories"]


def test_new_data_with_gaps_elsewhere_and_unseen_categories_predicts_and_says_so(messy):
    assert run_cli("train", "messy.csv", "--target", "label", *TINY, "-o", "m.loom", cwd=messy).returncode == 0
    (messy / "new.csv").write_text("id,age,city,income\nx1,30,Paris,\nx2,,Lyon,61.5\nx3,44,Quito,40\n")
    result = run_cli("predict", "m.loom", "new.csv", "--id", "id", "-o", "p.csv", cwd=messy)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader((messy / "p.csv").read_text().splitlines()))
    assert rows[0] == ["id", "prediction"] and [r[0] for r in rows[1:]] == ["x1", "x2", "x3"]
    assert all(r[1] in ("yes", "no") for r in rows[1:])
    assert "categories not seen in training ('city' in 1 row(s)) of 3 rows were encoded as unknown" in result.stderr
    (messy / "labelled.csv").write_text("id,age,city,income,label\nx1,30,Paris,,yes\nx2,,Lyon,61.5,no\n")
    evaluated = run_cli("evaluate", "m.loom", "labelled.csv", "--no-plot", cwd=messy)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "'city' in 1 row(s)" in evaluated.stderr


def test_predict_id_with_json_output(messy):
    assert run_cli("train", "messy.csv", "--target", "label", *TINY, "-o", "m.loom", cwd=messy).returncode == 0
    result = run_cli("predict", "m.loom", "messy.csv", "--id", "id", "--json", cwd=messy)
    first = json.loads(result.stdout.splitlines()[0])
    assert first["id"] == "user0000" and first["prediction"] in ("yes", "no")


def test_inspect_shows_every_column_and_what_was_inferred(tmp_path):
    header = ",".join(f"c{i}" for i in range(20)) + ",label"
    rows = [header] + [",".join(str((i * j) % 7) for j in range(20)) + f",{'ab'[i % 2]}" for i in range(60)]
    (tmp_path / "wide.csv").write_text("\n".join(rows) + "\n")
    assert run_cli("train", "wide.csv", "--target", "label", *TINY, "-o", "w.loom", cwd=tmp_path).returncode == 0
    shown = run_cli("inspect", "w.loom", cwd=tmp_path).stdout
    assert all(f"  c{i}: numeric" in shown for i in range(20))
    assert "input columns (20, 20 encoded features)" in shown


def test_high_cardinality_columns_keep_the_most_frequent_categories_and_share_the_rest(tmp_path):
    from loomnet.io.encoder import MAX_ONE_HOT, OTHER, TableEncoder
    from loomnet.io.frames import Frame

    values = np.array([f"k{i % 80}" for i in range(400)] + ["k0"] * 100, dtype=object)
    frame = Frame("f", ["code", "y"], {"code": values, "y": np.arange(500) % 2})
    encoder = TableEncoder("y").fit(frame)
    column = encoder.columns[0]
    assert column["kind"] == "categorical" and len(column["categories"]) == MAX_ONE_HOT and column["other"]
    assert encoder.feature_names[-1] == f"code={OTHER}"
    X = encoder.transform(frame)
    assert X.shape == (500, MAX_ONE_HOT + 1) and np.all(X.sum(axis=1) == 1)
    assert "k0" in column["categories"]  # the most frequent keeps its column


def test_a_model_file_of_loomnet_0_2_still_encodes(tmp_path):
    """0.2 stored no indicator/other flags and impute=None meant 'refuse'."""
    from loomnet.io.encoder import TableEncoder
    from loomnet.io.frames import Frame

    old = {"target": "y", "impute": None, "task": "classify",
           "columns": [{"name": "a", "kind": "numeric", "fill": None},
                       {"name": "c", "kind": "categorical", "categories": ["p", "q"], "fill": None}]}
    encoder = TableEncoder.from_dict(old)
    X = encoder.transform(Frame("f", ["a", "c"], {"a": np.array([1.0, 2.0]), "c": np.array(["q", "p"], dtype=object)}))
    assert X.tolist() == [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]


def test_people_with_missing_values_train_without_options(tmp_path):
    write_people_csv(tmp_path / "gappy.csv", missing=True)
    result = run_cli("train", "gappy.csv", "--target", "label", *TINY, "-o", "g.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("seed", range(6))
def test_a_rare_class_never_lands_wholly_in_the_validation_split(seed):
    import loomnet as ln

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    y = np.array(["a"] * 30 + ["b"] * 27 + ["c"] * 2 + ["d"])  # 'd' has one row, 'c' two
    model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(4)], seed=seed)
    model.fit(X, y, epochs=2, batch_size=16, validation_split=0.3, seed=seed)
    assert model.classes_.tolist() == ["a", "b", "c", "d"]
    parts = ln.train_test_split(np.arange(60), test_size=0.3, stratify=y, seed=seed)
    assert set(y[parts[0]]) == {"a", "b", "c", "d"}


def test_cli_trains_with_a_class_of_one_row(tmp_path):
    rows = ["x,label"] + [f"{i},{'abc'[i % 3]}" for i in range(40)] + ["99,rare"]
    (tmp_path / "rare.csv").write_text("\n".join(rows) + "\n")
    for seed in ("1", "5"):
        result = run_cli("train", "rare.csv", "--target", "label", *TINY, "--seed", seed, "-o", "r.loom", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
