"""The safetensors format, read and written by loomnet itself where the ``safetensors`` package cannot
be imported (it has no free-threaded wheel): 8-byte little-endian header length, a JSON header, then
the raw little-endian tensors.

The bytes written are the package's own (tensors ordered by dtype, widest first, then by name;
metadata first; the header padded with spaces to a multiple of 8), and reading applies its checks:
a bounded header size, a JSON object, known dtypes, shapes matching byte counts, offsets inside the
file, covering it exactly, with no overlap. ``tests/test_safetensors_format.py`` compares both.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_HEADER = 100_000_000  # the package's limit
# dtype name -> numpy dtype, in the package's order (its enum), which orders tensors in a file
DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
          "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32, "F64": np.float64,
          "I64": np.int64, "U64": np.uint64}
_RANK = {name: i for i, name in enumerate(DTYPES)}
_NAMES = {np.dtype(t): name for name, t in DTYPES.items()}


class SafetensorsError(ValueError):
    """The bytes are not valid safetensors; the message says why."""


def dumps(tensors: dict[str, NDArray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise ``tensors`` (name -> array) as safetensors bytes."""
    entries = []
    for name, array in tensors.items():
        array = np.asarray(array)
        dtype = _NAMES.get(array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype)
        if dtype is None:
            raise SafetensorsError(f"tensor {name!r} has dtype {array.dtype}, which safetensors does not store")
        entries.append((name, dtype, array))
    entries.sort(key=lambda e: (-_RANK[e[1]], e[0]))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, dtype, array in entries:
        blob = np.ascontiguousarray(array, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def loads(data: bytes) -> dict[str, NDArray]:
    """The tensors of safetensors bytes, checked as the package checks them (copies, writable)."""
    if len(data) < 8:
        raise SafetensorsError("header too small")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER:
        raise SafetensorsError("header too large")
    if 8 + n > len(data):
        raise SafetensorsError("invalid header length")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError(f"invalid header: {exc}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("invalid header: not a JSON object")
    header.pop("__metadata__", None)
    buffer = memoryview(data)[8 + n:]
    spans, tensors = [], {}
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") not in DTYPES:
            raise SafetensorsError(f"tensor {name!r}: unknown or missing dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in shape)):
            raise SafetensorsError(f"tensor {name!r}: invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise SafetensorsError(f"tensor {name!r}: invalid data offsets {offsets!r}")
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        if int(np.prod(shape, dtype=object)) * dtype.itemsize != offsets[1] - offsets[0]:
            raise SafetensorsError(f"tensor {name!r}: shape {shape} does not match its {offsets[1] - offsets[0]} bytes")
        spans.append((offsets[0], offsets[1], name, dtype, shape))
    spans.sort()
    position = 0
    for start, stop, name, _, _ in spans:
        if start != position:
            raise SafetensorsError(f"tensor {name!r}: offsets overlap or leave a hole (at byte {start}, "
                                   f"expected {position})")
        position = stop
    if position != len(buffer):
        raise SafetensorsError(f"the tensors cover {position} bytes but the data holds {len(buffer)}")
    for start, stop, name, dtype, shape in spans:
        tensors[name] = np.frombuffer(buffer[start:stop], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    return tensors
