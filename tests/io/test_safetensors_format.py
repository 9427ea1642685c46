"""loomnet's own safetensors reader and writer (for Python builds without the package) against the package.

Where the package is missing (free-threaded CPython has no wheel), the comparisons with it skip
and the rest runs: the bytes are checked against the package's output recorded here, and the
hostile files against loomnet's reader alone.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from loomnet.io.safetensors_format import SafetensorsError, dumps, loads

try:
    import safetensors.numpy as safetensors
except ImportError:
    safetensors = None
needs_package = pytest.mark.skipif(safetensors is None, reason="the safetensors package is not installed here")

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
# SHA-256 of the package's bytes for each case (safetensors 0.7; equal to loomnet's where both run)
PACKAGE_SHA256 = {
    "model": "55ef545b3df5c204336c51ba2bf325eae4a1105e8cfadd3db49183f1122aece9",
    "every dtype": "96b8851601e72097c5a712b879be9e0e1b2a19a5d5ded889b5071551232f0a46",
    "shapes": "76d2495ebe1e988a426e309a84371a3ee15c217436ea82105e49e86a673631b4",
    "unicode names": "269a4f0f7b84d5f93b57bd719111308320cacaf1e69585ead13423ff06fa34c4",
}


@pytest.mark.parametrize("case", CASES)
def test_writes_the_bytes_the_package_writes_and_reads_them_back(case):
    tensors = CASES[case]
    ours = dumps(tensors)
    assert hashlib.sha256(ours).hexdigest() == PACKAGE_SHA256[case]
    for name, array in loads(ours).items():
        np.testing.assert_array_equal(array, tensors[name])
        assert array.dtype == tensors[name].dtype and array.shape == tensors[name].shape


@needs_package
@pytest.mark.parametrize("case", CASES)
def test_both_write_the_same_bytes_and_read_each_other(case):
    tensors = CASES[case]
    ours, theirs = dumps(tensors), safetensors.save(tensors)
    assert ours == theirs
    for name, array in loads(theirs).items():
        np.testing.assert_array_equal(array, tensors[name])
        assert array.dtype == tensors[name].dtype and array.shape == tensors[name].shape
        assert array.flags.writeable


@needs_package
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
def test_hostile_files_are_refused(case):
    with pytest.raises(SafetensorsError):
        loads(HOSTILE[case])


@needs_package
@pytest.mark.parametrize("case", HOSTILE)
def test_the_package_refuses_the_same_hostile_files(case):
    with pytest.raises(Exception):  # noqa: B017 - the package raises its own error types
        safetensors.load(HOSTILE[case])


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
