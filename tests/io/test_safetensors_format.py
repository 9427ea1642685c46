"""loomnet's own safetensors reader and writer (for Python builds without the package) against the package."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from loomnet.io.safetensors_format import SafetensorsError, dumps, loads

safetensors = pytest.importorskip("safetensors.numpy")

CASES = {
    "model": {"params": np.linspace(-1, 1, 37, dtype=np.float32), "best": np.arange(5, dtype=np.float64)},
    "every dtype": {name: np.ones(3, dtype=dt) for name, dt in [
        ("b", np.bool_), ("u8", np.uint8), ("i8", np.int8), ("i16", np.int16), ("u16", np.uint16),
        ("f16", np.float16), ("i32", np.int32), ("u32", np.uint32), ("f32", np.float32), ("f64", np.float64),
        ("i64", np.int64), ("u64", np.uint64)]},
    "shapes": {"scalar": np.array(2.5, np.float32), "empty": np.zeros((0, 4), np.float32),
               "matrix": np.arange(12, dtype=np.float32).reshape(3, 4), "a": np.ones(1, np.float32)},
    "unicode names": {"poids é": np.ones(2, np.float32), "z": np.zeros(1, np.int64)},
}


@pytest.mark.parametrize("case", CASES)
def test_both_write_the_same_bytes_and_read_each_other(case):
    tensors = CASES[case]
    ours, theirs = dumps(tensors), safetensors.save(tensors)
    assert ours == theirs
    for name, array in loads(theirs).items():
        np.testing.assert_array_equal(array, tensors[name])
        assert array.dtype == tensors[name].dtype and array.shape == tensors[name].shape
        assert array.flags.writeable


def test_metadata_is_written_as_the_package_writes_it():
    tensors = {"x": np.ones(2, np.float32)}
    assert dumps(tensors, {"k": "v"}) == safetensors.save(tensors, metadata={"k": "v"})


def _file(header: dict, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


HOSTILE = {
    "too short": b"\x01\x02",
    "header longer than the file": struct.pack("<Q", 1000) + b"{}",
    "huge header": struct.pack("<Q", 2**40) + b"{}",
    "not json": struct.pack("<Q", 5) + b"{nope",
    "not an object": _file([1, 2]),
    "unknown dtype": _file({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16),
    "shape and bytes disagree": _file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
    "offsets outside the data": _file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
    "overlapping tensors": _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
    "a hole": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
    "negative shape": _file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "bytes left over": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_both_refuse_the_same_hostile_files(case):
    data = HOSTILE[case]
    with pytest.raises(SafetensorsError):
        loads(data)
    with pytest.raises(Exception):  # noqa: B017 - the package raises its own error types
        safetensors.load(data)


def test_model_files_round_trip_without_the_package(tmp_path, monkeypatch):
    """As on free-threaded Python: safetensors cannot be imported; files are byte-identical."""
    import sys

    import loomnet as ln

    model = ln.Sequential([ln.Dense(4, "relu"), ln.Dense(2)], seed=0)
    model.fit(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2, epochs=1)
    model.save(tmp_path / "with.loom")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    model.save(tmp_path / "without.loom")
    from loomnet.io.modelfile import read_header

    # the weights blob is the same bytes (its SHA-256 is in each header; only the creation time differs)
    assert read_header(tmp_path / "with.loom")["tensors"] == read_header(tmp_path / "without.loom")["tensors"]
    np.testing.assert_array_equal(ln.load_model(tmp_path / "with.loom").params, model.params)
    np.testing.assert_array_equal(ln.load_model(tmp_path / "without.loom").params, model.params)
