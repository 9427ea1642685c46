"""Crafted hostile .loom files: each is refused with a one-line error, runs nothing, allocates nothing big.

Loading must never unpickle or evaluate anything, must check every length, offset and shape a
header claims against the real file before touching memory, and must check the architecture in
the JSON header against the stored weights before building a network. Crafted files carry a
correct SHA-256 (see loomcraft.join), so they reach the checks behind the checksum.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest

pytest.importorskip("loomnet.io.modelfile")

from .conftest import blobs  # noqa: E402
from .loomcraft import Payload, join, split, st_join  # noqa: E402
from .modelio import ModelFileError, load_model, save_model  # noqa: E402

MAX_EXTRA_BYTES = 16 * 2**20  # loading a small hostile file may use at most this much Python/NumPy memory
HUGE = 2**40


def assert_refused(path, *, max_bytes: int = MAX_EXTRA_BYTES) -> str:
    """load_model must raise ModelFileError with a one-line message while allocating < max_bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as info:  # noqa: B017 - the type is checked below
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    exc = info.value
    assert isinstance(exc, ModelFileError), f"undocumented {type(exc).__module__}.{type(exc).__name__}: {exc}"
    message = str(exc)
    assert message and "\n" not in message and len(message) < 1000, repr(message)
    assert peak < max_bytes, f"loading a hostile {os.path.getsize(path)}-byte file allocated {peak / 2**20:.0f} MiB"
    return message


@pytest.fixture(scope="module")
def valid_blob(tmp_path_factory, trained_model) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "model.loom"
    save_model(trained_model, path)
    return path.read_bytes()


def write(tmp_path, blob: bytes, name: str = "hostile.loom"):
    path = tmp_path / name
    path.write_bytes(blob)
    return path


