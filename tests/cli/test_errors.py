"""Every user mistake: one line ``error: ...`` on stderr, exit code 2, no traceback; bugs exit 1."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.cli_helpers import TINY, assert_user_error, run_cli, write_people_csv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with a CSV, a model trained on it and a few broken inputs."""
    path = tmp_path_factory.mktemp("cli_errors")
    write_people_csv(path / "people.csv")
    write_people_csv(path / "gappy.csv", missing=True)
    (path / "one_class.csv").write_text("a,b,label\n1,2,x\n3,4,x\n5,6,x\n")
    (path / "ragged.csv").write_text("a,b,label\n1,2,x\n3,4\n")
    (path / "empty.csv").write_text("")
    (path / "nan.csv").write_text("a,b,label\n1,2,x\n3,nan,y\n5,6,x\n7,8,y\n")
    (path / "other_columns.csv").write_text("age,town,income,label\n30,Lyon,40,yes\n")
    (path / "new_city.csv").write_text("age,city,income,label\n30,Paris,40,yes\n")
    (path / "not_a_model.loom").write_text("hello\n")
    np.save(path / "wide.npy", np.zeros((5, 9)))
    result = run_cli("train", "people.csv", "--target", "label", *TINY, "-o", "people.loom", cwd=path)
    assert result.returncode == 0, result.stderr
    result = run_cli("train", "builtin:diabetes", *TINY, "-o", "reg.loom", cwd=path)
    assert result.returncode == 0, result.stderr
    return path


MISTAKES = {
    "missing data file": (["train", "nowhere.csv", "--target", "y"], ["nowhere.csv does not exist"]),
    "unknown column": (["train", "people.csv", "--target", "salary"], ["no column 'salary'", "age, city"]),
    "csv without target": (["train", "people.csv"], ["target column is required", "(--target NAME)"]),
    "text target for regression": (["train", "people.csv", "--target", "label", "--task", "regress"],
                                   ["'label' is not numeric", "row 1 (line 2)"]),
    "single class": (["train", "one_class.csv", "--target", "label"], ["single class"]),
    "missing value refused": (["train", "gappy.csv", "--target", "label", "--impute", "none"],
                              ["column 'age'", "row 5 (line 6)", "--impute none refuses", "--impute median"]),
    "ragged csv": (["train", "ragged.csv", "--target", "label"], ["line 3 has 2 fields"]),
    "empty csv": (["train", "empty.csv", "--target", "label"], ["empty"]),
    "unknown builtin": (["train", "builtin:mnist"], ["unknown dataset 'mnist'"]),
    "unwritable output": (["train", "builtin:xor", "-o", "no/such/dir/m.loom"], ["does not exist"]),
    "output is a directory": (["train", "builtin:xor", "-o", "."], ["is a directory"]),
    "zero epochs": (["train", "builtin:xor", "--epochs", "0"], ["--epochs", "positive integer"]),
    "bad learning rate": (["train", "builtin:xor", "--lr", "fast"], ["--lr"]),
    "bad hidden sizes": (["train", "builtin:xor", "--hidden", "8,x"], ["--hidden"]),
    "bad val fraction": (["train", "builtin:xor", "--val-fraction", "1.5"], ["--val-fraction"]),
    "unknown optimizer": (["train", "builtin:xor", "--optimizer", "nadam"], ["unknown optimizer 'nadam'", "adam"]),
    "unknown activation": (["train", "builtin:xor", "--activation", "swoosh"], ["unknown activation"]),
    "loss does not fit task": (["train", "builtin:iris", "--loss", "mse", "--task", "classify"], ["regression loss"]),
    "mode without workers": (["train", "builtin:xor", "--mode", "hogwild"], ["--mode hogwild needs --workers"]),
    "resume without checkpoint dir": (["train", "builtin:xor", "--resume"], ["--checkpoint-dir"]),
    "resume without checkpoint": (["train", "builtin:xor", "--resume", "--checkpoint-dir", "."], ["no checkpoint"]),
    "unknown command": (["fly"], ["invalid choice: 'fly'"]),
    "model file missing": (["predict", "absent.loom", "people.csv"], ["absent.loom: no such file"]),
    "not a model file": (["inspect", "not_a_model.loom"], ["not a loomnet model file"]),
    "columns differ": (["predict", "people.loom", "other_columns.csv"], ["lacks column(s) ['city']"]),
    "id column missing": (["predict", "people.loom", "people.csv", "--id", "name"], ["no column 'name' for --id"]),
    "width differs": (["predict", "reg.loom", "wide.npy"], ["9 columns without names", "trained on 10"]),
    "proba for regression": (["predict", "reg.loom", "builtin:diabetes", "--proba"], ["--proba"]),
    "unwritable predictions": (["predict", "people.loom", "people.csv", "-o", "no/dir/p.csv"], ["does not exist"]),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_user_mistake_prints_one_error_line_and_exits_2(workdir, name):
    args, fragments = MISTAKES[name]
    assert_user_error(run_cli(*args, cwd=workdir), *fragments)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_directory_is_a_user_error(workdir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_user_error(run_cli("train", "builtin:xor", "-o", str(locked / "m.loom"), cwd=workdir),
                          "permission denied")
    finally:
        locked.chmod(0o700)


def test_corrupted_model_is_a_user_error(workdir, tmp_path):
    data = bytearray((workdir / "people.loom").read_bytes())
    data[-2] ^= 0xFF
    (tmp_path / "bad.loom").write_bytes(bytes(data))
    assert_user_error(run_cli("inspect", str(tmp_path / "bad.loom")), "checksum mismatch")
    (tmp_path / "cut.loom").write_bytes(bytes(data[: len(data) // 2]))
    assert_user_error(run_cli("inspect", str(tmp_path / "cut.loom")), "truncated")


def test_internal_failure_exits_1_with_one_line(workdir):
    prelude = """
    import loomnet.cli.commands.datasets as d
    def broken(args, out):
        raise RuntimeError("boom")
    d.run = broken
    """
    result = run_cli("datasets", cwd=workdir, prelude=prelude)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: internal error: RuntimeError: boom (set LOOMNET_DEBUG=1 for the traceback)"]
