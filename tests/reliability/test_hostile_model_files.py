"""Crafted hostile .loom files: each is refused with a one-line error, runs nothing, allocates nothing big.

Loading must never unpickle or evaluate anything, must check every offset and shape the header
claims against the real file before touching memory, and must check the architecture in the
JSON against the stored weights before building a network.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from .conftest import blobs
from .loomcraft import join, map_metadata_json, set_everywhere, split

modelfile = pytest.importorskip("loomnet.modelfile")
MAX_EXTRA_BYTES = 16 * 2**20  # loading a tiny hostile file may use at most this much Python/NumPy memory


class Payload:
    """Unpickling this creates a directory: proof that something was executed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def assert_refused(path, *, max_bytes: int = MAX_EXTRA_BYTES) -> str:
    """Load must raise a loomnet error with a one-line message while allocating < max_bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as info:  # noqa: B017 - the type is checked below
            modelfile.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    exc = info.value
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {exc}"
    assert type(exc).__module__.startswith("loomnet") or type(exc) is ValueError, (
        f"an internal {type(exc).__module__}.{type(exc).__name__} leaked out: {exc}")
    message = str(exc)
    assert message and "\n" not in message and len(message) < 300, repr(message)
    assert peak < max_bytes, f"loading a hostile {os.path.getsize(path)}-byte file allocated {peak / 2**20:.0f} MiB"
    return message


@pytest.fixture(scope="module")
def valid_blob(tmp_path_factory, trained_model) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "model.loom"
    modelfile.save(trained_model, path)
    return path.read_bytes()


def write(tmp_path, blob: bytes, name: str = "hostile.loom"):
    path = tmp_path / name
    path.write_bytes(blob)
    return path


# ----------------------------------------------------------------- pickle payloads
def pickle_payloads(marker: str) -> dict[str, bytes]:
    raw = pickle.dumps(Payload(marker))
    npy = io.BytesIO()
    np.save(npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    np.savez(npz, params=np.array([Payload(marker)], dtype=object), allow_pickle=True)
    torch_like = io.BytesIO()
    with zipfile.ZipFile(torch_like, "w") as zf:
        zf.writestr("archive/data.pkl", raw)
    in_header = join({"__metadata__": {"loomnet": raw.decode("latin-1")}, "params": {
        "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0\0\0\0")
    as_tensor = join({"params": {"dtype": "U8", "shape": [len(raw)], "data_offsets": [0, len(raw)]}}, raw)
    return {"raw pickle": raw, "npy object array": npy.getvalue(), "npz object array": npz.getvalue(),
            "torch-style zip": torch_like.getvalue(), "pickle in header metadata": in_header,
            "pickle as tensor bytes": as_tensor}


@pytest.mark.parametrize("kind", list(pickle_payloads("x")))
def test_a_pickle_payload_is_refused_and_never_executed(tmp_path, kind):
    marker = str(tmp_path / "payload-ran")
    path = write(tmp_path, pickle_payloads(marker)[kind])
    assert_refused(path)
    assert not os.path.exists(marker), "loading the model file executed a pickle payload"


# ----------------------------------------------------------------- lies about sizes and offsets
HUGE = 2**40  # 1 TiB of float32 would be 4 TiB


def hostile_headers() -> dict[str, bytes]:
    tensor = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    data = bytes(16)
    return {
        "header length of 2**63-1": join({"params": tensor}, data, claimed_length=2**63 - 1),
        "header length beyond the file": join({"params": tensor}, data, claimed_length=10**9),
        "gigantic tensor, offsets to match": join(
            {"params": {"dtype": "F32", "shape": [HUGE], "data_offsets": [0, 4 * HUGE]}}, data),
        "gigantic shape, tiny offsets": join(
            {"params": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}}, data),
        "negative shape": join({"params": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, data),
        "offsets outside the file": join(
            {"params": {"dtype": "F32", "shape": [4], "data_offsets": [1000, 1016]}}, data),
        "offsets reversed": join({"params": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, data),
        "negative offsets": join({"params": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}, data),
        "unknown dtype": join({"params": {"dtype": "OBJ", "shape": [4], "data_offsets": [0, 16]}}, data),
        "header is not JSON": join(b"{not json at all", data),
        "header is a JSON list": join(b"[1, 2, 3]", data),
        "deeply nested JSON": join(b"[" * 100_000 + b"]" * 100_000, data),
        "header not UTF-8": join(b'{"\xff\xfe": 1}', data),
        "empty file": b"",
        "seven bytes": b"\x10\0\0\0\0\0\0",
        "random bytes": np.random.default_rng(0).bytes(4096),
    }


@pytest.mark.parametrize("kind", list(hostile_headers()))
def test_a_header_that_lies_about_sizes_or_offsets_is_refused_without_allocating(tmp_path, kind):
    assert_refused(write(tmp_path, hostile_headers()[kind]))


def test_a_tensor_claiming_more_bytes_than_the_file_holds_is_refused(tmp_path, valid_blob):
    header, data = split(valid_blob)
    for name, entry in header.items():
        if name != "__metadata__":
            entry["shape"] = [HUGE]
            entry["data_offsets"] = [entry["data_offsets"][0], entry["data_offsets"][0] + 4 * HUGE]
            break
    assert_refused(write(tmp_path, join(header, data)))


@pytest.mark.parametrize("key,value", [("n_features", 10**12), ("units", 10**9), ("n_features", -3),
                                       ("n_features", "many"), ("units", 0)])
def test_an_architecture_that_disagrees_with_the_stored_weights_is_refused_before_building(
        tmp_path, valid_blob, key, value):
    """A valid file whose JSON claims a gigantic layer must not make the loader build it."""
    header, data = split(valid_blob)
    counts = []
    header = map_metadata_json(header, lambda doc: counts.append(set_everywhere(doc, key, value)))
    if not sum(counts):
        pytest.skip(f"the .loom header has no {key!r} field")
    assert_refused(write(tmp_path, join(header, data)))


def test_truncated_valid_files_are_refused_at_every_cut(tmp_path, valid_blob):
    for cut in sorted({0, 1, 7, 8, 9, 50, len(valid_blob) // 2, len(valid_blob) - 1}):
        assert_refused(write(tmp_path, valid_blob[:cut], f"cut{cut}.loom"))


def test_a_flipped_weight_byte_fails_the_checksum(tmp_path, valid_blob):
    blob = bytearray(valid_blob)
    blob[-3] ^= 0x40
    message = assert_refused(write(tmp_path, bytes(blob)))
    assert "checksum" in message.lower() or "sha" in message.lower(), message


def test_a_valid_file_still_loads_and_predicts_the_same(tmp_path, valid_blob, trained_model):
    model = modelfile.load(write(tmp_path, valid_blob, "ok.loom"))
    X, _ = blobs(n=40)
    np.testing.assert_array_equal(model.predict_proba(X), trained_model.predict_proba(X))


def test_header_json_with_extra_unknown_tensors_is_refused(tmp_path, valid_blob):
    header, data = split(valid_blob)
    header["evil"] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    try:
        modelfile.load(write(tmp_path, join(header, data)))
    except ValueError as exc:
        assert "\n" not in str(exc)
    # Loading is also acceptable (extra tensors ignored) as long as nothing is executed.
    json.dumps(header)
