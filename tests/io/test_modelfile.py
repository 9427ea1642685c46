"""Model files: round trip, atomic writes, and a one-line ModelFileError for every kind of damage."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest

from loomnet import Dense, Dropout, Sequential, datasets
from loomnet.io.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint
from loomnet.io.modelfile import (
    FORMAT_VERSION,
    MAGIC,
    ModelFileError,
    load_model,
    open_model,
    read_header,
    save_model,
)
from loomnet.training import Trainer


@pytest.fixture(scope="module")
def iris_model():
    data = datasets.load("iris")
    model = Sequential([Dense(8, "tanh"), Dropout(0.1), Dense(3)], seed=1)
    model.fit(data.X, data.y, epochs=3, batch_size=16, validation_split=0.2)
    return model, data


@pytest.fixture
def saved(tmp_path, iris_model):
    model, _ = iris_model
    path = tmp_path / "m.loom"
    save_model(model, path, extra={"note": "hello", "columns": ["a", "b"]})
    return path


def test_round_trip_keeps_weights_predictions_history_and_extra(saved, iris_model):
    model, data = iris_model
    loom = open_model(saved)
    assert np.array_equal(loom.model.params, model.params)
    assert np.array_equal(loom.model.predict_proba(data.X), model.predict_proba(data.X))
    assert loom.model.classes_.tolist() == [0, 1, 2]
    assert loom.extra == {"note": "hello", "columns": ["a", "b"]}
    assert loom.model.history.records == json.loads(json.dumps(model.history.records))
    assert loom.header["format_version"] == FORMAT_VERSION
    assert loom.header["architecture"]["preprocess"]["kind"] == "standard"


def test_regression_model_round_trip_restores_target_scaling(tmp_path):
    data = datasets.load("diabetes")
    model = Sequential([Dense(4, "relu"), Dense(1)], loss="mse", target_preprocess="standard", dtype="float64")
    model.fit(data.X, data.y, epochs=2, batch_size=64)
    save_model(model, tmp_path / "r.loom")
    assert np.array_equal(load_model(tmp_path / "r.loom").predict(data.X), model.predict(data.X))


def test_header_records_checksum_and_versions(saved):
    header = read_header(saved)
    assert len(header["tensors"]["sha256"]) == 64
    assert header["loomnet_version"] and header["kind"] == "model" and header["n_params"] > 0


def test_saving_an_unfitted_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no parameters"):
        save_model(Sequential([Dense(2)]), tmp_path / "x.loom")


def _damage(path, kind):
    data = bytearray(path.read_bytes())
    (header_len,) = struct.unpack("<Q", data[8:16])
    if kind == "checksum":
        data[-3] ^= 0xFF
    elif kind == "version":
        header = json.loads(data[16:16 + header_len])
        header["format_version"] = 99
        raw = json.dumps(header).encode()
        data = MAGIC + struct.pack("<Q", len(raw)) + raw + data[16 + header_len:]
    elif kind == "not-a-model":
        data = b"age,city\n1,Lyon\n"
    elif kind == "pickle":
        data = pickle.dumps({"params": [1, 2, 3]})
    elif kind == "empty":
        data = b""
    elif kind.startswith("truncated-"):
        cut = {"magic": 5, "length": 12, "header": 16 + header_len // 2, "weights": len(data) - 10}[kind[10:]]
        data = data[:cut]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind, message", [
    ("checksum", "checksum mismatch"),
    ("version", "unknown model file format version 99"),
    ("not-a-model", "not a loomnet model file"),
    ("pickle", "not a loomnet model file"),
    ("empty", "not a loomnet model file"),
    ("truncated-magic", "truncated"),
    ("truncated-length", "truncated"),
    ("truncated-header", "truncated"),
    ("truncated-weights", "truncated"),
])
def test_damaged_files_raise_one_line_model_file_error(saved, kind, message):
    _damage(saved, kind)
    with pytest.raises(ModelFileError) as info:
        load_model(saved)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and str(saved) in str(info.value)


def test_missing_file_and_directory_are_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "absent.loom")
    with pytest.raises(ModelFileError, match="directory"):
        load_model(tmp_path)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(saved, iris_model, monkeypatch):
    before = saved.read_bytes()

    def crash(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        save_model(iris_model[0], saved, extra={"new": True})
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["m.loom"]


def test_checkpoint_round_trip_restores_trainer_state_exactly(tmp_path):
    data = datasets.load("wine")

    def trainer():
        model = Sequential([Dense(6, "relu"), Dropout(0.2), Dense(3)], seed=4)
        return Trainer(model, data.X, data.y, epochs=3, batch_size=10, validation_split=0.2, early_stopping=5)

    full = trainer()
    full.run()
    first = trainer()
    first.epochs = 2
    first.run()
    first.step = 0
    save_checkpoint(first, tmp_path / "c.loom", settings={"seed": 4})
    resumed = trainer()
    header, tensors = read_checkpoint(tmp_path / "c.loom")
    assert header["settings"] == {"seed": 4}
    restore_checkpoint(resumed, header, tensors)
    resumed.run()
    assert np.array_equal(resumed.model.params, full.model.params)
    with pytest.raises(ModelFileError, match="not a model"):
        load_model(tmp_path / "c.loom")


def _fifo_reader(path, sink):
    with open(path, "rb") as fh:
        sink.append(fh.read())


@pytest.mark.timeout(30)
def test_writing_into_a_fifo_or_device_never_replaces_it(tmp_path):
    """`--out /dev/null` once replaced /dev/null with a regular file: special files are written into."""
    import os
    import stat
    import threading

    from loomnet.io.atomic import atomic_write, is_special_file

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert is_special_file(fifo) and not is_special_file(tmp_path) and not is_special_file(tmp_path / "none")
    received: list[bytes] = []
    reader = threading.Thread(target=_fifo_reader, args=(fifo, received))
    reader.start()
    atomic_write(fifo, b"payload")
    reader.join(10)
    assert received == [b"payload"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left behind


def test_a_classifier_without_labels_is_refused_at_save_not_at_load(tmp_path):
    """A built but unfitted softmax classifier has no labels: saving it says so, rather than
    writing a file that load_model would refuse."""
    import loomnet as ln

    model = ln.Sequential([ln.Dense(3)], seed=0).build(4)
    with pytest.raises(ValueError, match="no class labels yet"):
        model.save(tmp_path / "m.loom")
    assert not (tmp_path / "m.loom").exists()
    regressor = ln.Sequential([ln.Dense(2)], loss="mse", seed=0).build(4)
    regressor.save(tmp_path / "r.loom")
    np.testing.assert_array_equal(ln.load_model(tmp_path / "r.loom").params, regressor.params)
