"""TensorBoardLogger: per-epoch metrics as TensorBoard scalars (tensorboardX), read back from the event
file with TensorBoard's own record format; and ``loomnet train --log-tensorboard``."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import loomnet as ln
from loomnet.training import TensorBoardLogger
from loomnet.training.tensorboard import scalars
from tests.cli_helpers import TINY, assert_user_error, run_cli

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")


def read_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the run's event files: tag -> [(step, value)], parsed record by record
    (uint64 length, uint32 crc, payload, uint32 crc), as TensorBoard reads them."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            event = event_pb2.Event.FromString(data[offset + 12: offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.simple_value))
    return found


def test_each_epoch_metric_is_a_scalar_at_its_epoch(tmp_path):
    iris = ln.datasets.load("iris")
    model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(3)], seed=0)
    history = model.fit(iris.X, iris.y, epochs=4, validation_split=0.2,
                        callbacks=[TensorBoardLogger(tmp_path / "run")])
    logged = read_scalars(tmp_path / "run")
    assert [step for step, _ in logged["loss"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in logged["loss"]], history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in logged["val_loss"]], history["val_loss"], rtol=1e-6)
    assert "epoch" not in logged and "lr" in logged


def test_lists_become_one_scalar_per_element_and_text_is_skipped():
    record = {"epoch": 3, "loss": np.float32(0.5), "per_class": [0.1, 0.2], "note": "text", "flag": True, "n": 7}
    assert scalars(record) == [("loss", 0.5), ("per_class/0", 0.1), ("per_class/1", 0.2), ("n", 7.0)]


def test_a_resumed_fit_appends_after_the_logged_epochs(tmp_path):
    iris = ln.datasets.load("iris")
    model = ln.Sequential([ln.Dense(3)], seed=0)
    logger = TensorBoardLogger(tmp_path)
    trainer = ln.Trainer(model, iris.X, iris.y, epochs=2, callbacks=[logger])
    trainer.run()
    trainer.epochs = 4
    trainer.run()
    assert [step for step, _ in read_scalars(tmp_path)["loss"]] == [1, 2, 3, 4]


def test_without_tensorboardx_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'loomnet\[tensorboard\]'"):
        TensorBoardLogger("runs")


def test_cli_logs_every_epoch(tmp_path):
    result = run_cli("train", "builtin:iris", *TINY, "--log-tensorboard", "tb", "-o", "i.loom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    logged = read_scalars(tmp_path / "tb")
    assert [step for step, _ in logged["loss"]] == [1, 2, 3]
    assert {"val_loss", "val_accuracy", "accuracy"} <= set(logged)


def test_cli_refuses_a_file_and_a_missing_package_in_one_line(tmp_path):
    (tmp_path / "taken").write_text("")
    assert_user_error(run_cli("train", "builtin:iris", *TINY, "--log-tensorboard", "taken", cwd=tmp_path),
                      "--log-tensorboard taken", "not a directory")
    result = run_cli("train", "builtin:iris", *TINY, "--log-tensorboard", "tb", cwd=tmp_path,
                     prelude="import sys; sys.modules['tensorboardX'] = None")
    assert_user_error(result, "tensorboardX", "loomnet[tensorboard]")
    assert not (tmp_path / "model.loom").exists() and not list(tmp_path.glob("*.loom"))
