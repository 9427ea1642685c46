"""Model files (``.loom``): the weights as safetensors behind a JSON header, written atomically.

Layout of a file::

    b"LOOMNET\\0"  |  u64 little-endian header length  |  JSON header  |  safetensors blob

The header holds the format version, the model's architecture and fitted preprocessing
(``Sequential.get_config()``), label names, training history, caller-supplied ``extra`` data
(the CLI keeps its column encoding and training settings there), the loomnet version and the
SHA-256 and size of the safetensors blob. Reading parses JSON and safetensors only: nothing is
unpickled or evaluated. Checkpoints use the same container with ``kind = "checkpoint"``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .atomic import atomic_write

MAGIC = b"LOOMNET\x00"
FORMAT_VERSION = 1
_PREFIX = len(MAGIC) + 8
_MAX_HEADER = 256 * 1024 * 1024


class ModelFileError(ValueError):
    """A file that cannot be read as a loomnet model: the message is one line saying why.

    A ``ValueError``. Raised by :func:`loomnet.load_model` for a missing, truncated, corrupted or
    hostile file (bad header, offsets outside the file, wrong dtype or shape, checksum mismatch);
    nothing in the file is ever executed.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> path = os.path.join(tempfile.mkdtemp(), "broken.loom")
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write(b"not a model")
    >>> try:
    ...     ln.load_model(path)
    ... except ln.ModelFileError as exc:
    ...     print("refused:", type(exc).__name__)
    refused: ModelFileError
    """


@dataclass
class LoomFile:
    """A loaded model file: the rebuilt model (for kind 'model'), the header and the raw tensors.

    Returned by :func:`open_model`; the CLI keeps its column encoding and training settings in
    ``extra``.

    Parameters
    ----------
    header : dict
        The verified JSON header: format version, architecture, labels, history, versions, extra.
    tensors : dict of str to ndarray
        The arrays stored (``params``).
    model : Sequential or None
        The rebuilt model.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.io import open_model
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.loom")
    >>> _ = ln.save_model(model, path, extra={"note": "first try"})
    >>> loaded = open_model(path)
    >>> loaded.extra, loaded.tensors["params"].shape == model.params.shape, loaded.model.n_outputs
    ({'note': 'first try'}, True, 3)
    """

    header: dict[str, Any]
    tensors: dict[str, NDArray] = field(repr=False)
    model: Any = None

    @property
    def extra(self) -> dict[str, Any]:
        return self.header.get("extra") or {}


# ----------------------------------------------------------------- the container
def write_container(path: str | os.PathLike, header: dict[str, Any], tensors: dict[str, NDArray]) -> dict[str, Any]:
    """Write a header and named arrays as one loom file (atomically); return the header written."""
    save, _ = _safetensors()
    blob = save({name: np.ascontiguousarray(array) for name, array in tensors.items()})
    header = {
        "format": "loomnet",
        "format_version": FORMAT_VERSION,
        **header,
        "tensors": {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob), "names": sorted(tensors)},
    }
    header_bytes = json.dumps(header, sort_keys=False, default=_json_default).encode("utf-8")
    atomic_write(path, MAGIC + struct.pack("<Q", len(header_bytes)) + header_bytes + blob)
    return header


def read_container(path: str | os.PathLike, *, verify: bool = True) -> tuple[dict[str, Any], dict[str, NDArray]]:
    """Read a loom file's header and arrays; every way it can be wrong raises a one-line ModelFileError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except PermissionError:
        raise ModelFileError(f"{path}: permission denied") from None
    except OSError as exc:  # a name too long, a symlink loop, a path through a file...
        raise ModelFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    header, blob = _split(path, data)
    if not verify:
        return header, {}
    expected = header["tensors"]
    if hashlib.sha256(blob).hexdigest() != expected.get("sha256"):
        raise ModelFileError(f"{path}: checksum mismatch: the weights do not match the SHA-256 in the header "
                             "(the file is corrupted)")
    _, load = _safetensors()
    try:
        tensors = load(blob)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: the weights are not valid safetensors ({_one_line(exc)})") from None
    return header, tensors


def _safetensors() -> tuple[Any, Any]:
    """(save, load) of the safetensors package, or loomnet's own reader and writer of the same format
    where the package cannot be imported (free-threaded Python has no wheel of it)."""
    try:
        from safetensors.numpy import load, save
    except ImportError:
        from .safetensors_format import dumps as save
        from .safetensors_format import loads as load
    return save, load