# ----------------------------------------------------------------- pickle payloads
def pickle_payloads(marker: str, valid: bytes) -> dict[str, bytes]:
    raw = pickle.dumps(Payload(marker))
    npy = io.BytesIO()
    np.save(npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    np.savez(npz, params=np.array([Payload(marker)], dtype=object), allow_pickle=True)
    torch_like = io.BytesIO()
    with zipfile.ZipFile(torch_like, "w") as zf:
        zf.writestr("archive/data.pkl", raw)
    header, _ = split(valid)
    in_architecture = split(valid)[0]
    in_architecture["architecture"]["layers"][0]["activation"] = raw.decode("latin-1")
    return {
        "raw pickle": raw,
        "npy object array": npy.getvalue(),
        "npz object array": npz.getvalue(),
        "torch-style zip": torch_like.getvalue(),
        "pickle as the weights blob": join(header, raw),
        "pickle as tensor bytes": join(header, st_join({"params": {
            "dtype": "U8", "shape": [len(raw)], "data_offsets": [0, len(raw)]}}, raw)),
        "pickle in the architecture": join(in_architecture, split(valid)[1]),
    }


@pytest.mark.parametrize("kind", [
    "raw pickle", "npy object array", "npz object array", "torch-style zip", "pickle as the weights blob",
    "pickle as tensor bytes", "pickle in the architecture"])
def test_a_pickle_payload_is_refused_and_never_executed(tmp_path, valid_blob, kind):
    marker = str(tmp_path / "payload-ran")
    path = write(tmp_path, pickle_payloads(marker, valid_blob)[kind])
    assert_refused(path)
    assert not os.path.exists(marker), "loading the model file executed a pickle payload"


# ----------------------------------------------------------------- lies about sizes and offsets
def hostile_weights() -> dict[str, bytes]:
    data = bytes(16)
    tensor = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    return {
        "gigantic tensor, offsets to match": st_join(
            {"params": {"dtype": "F32", "shape": [HUGE], "data_offsets": [0, 4 * HUGE]}}, data),
        "gigantic shape, tiny offsets": st_join(
            {"params": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}}, data),
        "shape overflowing 64 bits": st_join(
            {"params": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, data),
        "negative shape": st_join({"params": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, data),
        "offsets outside the file": st_join(
            {"params": {"dtype": "F32", "shape": [4], "data_offsets": [1000, 1016]}}, data),
        "offsets reversed": st_join({"params": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, data),
        "negative offsets": st_join({"params": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}, data),
        "unknown dtype": st_join({"params": {"dtype": "OBJ", "shape": [4], "data_offsets": [0, 16]}}, data),
        "inner header length 2**63-1": st_join({"params": tensor}, data, claimed_length=2**63 - 1),
        "inner header length beyond the blob": st_join({"params": tensor}, data, claimed_length=10**6),
        "no params tensor": st_join({"other": tensor}, data),
        "params of the wrong size": st_join(
            {"params": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data),
        "params as 2-D": st_join({"params": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, data),
    }


@pytest.mark.parametrize("kind", list(hostile_weights()))
def test_weights_that_lie_about_sizes_or_offsets_are_refused_without_allocating(tmp_path, valid_blob, kind):
    header, _ = split(valid_blob)
    assert_refused(write(tmp_path, join(header, hostile_weights()[kind])))


def hostile_containers(valid: bytes) -> dict[str, bytes]:
    header, weights = split(valid)
    lying_index = split(valid)[0]
    lying_index["tensors"]["bytes"] = 2**62
    history = split(valid)[0]
    history["history"] = [1, 2, 3]
    version = split(valid)[0]
    version["format_version"] = 99
    checkpoint = split(valid)[0]
    checkpoint["kind"] = "checkpoint"
    return {
        "header length 2**63-1": join(header, weights, claimed_length=2**63 - 1),
        "header length beyond the file": join(header, weights, claimed_length=10**8),
        "index claims 2**62 weight bytes": join(lying_index, weights, fix_checksum=False),
        "header is not JSON": join(b"{not json at all", weights),
        "header is a JSON list": join(b"[1, 2, 3]", weights),
        "deeply nested JSON": join(b"[" * 100_000 + b"]" * 100_000, weights),
        "header not UTF-8": join(b'{"\xff\xfe": 1}', weights),
        "history is not a record": join(history, weights),
        "unknown format version": join(version, weights),
        "a checkpoint, not a model": join(checkpoint, weights),
        "empty file": b"",
        "seven bytes": b"LOOMNET",
        "random bytes": np.random.default_rng(0).bytes(4096),
        "safetensors without the loom header": weights,
    }


@pytest.mark.parametrize("kind", [
    "header length 2**63-1", "header length beyond the file", "index claims 2**62 weight bytes",
    "header is not JSON", "header is a JSON list", "deeply nested JSON", "header not UTF-8",
    "history is not a record", "unknown format version", "a checkpoint, not a model", "empty file",
    "seven bytes", "random bytes", "safetensors without the loom header"])
def test_a_malformed_container_is_refused_without_allocating(tmp_path, valid_blob, kind):
    assert_refused(write(tmp_path, hostile_containers(valid_blob)[kind]))


@pytest.mark.parametrize("where,key,value", [
    ("architecture", "n_features", 10**12), ("layer", "units", 10**9), ("architecture", "n_features", -3),
    ("architecture", "n_features", "many"), ("layer", "units", 0), ("architecture", "layers", "Dense"),
    ("layer", "kind", "os.system"), ("architecture", "dtype", "object"), ("architecture", "classes", 7),
])
def test_an_architecture_that_disagrees_with_the_weights_is_refused_before_building(
        tmp_path, valid_blob, where, key, value):
    """The header is not covered by the checksum: a valid file's JSON may claim a gigantic layer."""
    header, weights = split(valid_blob)
    target = header["architecture"] if where == "architecture" else header["architecture"]["layers"][0]
    target[key] = value
    assert_refused(write(tmp_path, join(header, weights)))


def test_a_gigantic_architecture_is_refused_under_a_1_gib_address_space_limit(tmp_path, valid_blob):
    """In a child process limited to 1 GiB of address space: 640 M claimed parameters must not be built."""
    header, weights = split(valid_blob)
    header["architecture"]["n_features"] = 10**7
    path = write(tmp_path, join(header, weights))
    script = textwrap.dedent(f"""
        import resource, sys
        from loomnet.io.modelfile import ModelFileError, load_model
        resource.setrlimit(resource.RLIMIT_AS, (2**30 + 512 * 2**20, resource.RLIM_INFINITY))
        try:
            load_model({str(path)!r})
        except ModelFileError as exc:
            print("refused:", exc)
            sys.exit(0)
        sys.exit(3)
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "refused:" in done.stdout, done.stdout + done.stderr


def test_truncated_valid_files_are_refused_at_every_cut(tmp_path, valid_blob):
    for cut in sorted({0, 1, 7, 8, 15, 16, 50, len(valid_blob) // 2, len(valid_blob) - 1}):
        assert_refused(write(tmp_path, valid_blob[:cut], f"cut{cut}.loom"))


def test_a_flipped_weight_byte_fails_the_checksum(tmp_path, valid_blob):
    blob = bytearray(valid_blob)
    blob[-3] ^= 0x40
    message = assert_refused(write(tmp_path, bytes(blob)))
    assert "checksum" in message.lower(), message


def test_a_valid_file_still_loads_and_predicts_the_same(tmp_path, valid_blob, trained_model):
    model = load_model(write(tmp_path, valid_blob, "ok.loom"))
    X, _ = blobs(n=40)
    np.testing.assert_array_equal(model.predict_proba(X), trained_model.predict_proba(X))


def test_every_hostile_file_makes_inspect_predict_and_evaluate_exit_2_in_one_line(tmp_path, valid_blob, capsys):
    """The same files through the command line: exit code 2 and one line ``error: ...``, never a traceback."""
    from loomnet.cli import main

    marker = str(tmp_path / "payload-ran")
    files = {**pickle_payloads(marker, valid_blob), **hostile_containers(valid_blob),
             **{k: join(split(valid_blob)[0], v) for k, v in hostile_weights().items()}}
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    for i, (kind, blob) in enumerate(files.items()):
        path = write(tmp_path, blob, f"h{i}.loom")
        for argv in (["inspect", str(path)], ["predict", str(path), str(data)], ["evaluate", str(path), str(data)]):
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 2 and err.startswith("error:") and err.count("\n") == 1, f"{kind} {argv[0]}: {err}"
    assert not os.path.exists(marker)