def _split(path: Path, data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data) and data:
            raise ModelFileError(f"{path}: truncated loomnet model file ({len(data)} bytes)")
        raise ModelFileError(f"{path}: not a loomnet model file")
    if len(data) < _PREFIX:
        raise ModelFileError(f"{path}: truncated loomnet model file ({len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[len(MAGIC):_PREFIX])
    if header_len > _MAX_HEADER:
        raise ModelFileError(f"{path}: corrupted loomnet model file (header length {header_len})")
    if len(data) < _PREFIX + header_len:
        raise ModelFileError(f"{path}: truncated loomnet model file: the header needs {header_len} bytes, "
                             f"only {len(data) - _PREFIX} are there")
    try:
        header = json.loads(data[_PREFIX:_PREFIX + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested [[[[...]]]]
        raise ModelFileError(f"{path}: corrupted loomnet model file: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != "loomnet":
        raise ModelFileError(f"{path}: not a loomnet model file (the header does not say format 'loomnet')")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unknown model file format version {version!r}; this loomnet reads "
                             f"version {FORMAT_VERSION} (upgrade loomnet to read newer files)")
    tensors = header.get("tensors")
    if not isinstance(tensors, dict) or not isinstance(tensors.get("bytes"), int):
        raise ModelFileError(f"{path}: corrupted loomnet model file: the header lacks the tensor index")
    blob = data[_PREFIX + header_len:]
    if len(blob) < tensors["bytes"]:
        raise ModelFileError(f"{path}: truncated loomnet model file: {len(blob)} of {tensors['bytes']} "
                             "weight bytes are there")
    if len(blob) > tensors["bytes"]:
        raise ModelFileError(f"{path}: corrupted loomnet model file: {len(blob) - tensors['bytes']} "
                             "unexpected bytes after the weights")
    return header, blob


# ----------------------------------------------------------------- models
def save_model(model: Any, path: str | os.PathLike, *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save a fitted :class:`~loomnet.Sequential` (weights, architecture, preprocessing, history).

    The file is a JSON header and the weights in safetensors form, written atomically; loading it
    never runs code (no pickle).

    Parameters
    ----------
    model : Sequential
        A built (usually fitted) model.
    path : str or path-like
        Where to write (``.loom`` by convention).
    extra : dict, optional
        JSON-compatible data stored alongside (read it back with ``open_model(path).extra``).

    Returns
    -------
    dict
        The header written, including the weights' SHA-256.

    Raises
    ------
    ValueError
        If the model has no parameters yet, or is a classifier without class labels (not fitted).

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(3)], loss="mse", seed=0).build(4)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.loom")
    >>> len(ln.save_model(model, path)["tensors"]["sha256"])
    64
    """
    from .._version import __version__

    if getattr(model, "params", None) is None:
        raise ValueError("the model has no parameters yet; fit it before saving")
    if model.loss.task == "multiclass" and getattr(model, "classes_", None) is None:  # load_model would refuse it
        raise ValueError("the classifier has no class labels yet; fit it before saving")
    history = getattr(model, "history", None)
    config = model.get_config()
    header = {
        "kind": "model",
        "loomnet_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "architecture": config,
        "labels": config.get("classes"),
        "n_params": int(model.params.size),
        "history": history.to_dict() if history is not None and hasattr(history, "to_dict") else None,
        "extra": extra or {},
    }
    return write_container(path, header, {"params": model.params})


def open_model(path: str | os.PathLike) -> LoomFile:
    """Read and verify a model file and rebuild its model, keeping the header beside it.

    :func:`load_model` returns the model alone; this also gives the header (labels, history,
    versions, the CLI's column encoding in ``extra``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    LoomFile

    Raises
    ------
    ModelFileError
        If the file is not a loomnet model, is damaged, or describes an inconsistent model.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.io import open_model
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.loom")
    >>> _ = model.save(path)
    >>> open_model(path).header["kind"]
    'model'
    """
    from ..engine.network import Sequential
    from ..training import History

    header, tensors = read_container(path)
    if header.get("kind") != "model":
        raise ModelFileError(f"{path}: is a loomnet {header.get('kind')!r} file, not a model")
    if not isinstance(header.get("extra") or {}, dict):
        raise ModelFileError(f"{path}: malformed header: 'extra' is not a JSON object")
    try:
        model = Sequential.from_config(header["architecture"], tensors["params"])
        if header.get("history"):
            model.history = History.from_dict(header["history"])
        if model.loss.task == "multiclass" and model.classes_ is None:
            raise ValueError("a softmax classifier without its class labels")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path}: the model description is inconsistent ({_one_line(exc)})") from None
    return LoomFile(header, tensors, model)


def load_model(path: str | os.PathLike) -> Any:
    """Load a :class:`~loomnet.Sequential` saved by :func:`save_model`, ready to predict.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model`, ``Sequential.save`` or ``loomnet train``.

    Returns
    -------
    Sequential
        The model, its preprocessing and history.

    Raises
    ------
    ModelFileError
        If the file is not a loomnet model, is damaged (checksum) or of an unknown format version.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.loom")
    >>> _ = model.save(path)
    >>> bool(np.array_equal(ln.load_model(path).params, model.params))
    True
    """
    return open_model(path).model


def read_header(path: str | os.PathLike, *, verify: bool = True) -> dict[str, Any]:
    """The JSON header of a loom file, without rebuilding the model.

    Parameters
    ----------
    path : str or path-like
    verify : bool
        Check the SHA-256 of the tensors too (reads the whole file); ``False`` reads the header only.

    Returns
    -------
    dict

    Raises
    ------
    ModelFileError
        If the file is not a loom file or is damaged.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.io import read_header
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.loom")
    >>> _ = model.save(path)
    >>> header = read_header(path, verify=False)
    >>> header["kind"], header["loomnet_version"] == ln.__version__
    ('model', True)
    """
    return read_container(path, verify=verify)[0]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store a {type(value).__name__} in a model file header")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
